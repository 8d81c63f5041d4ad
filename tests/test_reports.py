"""Report functions on small hand-built session tables, and on the generator's month of log.

Each case builds a session table row by row (only the columns the report reads), so the
expected numbers can be checked by eye.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from tlslog.accounting import LineStats
from tlslog.analysis import Options, analyze
from tlslog.fold import ROW
from tlslog.report import COLUMNS, build_report, message_counts, periods
from tlslog.table import partition

from .conftest import ROOT, SAMPLES, tlslog

GENLOG = ROOT.parent / "shared" / "tools" / "genlog.py"
DAY = 86400.0
MONDAY = dt.date(2024, 11, 25)  # ISO week 2024-W48


def row(when: dt.date, kind: str = "inbound", encryption: str = "tls", *, service: str = "postfix/smtpd",
        peer: str = "192.0.2.1", messages: int = 1, protocol: str | None = "TLSv1.3") -> tuple:
    """One fold row (settled verdicts are fold verdicts here: nothing pending)."""
    wall = (when - dt.date(1970, 1, 1)).days * DAY + 36000
    values = {name: None for name in ROW}
    values.update(line=0, kind=kind, start=wall, end=wall, host="mx", service=service, pid="1", peer_ip=peer,
                  peer_name="peer.example", ip_version=6 if ":" in peer else 4, fold_encryption=encryption,
                  fold_evidence="tls-line" if encryption == "tls" else "starttls-counter",
                  protocol=protocol if encryption == "tls" else None, messages=messages, complete=True,
                  source="maillog", epoch=0, day=int(wall // DAY),
                  relay="mx[203.0.113.1]:25" if kind == "outbound" else None)
    return tuple(values[name] for name in ROW)


def table(rows: list[tuple]):  # noqa: ANN201
    from tlslog.settle import Evidence
    from tlslog.table import settle

    frame = partition(rows, COLUMNS)
    return settle(frame, Evidence(), ordered=False)


def test_message_counts_follow_their_rows_verdict():
    frame = table([row(MONDAY, messages=3), row(MONDAY, encryption="plaintext", messages=2),
                   row(MONDAY, encryption="tls-failed", messages=0), row(MONDAY, messages=0)])
    assert message_counts(frame) == {"total": 5, "tls": 3, "plaintext": 2, "tls_failed": 0, "unknown": 0,
                                     "coverage": 0.6}


def test_weeks_start_on_monday_and_carry_the_change():
    sunday, monday = MONDAY + dt.timedelta(days=6), MONDAY + dt.timedelta(days=7)
    frame = table([row(MONDAY), row(sunday, encryption="plaintext"),  # W48: 1 of 2
                   row(monday), row(monday), row(monday, encryption="plaintext"), row(monday),  # W49: 3 of 4
                   row(monday, "outbound")])
    found = periods(frame, "week")
    assert [(p["period"], p["start"]) for p in found] == [("2024-W48", "2024-11-25"), ("2024-W49", "2024-12-02")]
    assert [(p["mx"]["total"], p["mx"]["coverage"], p["mx"]["coverage_change"]) for p in found] == [
        (2, 0.5, None), (4, 0.75, 25.0)]
    assert [(p["outbound"]["total"], p["outbound"]["coverage_change"]) for p in found] == [(0, None), (1, None)]
    assert found[1]["mx"]["messages"]["coverage_change"] == 25.0


@pytest.mark.parametrize(("by", "labels"), [
    ("day", ["2024-11-30", "2024-12-01"]),
    ("week", ["2024-W48"]),
    ("month", ["2024-11", "2024-12"]),
])
def test_days_weeks_months(by, labels):
    frame = table([row(dt.date(2024, 11, 30)), row(dt.date(2024, 12, 1), "outbound")])
    assert [p["period"] for p in periods(frame, by)] == labels


def test_submission_and_internal_rows_are_apart_in_every_period():
    frame = table([row(MONDAY), row(MONDAY, service="postfix/submission/smtpd", encryption="plaintext"),
                   row(MONDAY, peer="127.0.0.1", encryption="plaintext")])
    (week,) = periods(frame, "week")
    assert [(week[k]["total"], week[k]["plaintext"]) for k in ("inbound", "mx", "submission", "outbound")] == [
        (2, 1), (1, 0), (1, 1), (0, 0)]


def test_a_bad_period_is_refused():
    with pytest.raises(ValueError, match="no such period: 'year'"):
        periods(table([row(MONDAY)]), "year")


KEYS = ("total", "tls", "plaintext", "tls_failed", "unknown")


def _check_against_truth(log: str, truth: dict) -> None:
    analysis = analyze([log], Options(year=truth["year"], columns=COLUMNS, ordered=False))
    report = build_report(analysis.sessions, analysis.stats, by="week")
    weeks = {p["period"]: p for p in report["periods"]}
    for direction in ("inbound", "outbound"):
        assert {w: {k: p[direction][k] for k in KEYS} for w, p in weeks.items()} == truth["by_week"][direction]
    for role in ("mx", "submission", "outbound"):
        assert {k: report[role]["messages"][k] for k in KEYS} == truth["messages"][role]
    daily = build_report(analysis.sessions, analysis.stats, by="day")["periods"]
    for direction in ("inbound", "outbound"):
        assert {p["period"]: {k: p[direction][k] for k in KEYS} for p in daily} == truth["by_day"][direction]
    # the report's plaintext peers and downgrades, from the pruned table (peer_key on TLS rows)
    whole = build_report(analysis.sessions, analysis.stats, peers=100_000)
    assert {_label(r): r["sessions"] for r in whole["plaintext_peers"]["inbound"]} == \
        truth["plaintext_peers"]["inbound"]
    assert {_label(r): r["sessions"] for r in whole["plaintext_peers"]["outbound"]} == \
        truth["plaintext_peers"]["outbound_relays"]
    assert {r["domain"]: r["deliveries"] for r in whole["plaintext_domains"]["outbound"]} == \
        truth["plaintext_peers"]["outbound_domains"]
    assert sorted(_label(r) for r in whole["downgrades"]["inbound"]) == truth["downgrades"]["inbound"]
    assert sorted(r["domain"] for r in whole["downgrades"]["outbound"]) == truth["downgrades"]["outbound_domains"]
    # and `tlslog peers`, from the whole table
    from tlslog.peers import COLUMNS as PEER_COLUMNS
    from tlslog.peers import build_peers

    every = build_peers(analyze([log], Options(year=truth["year"], columns=PEER_COLUMNS, ordered=False)).sessions)
    for name, key in (("inbound", "inbound"), ("outbound_relays", "outbound_relays"),
                      ("outbound_domains", "outbound_domains")):
        label = (lambda r: r["domain"]) if name == "outbound_domains" else _label
        assert {label(r): r["plaintext"] for r in every[name] if r["plaintext"]} == truth["plaintext_peers"][key]
        assert sorted(label(r) for r in every[name] if r["status"] == "downgrade") == truth["downgrades"][key]


def _label(row: dict) -> str:
    return f"{row['peer_name']}[{row['peer_ip']}]"


def test_weekly_coverage_and_messages_equal_the_generator_truth():
    """The bundled month (genlog --lines 30000 --days 28 --downgrade 3 --seed 5)."""
    truth = json.loads((SAMPLES / "synthetic" / "month-truth.json").read_text(encoding="utf-8"))
    _check_against_truth(str(SAMPLES / "synthetic" / "month.log.gz"), truth)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_weekly_coverage_on_more_seeds(seed, tmp_path):
    if not GENLOG.exists():
        pytest.skip(f"the generator is not beside the repository ({GENLOG})")
    log, truth = tmp_path / "month.log", tmp_path / "truth.json"
    with log.open("wb") as out:
        subprocess.run([sys.executable, str(GENLOG), "--lines", "60000", "--days", "28", "--downgrade", "3",
                        "--seed", str(seed), "--truth", str(truth)], stdout=out, stderr=subprocess.DEVNULL, check=True)
    _check_against_truth(str(log), json.loads(truth.read_text(encoding="utf-8")))


def test_by_week_on_the_command_line():
    run = tlslog("report", str(SAMPLES / "synthetic" / "month.log.gz"), "--year", "2024", "--by", "week",
                 "--format", "json")
    assert run.code == 0
    assert [p["period"] for p in json.loads(run.stdout)["periods"]] == [
        "2024-W48", "2024-W49", "2024-W50", "2024-W51", "2024-W52"]
    assert tlslog("report", "--by", "year").code == 2


def test_report_without_rows_still_has_every_key():
    frame = table([])
    report = build_report(frame, LineStats(), by="week")
    assert report["periods"] == [] and report["mx"]["messages"]["coverage"] is None


def test_outbound_by_tls_level_of_postfix_311(tmp_path):
    """Postfix 3.11's tls= field: counted by level, and the verdict where it decides one."""
    log = tmp_path / "maillog"
    log.write_text(
        "Jun  4 12:04:01 mx1 postfix/smtp[15031]: 4F1A23E0C7: to=<alice@example.net>, relay=mx.example.net"
        "[203.0.113.25]:25, delay=1.2, delays=0.05/0.01/0.62/0.5, tls=dane, dsn=2.0.0, status=sent (250 2.0.0 OK)\n"
        "Jun  4 12:05:00 mx1 postfix/smtp[15032]: 6B7C8D9E0F: to=<carol@example.com>, relay=mail.example.com"
        "[192.0.2.40]:25, delay=0.4, delays=0.02/0/0.35/0, tls=!encrypt, dsn=4.7.4, status=deferred (TLS is "
        "required, but was not offered by host mail.example.com[192.0.2.40])\n"
        "Jun  4 12:06:00 mx1 postfix/smtp[15033]: 7B7C8D9E0F: to=<dave@example.com>, relay=mail.example.com"
        "[192.0.2.40]:25, delay=0.4, delays=0.02/0/0.35/0, tls=may:none, dsn=2.0.0, status=sent (250 ok)\n")
    run = tlslog("report", str(log), "--year", "2026", "--format", "json")
    outbound = json.loads(run.stdout)["outbound"]
    assert outbound["by_tls_level"] == {"!encrypt": 1, "dane": 1, "may:none": 1}
    assert (outbound["tls"], outbound["plaintext"]) == (1, 2)
    table = tlslog("report", str(log), "--year", "2026")
    assert "Outbound tls= level" in table.stdout
