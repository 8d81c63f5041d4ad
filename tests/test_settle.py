"""Settlement per stretch of log: a missing TLS line is plaintext only where TLS logging is shown
to be on there and then (same input, host, day and master epoch); never because another file,
day or configuration of the log shows it (see tlslog/settle.py and README)."""

from __future__ import annotations

import pytest

from tlslog.analysis import Options, analyze
from tlslog.render import session_records
from tlslog.settle import Flags, decide, implicit_tls

from .conftest import REAL_SAMPLES

TLS13 = "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519"
MX = "mx.example.net[203.0.113.25]:25"
SMTP = "postfix/smtp[200]"
SMTPD = "postfix/smtpd[100]"
MASTER = "postfix/master[1]"
A = "unknown[192.0.2.1]"


def sent(queue_id: str) -> str:
    return (f"{queue_id}: to=<bob@example.net>, relay={MX}, delay=0.5, delays=0.1/0/0.2/0.2, dsn=2.0.0,"
            " status=sent (250 2.0.0 Ok)")


def tls_delivery(t: int, queue_id: str) -> list[tuple[str, str, str]]:
    return [(f"10:00:{t:02d}", SMTP, f"Verified TLS connection established to {MX}: {TLS13}"),
            (f"10:00:{t + 1:02d}", SMTP, sent(queue_id))]


def write(path, lines: list[tuple[str, str, str]], day: str = "Nov 25") -> str:
    path.write_text("".join(f"{day} {clock} mx {tag}: {msg}\n" for clock, tag, msg in lines), encoding="utf-8")
    return str(path)


def verdicts(*paths: str) -> list[tuple[str, str, str]]:
    analysis = analyze(list(paths), Options(jobs=1, year=2026))
    return [(r["queue_ids"][0] if r["queue_ids"] else "", r["encryption"], r["evidence"])
            for r in session_records(analysis.sessions)]


def test_rotated_pair_level_0_then_1(tmp_path):
    """The reported bug: maillog.1 at smtp_tls_loglevel=0, maillog at 1. The older file's
    deliveries without a TLS line are unknown, not plaintext."""
    older = write(tmp_path / "maillog.1", [("09:00:00", SMTP, sent("1A1A1A1A1A")), ("09:00:05", SMTP, sent("2B2B2B2B2B"))])
    newer = write(tmp_path / "maillog", [*tls_delivery(0, "3C3C3C3C3C"), ("10:00:10", SMTP, sent("4D4D4D4D4D"))])
    assert verdicts(older, newer) == [
        ("1A1A1A1A1A", "unknown", "no-tls-logging"), ("2B2B2B2B2B", "unknown", "no-tls-logging"),
        ("3C3C3C3C3C", "tls", "tls-line"), ("4D4D4D4D4D", "plaintext", "no-tls-line")]


def test_rotated_pair_level_1_then_0(tmp_path):
    older = write(tmp_path / "maillog.1", [*tls_delivery(0, "3C3C3C3C3C"), ("10:00:10", SMTP, sent("4D4D4D4D4D"))])
    newer = write(tmp_path / "maillog", [("11:00:00", SMTP, sent("1A1A1A1A1A"))])
    assert verdicts(older, newer) == [
        ("3C3C3C3C3C", "tls", "tls-line"), ("4D4D4D4D4D", "plaintext", "no-tls-line"),
        ("1A1A1A1A1A", "unknown", "no-tls-logging")]


def test_a_reload_starts_a_new_stretch(tmp_path):
    """One file, the level changed by ``postfix reload`` in the middle."""
    log = write(tmp_path / "maillog", [
        ("09:00:00", SMTP, sent("1A1A1A1A1A")),
        ("09:30:00", MASTER, "reload -- version 3.7.11, configuration /etc/postfix"),
        *tls_delivery(0, "3C3C3C3C3C"), ("10:00:10", SMTP, sent("4D4D4D4D4D")),
        ("10:30:00", MASTER, "reload -- version 3.7.11, configuration /etc/postfix"),
        ("11:00:00", SMTP, sent("5E5E5E5E5E"))])
    assert verdicts(log) == [
        ("1A1A1A1A1A", "unknown", "no-tls-logging"), ("3C3C3C3C3C", "tls", "tls-line"),
        ("4D4D4D4D4D", "plaintext", "no-tls-line"), ("5E5E5E5E5E", "unknown", "no-tls-logging")]


