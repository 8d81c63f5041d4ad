"""The Postfix versions of master lines, and the report note on a known Untrusted/Trusted bug.

Postfix 3.6 up to 3.10.3 logged some Trusted peers as Untrusted (fixed in 3.10.4): where the
master lines name such a version, the report says the Untrusted counts may be too high.
"""

from __future__ import annotations

import pickle

import pytest

from tlslog.analysis import Options, analyze
from tlslog.engine.plan import Planner
from tlslog.engine.scan import scan
from tlslog.report import build_report, untrusted_note
from tlslog.sources import resolve

BUG = "logs some Trusted peers as Untrusted (fixed in 3.10.4)"
SOME = "the 3 Untrusted TLS sessions and deliveries may include Trusted ones."


@pytest.mark.parametrize(("version", "affected"), [
    ("2.11.1", False),
    ("3.5.25", False),
    ("3.5-20200101", False),  # a snapshot of 3.5
    ("3.6.0", True),
    ("3.6", True),
    ("3.6-20200710", True),  # an experimental snapshot counts as 3.6
    ("3.6.0-RC1", True),
    ("3.7.11", True),
    ("3.9.9", True),
    ("3.10.0", True),
    ("3.10.3", True),
    ("3.10-20240101", True),
    ("3.10.4", False),
    ("3.10.10", False),
    ("3.11.0", False),
    ("3.11-20250101", False),
    ("4.0.0", False),
    (" 3.7.11 ", True),
    ("", False),
    ("garbage", False),
    ("3", False),
    ("3.x.1", False),
    ("3.7.11.2", False),
    ("v3.7.11", False),
    ("3.7.11rc1", False),
    ("３.７.１", False),  # full-width digits are not ASCII digits
])
def test_which_versions_are_affected(version, affected):
    note = untrusted_note({"mx1": (version,)}, 3)
    assert note == (f"Postfix {version.strip()} (on mx1) {BUG}: {SOME}" if affected else None)


@pytest.mark.parametrize(("versions", "untrusted", "note"), [
    ({}, 5, None),
    ({"mx1": ()}, 5, None),
    ({"mx1": ("3.7.11",)}, 0, None),
    ({"mx1": ("3.7.11",)}, -1, None),
    ({"mx1": ("3.7.11",)}, 12,
     f"Postfix 3.7.11 (on mx1) {BUG}: the 12 Untrusted TLS sessions and deliveries may include Trusted ones."),
    ({"mx1": ("3.7.11",)}, 1,
     f"Postfix 3.7.11 (on mx1) {BUG}: the 1 Untrusted TLS session or delivery may be a Trusted one."),
    ({"mx1": ("3.7.11",)}, 12345,
     f"Postfix 3.7.11 (on mx1) {BUG}: the 12,345 Untrusted TLS sessions and deliveries may include Trusted ones."),
    ({"": ("3.7.11",)}, 3, f"Postfix 3.7.11 {BUG}: {SOME}"),  # the host is not known
    ({"mx1": ("3.10.4", "2.11.1", "junk")}, 3, None),
    ({"mx1": ("3.10.4", "3.8.2")}, 3, f"Postfix 3.8.2 (on mx1) {BUG}: {SOME}"),  # only the affected one is named
    ({"mx2": ("3.7.11",), "mx1": ("3.7.11",)}, 3, f"Postfix 3.7.11 (on mx1, mx2) {BUG}: {SOME}"),
    ({"mx1": ("3.10.2", "3.7.11"), "mx2": ("3.11.0",)}, 3,  # versions in release order, not text order
     f"Postfix 3.7.11 (on mx1) and 3.10.2 (on mx1) log some Trusted peers as Untrusted (fixed in 3.10.4): {SOME}"),
    ({"mx1": ("3.7.11",), "": ("3.7.11",), "mx3": ("3.9.1",), "mx2": ("3.6-20200710",)}, 3,
     "Postfix 3.6-20200710 (on mx2), 3.7.11 (on mx1, an unnamed host) and 3.9.1 (on mx3) log some Trusted peers"
     f" as Untrusted (fixed in 3.10.4): {SOME}"),
])
def test_the_note(versions, untrusted, note):
    assert untrusted_note(versions, untrusted) == note


# -- end to end ------------------------------------------------------------------------------------

TLS = "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256"


def master(host: str, version: str, what: str = "daemon started") -> str:
    return f"Nov 25 10:00:00 {host} postfix/master[100]: {what} -- version {version}, configuration /etc/postfix\n"


