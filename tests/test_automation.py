"""What a cron job and a ticket need: exit codes for low coverage and wrong input, every format."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tlslog.errors import EXIT_FAIL_UNDER, EXIT_NO_POSTFIX, EXIT_OK, EXIT_USAGE
from tlslog.report import parse_fail_under

from .conftest import SAMPLES, tlslog

MONTH = str(SAMPLES / "synthetic" / "month.log.gz")
# coverage of mail in the bundled month: inbound 84.8 %, MX 79.5 %, submission 100 %, outbound 85.8 %


@pytest.mark.parametrize(("threshold", "code", "reason"), [
    ("80", EXIT_OK, ""),
    ("85", EXIT_FAIL_UNDER, "inbound 84.8% < 85%"),
    ("90%", EXIT_FAIL_UNDER, "inbound 84.8% < 90%; outbound 85.8% < 90%"),
    ("mx=80,out=85", EXIT_FAIL_UNDER, "mx 79.5% < 80%"),
    ("submission=100", EXIT_OK, ""),
    ("in=84,outbound=85.5", EXIT_OK, ""),
])
def test_fail_under(threshold, code, reason):
    run = tlslog("report", MONTH, "--year", "2024", "--format", "json", "--fail-under", threshold)
    assert run.code == code
    assert json.loads(run.stdout)["mx"]["messages"]["total"] == 968  # the report is written either way
    assert run.stderr == (f"tlslog: coverage of mail below --fail-under: {reason}\n" if reason else "")


@pytest.mark.parametrize("bad", ["ninety", "101", "in=", "sideways=90", "-5"])
def test_fail_under_refuses_nonsense(bad):
    with pytest.raises(ValueError):
        parse_fail_under(bad)
    assert tlslog("report", MONTH, f"--fail-under={bad}").code == EXIT_USAGE


@pytest.mark.parametrize("content", [b"", b"hello\nworld\n", b"Nov 25 10:00:00 mx dovecot[1]: imap-login: ok\n"],
                         ids=["empty", "text", "other-program"])
def test_no_postfix_line_is_a_warning_and_exit_6(tmp_path, content):
    path = tmp_path / "maillog"
    path.write_bytes(content)
    run = tlslog("report", str(path), "--format", "json")
    assert run.code == EXIT_NO_POSTFIX
    lines = content.count(b"\n")
    assert run.stderr == (f"tlslog: warning: no Postfix line in {path} ({lines:,} lines read); expected syslog or "
                          "journal lines of postfix/smtpd, postfix/smtp and friends\n")
    assert json.loads(run.stdout)["inbound"]["total"] == 0
    assert tlslog("peers", str(path)).code == EXIT_NO_POSTFIX


def test_a_missing_file_is_exit_1_not_6(tmp_path):
    run = tlslog("report", str(tmp_path / "nope"))
    assert (run.code, run.stderr) == (1, f"tlslog: {tmp_path / 'nope'}: No such file or directory\n")


def test_report_csv_and_markdown():
    run = tlslog("report", MONTH, "--year", "2024", "--by", "week", "--format", "csv")
    assert run.code == 0
    rows = list(csv.DictReader(io.StringIO(run.stdout)))
    assert len(rows) == 6 + 5 * 4
    mx = rows[1]
    assert (mx["period"], mx["direction"], mx["sessions"], mx["messages"], mx["messages_coverage"]) == (
        "all", "mx", "2308", "968", "0.795455")
    w49 = [r for r in rows if r["period"] == "2024-W49" and r["direction"] == "mx"][0]
    assert (w49["start"], w49["sessions"], w49["tls"], w49["plaintext"], w49["tls_failed"]) == (
        "2024-12-02", "603", "428", "114", "61")
    run = tlslog("report", MONTH, "--year", "2024", "--format", "markdown")
    assert run.code == 0
    assert run.stdout.splitlines()[2:6] == [
        "|  | mail | TLS | sessions | TLS | plaintext | failed | unknown |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        "| MX inbound | 968 | 79.5% | 2,308 | 67.5% | 557 | 192 | 0 |",
        "| submission | 331 | 100.0% | 331 | 100.0% | 0 | 0 | 0 |",
    ]
    assert "## Downgrades: plaintext after TLS" in run.stdout


def test_peers_formats():
    run = tlslog("peers", MONTH, "--year", "2024", "--format", "json", "--plaintext", "--limit", "0")
    assert run.code == 0
    data = json.loads(run.stdout)
    assert list(data) == ["inbound", "inbound_ips", "inbound_domains", "outbound_domains", "outbound_relays"]
    assert len(data["inbound"]) == 403  # the generator's plaintext peers
    assert [r["domain"] for r in data["outbound_domains"]] == ["posteo.de", "yahoo.com", "uni-example.edu"]
    run = tlslog("peers", MONTH, "--year", "2024", "--format", "csv", "--limit", "2")
    rows = list(csv.DictReader(io.StringIO(run.stdout)))
    assert [(r["list"], r["peer_ip"] or r["domain"], r["status"]) for r in rows] == [
        ("inbound", "37.190.240.223", "downgrade"), ("inbound", "2a00:1450:4864:20::688", "downgrade"),
        ("inbound_ips", "37.190.240.223", "downgrade"), ("inbound_ips", "2a00:1450:4864:20::688", "downgrade"),
        ("inbound_domains", "", "downgrade"), ("inbound_domains", "posteo.de", "downgrade"),
        ("outbound_domains", "posteo.de", "downgrade"), ("outbound_domains", "yahoo.com", "downgrade"),
        ("outbound_relays", "212.157.79.175", "downgrade"), ("outbound_relays", "193.106.185.59", "downgrade"),
    ]
    run = tlslog("peers", MONTH, "--year", "2024", "--format", "markdown", "--limit", "1", "--direction", "out")
    assert run.stdout.count("## ") == 5 and "| posteo.de | 142 | 44.5% | 76 | 0 | downgrade |" in run.stdout


def test_the_command_line_choices_are_the_library_ones():
    """The CLI declares its choices without importing pandas (start-up); they must not drift."""
    from tlslog import cli, filters, peers, report

    assert [p.value for p in cli.Period] == list(report.PERIODS)
    assert sorted(d.value for d in cli.Direction) == sorted(filters.DIRECTIONS)
    assert [s.value for s in cli.PeerSort] == list(peers.SORTS)


@pytest.mark.parametrize("format", ["table", "json", "csv", "markdown", "html", "prometheus"])
def test_peers_0_lists_no_peer_in_any_format(format):
    run = tlslog("report", MONTH, "--peers", "0", "--format", format)
    assert run.code == EXIT_OK, run.stderr
    if format == "json":
        data = json.loads(run.stdout)
        assert (data["plaintext_peers"], data["downgrades"]) == ({"inbound": [], "outbound": []},
                                                                {"inbound": [], "outbound": []})