def test_a_restart_of_another_host_does_not_split(tmp_path):
    lines = [("09:00:00", SMTP, sent("1A1A1A1A1A")), *tls_delivery(0, "3C3C3C3C3C")]
    text = "".join(f"Nov 25 {c} mx {t}: {m}\n" for c, t, m in lines[:1])
    text += "Nov 25 09:30:00 other postfix/master[1]: daemon started -- version 3.7.11, configuration /etc/postfix\n"
    text += "".join(f"Nov 25 {c} mx {t}: {m}\n" for c, t, m in lines[1:])
    path = tmp_path / "maillog"
    path.write_text(text, encoding="utf-8")
    assert verdicts(str(path)) == [("1A1A1A1A1A", "plaintext", "no-tls-line"), ("3C3C3C3C3C", "tls", "tls-line")]


def test_each_day_is_its_own_stretch(tmp_path):
    day1 = "".join(f"Nov 25 {c} mx {t}: {m}\n" for c, t, m in [*tls_delivery(0, "3C3C3C3C3C"),
                                                                ("10:00:10", SMTP, sent("4D4D4D4D4D"))])
    day2 = f"Nov 26 10:00:00 mx {SMTP}: {sent('5E5E5E5E5E')}\n"
    path = tmp_path / "maillog"
    path.write_text(day1 + day2, encoding="utf-8")
    assert verdicts(str(path)) == [("3C3C3C3C3C", "tls", "tls-line"), ("4D4D4D4D4D", "plaintext", "no-tls-line"),
                                   ("5E5E5E5E5E", "unknown", "no-tls-logging")]


def test_evidence_is_per_service(tmp_path):
    """smtpd logging TLS lines says nothing about smtp's log level (they are set apart)."""
    log = write(tmp_path / "maillog", [
        ("10:00:00", SMTPD, f"connect from {A}"),
        ("10:00:01", SMTPD, f"Anonymous TLS connection established from {A}: {TLS13}"),
        ("10:00:02", SMTPD, f"disconnect from {A} ehlo=2 starttls=1 quit=1 commands=4"),
        ("10:00:03", SMTP, sent("1A1A1A1A1A"))])
    assert verdicts(log) == [("", "tls", "tls-line"), ("1A1A1A1A1A", "unknown", "no-tls-logging")]


def test_implicit_tls_evidence_is_per_stretch(tmp_path):
    """A wrapper-mode service shown implicit by a TLS line in one file is not implicit in another."""
    svc = "postfix/port465/smtpd[301]"
    older = write(tmp_path / "maillog.1", [("09:00:00", svc, f"connect from {A}"),
                                           ("09:00:01", svc, f"disconnect from {A} ehlo=1 quit=1 commands=2")])
    newer = write(tmp_path / "maillog", [("10:00:00", svc, f"connect from {A}"),
                                         ("10:00:00", svc, f"Anonymous TLS connection established from {A}: {TLS13}"),
                                         ("10:00:01", svc, f"disconnect from {A} ehlo=1 quit=1 commands=2"),
                                         ("10:00:02", svc, f"connect from {A}"),
                                         ("10:00:03", svc, f"disconnect from {A} ehlo=1 quit=1 commands=2")])
    assert verdicts(older, newer) == [("", "plaintext", "no-starttls-counter"), ("", "tls", "tls-line"),
                                      ("", "tls", "implicit-tls")]


