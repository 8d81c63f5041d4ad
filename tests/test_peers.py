"""Peer lists and statuses, weak TLS, filters and escaping: small hand-built tables, exact results."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest

from tlslog.filters import Filter, parse_when
from tlslog.peers import build_peers, registered_domain
from tlslog.schema import Projection
from tlslog.render import peers_markdown, peers_renderable, print_renderable, write_peers_csv
from tlslog.escape import csv_cell, markdown_cell, terminal
from tlslog.strength import weaknesses

from .conftest import SAMPLES, tlslog
from .test_reports import row


def table(rows: list[tuple]):  # noqa: ANN201
    """A settled table with every column `tlslog peers` reads (peers on every row)."""
    from tlslog.peers import COLUMNS
    from tlslog.settle import Evidence
    from tlslog.table import partition, settle

    return settle(partition(rows, Projection(COLUMNS.columns + ('end',))), Evidence(), ordered=False)

D = dt.date(2024, 11, 25)


def day(n: int) -> dt.date:
    return D + dt.timedelta(days=n)


STATUS_CASES = [
    # (verdicts in time order, status, downgrade day)
    (["tls", "tls"], "always-tls", None),
    (["tls", "tls-failed"], "always-tls", None),
    (["plaintext", "plaintext"], "always-plaintext", None),
    (["plaintext", "tls", "tls"], "sometimes-plaintext", None),
    (["tls", "plaintext", "tls", "plaintext"], "downgrade", 1),
    (["plaintext", "tls", "plaintext"], "downgrade", 2),
    (["tls-failed"], "tls-failed", None),
    (["unknown"], "unknown", None),
]


@pytest.mark.parametrize(("verdicts", "status", "downgrade"), STATUS_CASES)
def test_status_of_a_peer(verdicts, status, downgrade):
    frame = table([row(day(i), encryption=v, peer="192.0.2.9") for i, v in enumerate(verdicts)])
    [client] = build_peers(frame)["inbound"]
    assert client["status"] == status
    assert client["downgrade_at"] == (None if downgrade is None else f"{day(downgrade).isoformat()}T10:00:00")
    assert (client["total"], client["tls"], client["plaintext"]) == (
        len(verdicts), verdicts.count("tls"), verdicts.count("plaintext"))
    assert client["first_seen"] == f"{D.isoformat()}T10:00:00"
    assert client["last_seen"] == f"{day(len(verdicts) - 1).isoformat()}T10:00:00"


def test_lists_sorting_limit_and_plaintext_only():
    rows = ([row(day(0), peer="192.0.2.1"), row(day(1), encryption="plaintext", peer="192.0.2.1")]
            + [row(day(i), encryption="plaintext", peer="192.0.2.2") for i in range(3)]
            + [row(day(0), peer="2001:db8::3")]
            + [row(day(0), kind="outbound", encryption="plaintext", peer="203.0.113.1")])
    peers = build_peers(table(rows))
    assert [(r["peer_ip"], r["status"]) for r in peers["inbound"]] == [
        ("192.0.2.1", "downgrade"), ("192.0.2.2", "always-plaintext"), ("2001:db8::3", "always-tls")]
    assert [r["ip_versions"] for r in peers["inbound"]] == [["4"], ["4"], ["6"]]
    assert [r["peer_ip"] for r in build_peers(table(rows), plaintext=True, limit=1)["inbound"]] == ["192.0.2.1"]
    assert [r["peer_ip"] for r in build_peers(table(rows), sort="total")["inbound"]] == [
        "192.0.2.2", "192.0.2.1", "2001:db8::3"]
    assert [(r["domain"], r["total"], r["plaintext"]) for r in peers["inbound_domains"]] == [
        ("peer.example", 6, 4)]
    assert [(r["peer_name"], r["peer_ip"], r["plaintext"]) for r in peers["outbound_relays"]] == [
        ("peer.example", "203.0.113.1", 1)]


@pytest.mark.parametrize(("name", "domain"), [
    ("mail-lf1-f64.posteo.de", "posteo.de"),
    ("a.b.example.co.uk", "example.co.uk"),
    ("MX.Example.COM.", "example.com"),
    ("ec2-1-2-3-4.compute-1.amazonaws.com", "amazonaws.com"),  # ICANN section only
    ("unknown", None),
    ("192.0.2.1", None),
    ("2001:db8::1", None),
    ("localhost", None),
    (None, None),
])
def test_registered_domain(name, domain):
    assert registered_domain(name) == domain


@pytest.mark.parametrize(("protocol", "cipher", "bits", "reasons"), [
    ("TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, ()),
    ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256", 256, ()),
    ("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384", 256, ()),
    ("TLSv1.2", "ECDHE-ECDSA-CHACHA20-POLY1305", 256, ()),
    ("TLSv1.2", "DHE-RSA-AES128-GCM-SHA256", 128, ()),
    ("TLSv1.2", "AES256-GCM-SHA384", 256, ("no-forward-secrecy",)),
    ("TLSv1.2", "ECDHE-RSA-AES256-SHA384", 256, ("non-aead",)),
    ("TLSv1", "ECDHE-RSA-AES256-SHA", 256, ("old-protocol", "non-aead")),
    ("TLSv1", "DES-CBC3-SHA", 168, ("old-protocol", "no-forward-secrecy", "non-aead", "broken-cipher")),
    ("TLSv1.2", "RC4-SHA", 128, ("no-forward-secrecy", "non-aead", "broken-cipher")),
    ("TLSv1.2", "ADH-AES256-GCM-SHA384", 256, ("broken-cipher",)),
    ("SSLv3", "EXP-RC4-MD5", 40, ("old-protocol", "no-forward-secrecy", "non-aead", "broken-cipher", "short-key")),
    ("TLSv1.2", None, None, ()),  # nothing logged to judge by
    (None, None, None, ()),
])
def test_weak_tls(protocol, cipher, bits, reasons):
    assert weaknesses(protocol, cipher, bits) == reasons


NOW = dt.datetime(2026, 12, 2, 15, 30)  # a Wednesday


def _iso(text: str) -> float:
    return (dt.datetime.fromisoformat(text) - dt.datetime(1970, 1, 1)).total_seconds()


@pytest.mark.parametrize(("text", "end", "expected"), [
    ("2026-10-01", False, "2026-10-01T00:00"),
    ("2026-10-01T12:30", False, "2026-10-01T12:30"),
    ("7d", False, "2026-11-25T15:30"),
    ("12h", False, "2026-12-02T03:30"),
    ("today", False, "2026-12-02T00:00"),
    ("yesterday", True, "2026-12-02T00:00"),
    ("this-week", False, "2026-11-30T00:00"),
    ("last-week", False, "2026-11-23T00:00"),
    ("last-week", True, "2026-11-30T00:00"),
    ("last-month", False, "2026-11-01T00:00"),
    ("this-month", True, "2027-01-01T00:00"),
])
def test_when(text, end, expected):
    assert parse_when(text, NOW, end=end) == _iso(expected)


def test_when_refuses_nonsense():
    with pytest.raises(ValueError, match="not a date"):
        parse_when("next tuesday", NOW)


def test_filters_keep_rows_and_never_change_a_verdict():
    rows = [row(day(0), peer="192.0.2.1"), row(day(1), encryption="plaintext", peer="192.0.2.77"),
            row(day(2), service="postfix/submission/smtpd", peer="2001:db8::5"),
            row(day(3), kind="outbound", encryption="plaintext", peer="203.0.113.1")]
    frame = table(rows)
    def kept(f: Filter) -> list[str]:
        return list(f.apply(frame)["peer_ip"].astype(object))
    assert kept(Filter()) == ["192.0.2.1", "192.0.2.77", "2001:db8::5", "203.0.113.1"]
    assert kept(Filter(since=_iso("2024-11-26T00:00"), until=_iso("2024-11-28T00:00"))) == ["192.0.2.77", "2001:db8::5"]
    assert kept(Filter(direction="out")) == ["203.0.113.1"]
    assert kept(Filter(direction="in")) == ["192.0.2.1", "192.0.2.77", "2001:db8::5"]
    assert kept(Filter(direction="submission")) == ["2001:db8::5"]
    assert kept(Filter(direction="mx")) == ["192.0.2.1", "192.0.2.77"]
    assert kept(Filter(services=("postfix/submission/smtpd",))) == ["2001:db8::5"]
    assert kept(Filter(peers=("192.0.2.0/25",))) == ["192.0.2.1", "192.0.2.77"]
    assert kept(Filter(peers=("2001:db8::5",))) == ["2001:db8::5"]
    assert kept(Filter(peers=("example",))) == ["192.0.2.1", "192.0.2.77", "2001:db8::5", "203.0.113.1"]
    assert kept(Filter(peers=("nowhere.example",))) == []
    assert list(Filter(direction="in").apply(frame)["encryption"].astype(object)) == ["tls", "plaintext", "tls"]


def test_filters_on_the_command_line():
    month = str(SAMPLES / "synthetic" / "month.log.gz")
    def report(*args: str) -> dict:
        run = tlslog("report", month, "--year", "2024", "--format", "json", *args)
        assert run.code == 0, run.stderr
        return json.loads(run.stdout)
    whole = report()
    week = report("--since", "2024-12-02", "--until", "2024-12-09")
    assert (week["mx"]["total"], week["outbound"]["total"]) == (603, 243)  # 2024-W49 of the generator truth
    assert (report("--direction", "out")["inbound"]["total"], report("--direction", "out")["outbound"]["total"]) == (
        0, whole["outbound"]["total"])
    one = report("--peer", "37.190.240.223")
    assert (one["inbound"]["total"], one["inbound"]["tls"], one["inbound"]["plaintext"]) == (92, 26, 66)
    assert one["downgrades"]["inbound"][0]["downgrade_at"] == "2024-12-05T23:25:18"
    assert tlslog("report", month, "--since", "soon").code == 2


HOSTILE = {"peer_name": "\x1b[31mred[bold]x[/bold]", "peer_ip": "=cmd|' /C calc'!A0", "domain": "a|b`c`*d*"}


def test_hostile_text_is_inert_in_every_format():
    rows = {"inbound": [{**{k: HOSTILE[k] for k in ("peer_name", "peer_ip")}, "total": 1, "tls": 0, "plaintext": 1,
                         "tls_failed": 0, "unknown": 0, "messages": 0, "coverage": 0.0, "protocols": [],
                         "best_trust": None, "ip_versions": [], "first_seen": None, "last_seen": None,
                         "status": "always-plaintext", "downgrade_at": None}]}
    rows["outbound_domains"] = [{**rows["inbound"][0], "domain": HOSTILE["domain"]}]
    del rows["outbound_domains"][0]["peer_name"], rows["outbound_domains"][0]["peer_ip"]
    out = io.StringIO()
    print_renderable(peers_renderable(rows), out, width=200)
    text = out.getvalue()
    assert "\x1b" not in text and "\\x1b[31mred[bold]x[/bold][=cmd|' /C calc'!A0]" in text
    markdown = peers_markdown(rows)
    assert "\\x1b\\[31mred\\[bold\\]x\\[/bold\\]\\[=cmd\\|' /C calc'!A0\\]" in markdown
    assert "a\\|b\\`c\\`\\*d\\*" in markdown
    assert all(line.count("|") - line.count("\\|") == 10 for line in markdown.splitlines() if line.startswith("|"))
    out = io.StringIO()
    write_peers_csv(rows, out)
    records = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert records[0]["peer_ip"] == "'=cmd|' /C calc'!A0"
    assert records[0]["peer_name"] == "\x1b[31mred[bold]x[/bold]"  # CSV keeps the text; a viewer shows it


@pytest.mark.parametrize(("text", "shown"), [
    ("\x1b[2J", "\\x1b[2J"), ("a\rb", "a\\x0db"), ("\x07", "\\x07"), ("\x9b31m", "\\x9b31m"),
    ("\u202eevil", "\\u202eevil"), ("plain.example", "plain.example"),
])
def test_terminal_escapes(text, shown):
    assert terminal(text) == shown


def test_markdown_and_csv_cells():
    assert markdown_cell("a|b") == "a\\|b"
    assert markdown_cell("<script>") == "\\<script\\>"
    assert [csv_cell(v) for v in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "ok", 5, -3.5)] == [
        "'=1+1", "'+1", "'-1", "'@SUM(A1)", "'\tx", "ok", 5, -3.5]


@pytest.mark.parametrize("sort", ["status", "plaintext", "total", "coverage", "last-seen", "name"])
@pytest.mark.parametrize("limit", [1, 3, 7, 40])
def test_a_limit_gives_the_first_rows_of_the_whole_order(sort, limit):
    """The order is cut on the groups' numbers before names are sorted: the same rows as
    sorting everything, ties at the cut included (many groups share their numbers here)."""
    import numpy as np

    from tlslog.peers import STATUSES, _order

    rng = np.random.default_rng(limit)
    n = 200
    agg = {v: rng.integers(0, 3, n) for v in ("tls", "plaintext", "tls-failed", "unknown")}
    agg["status"] = rng.choice(np.array(STATUSES, dtype=object), n)
    agg["last_seen"] = np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 5, n).astype(float))
    labels = {"peer_name": [f"host{i % 17}" for i in range(n)], "peer_ip": [f"192.0.2.{i % 13}" for i in range(n)]}
    groups = np.arange(n)
    assert _order(agg, labels, sort, groups, limit).tolist() == _order(agg, labels, sort, groups)[:limit].tolist()