def session(pid: int, trust: str = "Untrusted", host: str = "mx1") -> str:
    """One inbound session from an external peer, with its TLS summary line."""
    peer = f"client{pid}.example[198.51.100.{pid % 250 + 1}]"
    return (f"Nov 25 10:00:{pid % 60:02d} {host} postfix/smtpd[{pid}]: connect from {peer}\n"
            f"Nov 25 10:00:{pid % 60:02d} {host} postfix/smtpd[{pid}]: {trust} TLS connection established from {peer}: {TLS}\n"
            f"Nov 25 10:00:{pid % 60:02d} {host} postfix/smtpd[{pid}]: disconnect from {peer} ehlo=2 starttls=1 quit=1"
            " commands=4\n")


def report(tmp_path, text: str, options: Options | None = None) -> tuple[dict, dict]:
    path = tmp_path / "maillog"
    path.write_text(text, encoding="utf-8")
    analysis = analyze([str(path)], options or Options(year=2024))
    data = build_report(analysis.sessions, analysis.stats, postfix_versions=analysis.postfix_versions)
    return analysis.postfix_versions, data


def test_an_affected_version_gives_the_note(tmp_path):
    versions, data = report(tmp_path, master("mx1", "3.7.11") + session(201) + session(202, "Trusted") + session(203))
    assert versions == {"mx1": ("3.7.11",)}
    assert data["by_trust"] == {"Trusted": 1, "Untrusted": 2}  # the Trusted row is not counted in the note
    assert data["notes"] == [f"Postfix 3.7.11 (on mx1) {BUG}: the 2 Untrusted TLS sessions and deliveries may"
                             " include Trusted ones."]


def test_a_fixed_version_gives_no_note(tmp_path):
    versions, data = report(tmp_path, master("mx1", "3.10.4") + session(201) + session(202))
    assert versions == {"mx1": ("3.10.4",)}
    assert data["by_trust"] == {"Untrusted": 2}
    assert data["notes"] == []


def test_no_untrusted_rows_give_no_note(tmp_path):
    versions, data = report(tmp_path, master("mx1", "3.7.11") + session(201, "Trusted"))
    assert versions == {"mx1": ("3.7.11",)}
    assert data["notes"] == []


def test_without_versions_the_report_is_as_before(tmp_path):
    """build_report without ``postfix_versions`` (and a log without master lines) has no note."""
    path = tmp_path / "maillog"
    path.write_text(master("mx1", "3.7.11") + session(201), encoding="utf-8")
    analysis = analyze([str(path)], Options(year=2024))
    assert build_report(analysis.sessions, analysis.stats)["notes"] == []
    versions, data = report(tmp_path, session(201))
    assert versions == {}
    assert data["notes"] == []


def test_reloads_and_every_host_are_collected(tmp_path):
    text = (master("mx1", "3.5.3") + master("mx2", "3.11.0") + session(201)
            + master("mx1", "3.7.11", "reload") + master("mx1", "3.7.11", "reload") + master("mx1", "3.10.0", "reload"))
    versions, data = report(tmp_path, text)
    assert versions == {"mx1": ("3.10.0", "3.5.3", "3.7.11"), "mx2": ("3.11.0",)}  # sorted as text
    assert data["notes"] == [f"Postfix 3.7.11 (on mx1) and 3.10.0 (on mx1) log some Trusted peers as Untrusted"
                             " (fixed in 3.10.4): the 1 Untrusted TLS session or delivery may be a Trusted one."]


def test_versions_survive_chunks_and_workers(tmp_path):
    """The master lines are in later chunks than the first, scanned by two workers."""
    first = "".join(session(pid) for pid in range(300, 310))
    text = (first + master("mx1", "3.7.11") + session(401) + "".join(session(pid, "Trusted") for pid in range(410, 420))
            + master("mx2", "3.10.4") + session(402, host="mx2"))
    path = tmp_path / "maillog"
    path.write_text(text, encoding="utf-8")
    size = len(first.encode()) // 2
    tasks = list(Planner(chunk_size=size, year=2024).tasks(resolve([str(path)])[0]))
    found = {i: scan(task).postfix_versions for i, task in enumerate(tasks)}
    holding = {i: v for i, v in found.items() if v}
    assert len(tasks) > 4 and 0 not in holding
    assert sorted(v for per_chunk in holding.values() for v in per_chunk.items()) == [
        ("mx1", ("3.7.11",)), ("mx2", ("3.10.4",))]
    result = scan(tasks[min(holding)])
    assert pickle.loads(pickle.dumps(result)).postfix_versions == result.postfix_versions

    versions, data = report(tmp_path, text, Options(year=2024, jobs=2, chunk_size=size))
    assert versions == {"mx1": ("3.7.11",), "mx2": ("3.10.4",)}
    assert data["by_trust"] == {"Trusted": 10, "Untrusted": 12}
    assert data["notes"] == [f"Postfix 3.7.11 (on mx1) {BUG}: the 12 Untrusted TLS sessions and deliveries may"
                             " include Trusted ones."]
    one_pass = report(tmp_path, text)
    assert one_pass == (versions, data)