@pytest.mark.parametrize(("evidence", "service", "flags", "expected"), [
    ("no-tls-line", "postfix/smtp", Flags(tls_lines=1), ("plaintext", "no-tls-line")),
    ("no-tls-line", "postfix/smtp", Flags(), ("unknown", "no-tls-logging")),
    ("no-tls-line", "postfix/smtps/smtpd", Flags(tls_lines=3), ("unknown", "implicit-tls")),
    ("no-starttls-counter", "postfix/smtpd", Flags(starttls=1), ("plaintext", "no-starttls-counter")),
    ("no-starttls-counter", "postfix/smtpd", Flags(), ("plaintext", "no-starttls-counter")),
    ("no-starttls-counter", "postfix/submissions/smtpd", Flags(), ("tls", "implicit-tls")),
    ("no-starttls-counter", "postfix/submissions/smtpd", Flags(starttls=1), ("plaintext", "no-starttls-counter")),
    ("no-commands", "postfix/port465/smtpd", Flags(implicit=1), ("unknown", "implicit-tls")),
    ("no-commands", "postfix/smtpd", Flags(tls_lines=2), ("plaintext", "no-commands")),
])
def test_decide(evidence, service, flags, expected):
    assert decide(evidence, service, flags) == expected


def test_decide_refuses_a_settled_verdict():
    with pytest.raises(ValueError):
        decide("tls-line", "postfix/smtp", Flags())
    assert implicit_tls("postfix/smtps/smtpd", Flags()) and not implicit_tls("postfix/smtpd", Flags(implicit=0))


def _rows_by_line(paths: list[str]) -> dict[int, dict]:
    return {r["line"]: r for r in session_records(analyze(paths, Options(jobs=1, year=2026)).sessions)}


#: (complete inbound sessions, deliveries) inside A at each cut: the disconnects whose connect is in A
#: too, and the smtp status lines of A.
INSIDE = {
    "conncache": [(58, 56), (86, 84), (113, 114)],
    "default": [(102, 24), (154, 32), (204, 41)],
    "e2e-loglevel0": [(12, 0), (17, 1), (22, 4)],
    "e2e-loglevel1": [(16, 8), (34, 8), (50, 10)],
    "e2e-loglevel2": [(13, 0), (21, 0), (26, 2)],
    "e2e-mixed": [(23, 8), (31, 10), (34, 11)],
    "e2e-mixed-rotated": [(13, 4), (15, 5), (18, 6)],
    "hostnames-sasl": [(59, 9), (88, 17), (118, 22)],
    "loglevel0": [(61, 9), (91, 15), (119, 18)],
}


@pytest.mark.parametrize("sample", REAL_SAMPLES, ids=[p.name for p in REAL_SAMPLES])
def test_a_file_read_alone_or_with_the_next_gives_the_same_verdicts(sample, tmp_path):
    """Cut a real log into consecutive files A and B: every session that lies wholly inside A
    gets the same row whether A is read alone or followed by B."""
    lines = (sample / "maillog").read_text(encoding="utf-8").splitlines(keepends=True)
    for cut, expected in zip((len(lines) // 3, len(lines) // 2, 2 * len(lines) // 3), INSIDE[sample.name],
                             strict=True):
        a, b = tmp_path / f"a{cut}", tmp_path / f"b{cut}"
        a.write_text("".join(lines[:cut]), encoding="utf-8")
        b.write_text("".join(lines[cut:]), encoding="utf-8")
        alone, together = _rows_by_line([str(a)]), _rows_by_line([str(a), str(b)])
        inside = [n for n, r in alone.items() if (r["complete"] and r["kind"] == "inbound") or r["kind"] == "outbound"]
        inbound = sum(alone[n]["kind"] == "inbound" for n in inside)
        assert (inbound, len(inside) - inbound) == expected, (sample.name, cut)
        for n in inside:
            mine, theirs = dict(alone[n]), dict(together[n])
            mine.pop("source"), theirs.pop("source")
            assert mine == theirs, (sample.name, cut, n)
