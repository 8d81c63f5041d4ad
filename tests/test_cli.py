"""The command line as a user runs it: outputs, golden renderings, exit codes."""

from __future__ import annotations

import csv
import sys
import gzip
import io
import json

import pytest

from tlslog import __version__
from tlslog.frames import period, session_frame
from tlslog.pipeline import Options, analyze
from tlslog.render import EXPORT_FIELDS, report_renderable
from tlslog.report import build_report

from .conftest import REAL_SAMPLES, SAMPLES, golden, make_console, run_tlslog

LOG = SAMPLES / "realpostfix" / "default" / "maillog"
CONTRACT_FIELDS = [
    "kind", "start", "end", "host", "service", "pid", "peer_name", "peer_ip", "peer_port", "ip_version",
    "encryption", "trust", "protocol", "cipher", "cipher_bits", "queue_ids",
    "recipient", "recipient_domain", "relay", "status", "dsn",
]  # fmt: skip


def test_version():
    run = run_tlslog("--version")
    assert (run.code, run.stdout) == (0, f"tlslog {__version__}\n")


def test_help_lists_commands_and_examples():
    run = run_tlslog("--help")
    assert run.code == 0
    for text in ("report", "sessions", "unparsed", "zcat maillog.*.gz | tlslog report", "journalctl -u postfix"):
        assert text in run.stdout


@pytest.mark.parametrize("sample", REAL_SAMPLES, ids=[p.name for p in REAL_SAMPLES])
def test_report_table_golden(sample):
    """The whole rendered report, fixed width: a change in the report is a visible diff."""
    analysis = analyze([str(sample / "maillog")], Options(jobs=1, year=2026))
    console, out = make_console(width=100)
    console.print(report_renderable(build_report(frame := session_frame(analysis), analysis.stats, period=period(analysis, frame))))
    golden(f"report-{sample.name}.txt", out.getvalue())


def test_report_command_output_golden():
    run = run_tlslog("report", str(LOG), "--year", "2026")
    assert run.code == 0 and run.stderr == ""
    golden("report-command-default.txt", run.stdout)


def test_report_json_contract():
    run = run_tlslog("report", str(LOG), "--format", "json")
    assert run.code == 0
    report = json.loads(run.stdout)
    for direction in ("inbound", "outbound"):
        block = report[direction]
        assert set(block) >= {"total", "tls", "plaintext", "tls_failed", "unknown", "coverage"}
        assert block["total"] == block["tls"] + block["plaintext"] + block["tls_failed"] + block["unknown"]
        assert block["coverage"] == pytest.approx(block["tls"] / (block["total"] - block["unknown"]))
    assert set(report["by_ip_version"]) >= {"4", "6"}
    assert set(report["lines"]) >= {"read", "postfix", "unparsed"}
    assert sum(report["by_protocol"].values()) == report["inbound"]["tls"] + report["outbound"]["tls"]


def test_sessions_jsonl_contract():
    run = run_tlslog("sessions", str(LOG), "--format", "jsonl")
    assert run.code == 0
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(rows) == 368
    for row in rows:
        assert list(row)[: len(CONTRACT_FIELDS)] == CONTRACT_FIELDS
        assert list(row) == list(EXPORT_FIELDS)
        assert row["kind"] in ("inbound", "outbound")
        assert row["encryption"] in ("tls", "plaintext", "tls-failed", "unknown")
        assert row["ip_version"] in (4, 6)
        assert isinstance(row["queue_ids"], list)
    assert [r["line"] for r in rows] == sorted(r["line"] for r in rows)


def test_sessions_csv_has_the_same_rows():
    run = run_tlslog("sessions", str(LOG), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(run.stdout)))
    assert len(rows) == 368 and list(rows[0]) == list(EXPORT_FIELDS)


def test_sessions_table():
    run = run_tlslog("sessions", str(LOG))
    assert run.code == 0 and "TLSv1.3" in run.stdout and "plaintext" in run.stdout


def test_missing_file_is_reported_and_the_rest_still_analysed(tmp_path):
    run = run_tlslog("report", str(tmp_path / "missing.log"), str(LOG), "--format", "json")
    assert run.code == 1
    assert "missing.log: No such file or directory" in run.stderr
    assert json.loads(run.stdout)["inbound"]["total"] == 308


def test_damaged_gzip_exit_code(tmp_path):
    blob = gzip.compress(LOG.read_bytes())
    (tmp_path / "cut.gz").write_bytes(blob[:-100])
    run = run_tlslog("report", str(tmp_path / "cut.gz"), "--format", "json")
    assert run.code == 3
    assert "ends early" in run.stderr
    assert json.loads(run.stdout)["lines"]["read"] > 2000


def test_strict_fails_on_unparsed_lines(tmp_path):
    path = tmp_path / "log"
    path.write_text(LOG.read_text() + "Nov 25 03:59:00 mx postfix/smtpd[1]: something new entirely\n")
    assert run_tlslog("report", str(path), "--format", "json").code == 0
    run = run_tlslog("report", str(path), "--format", "json", "--strict")
    assert run.code == 4 and "1 lines were not understood" in run.stderr


def test_unparsed_groups_lines_by_shape(tmp_path):
    path = tmp_path / "log"
    path.write_text(
        "Nov 25 03:59:00 mx postfix/smtpd[1]: frobnicated 3 widgets from unknown[192.0.2.1]\n"
        "Nov 25 03:59:01 mx postfix/smtpd[2]: frobnicated 12 widgets from unknown[192.0.2.7]\n"
        "Nov 25 03:59:02 mx postfix/smtpd[2]: connect from unknown[192.0.2.7]\n"
    )
    run = run_tlslog("unparsed", str(path))
    assert run.code == 0
    assert run.stdout.splitlines()[0] == "       2  smtpd: frobnicated N widgets from unknown[ADDR]"
    assert "line 1: postfix/smtpd: frobnicated 3 widgets" in run.stdout
    assert "2 unparsed of 3 Postfix lines" in run.stderr


def test_bad_option_is_a_usage_error():
    run = run_tlslog("report", "--format", "yaml", str(LOG))
    assert run.code == 2 and "yaml" in run.stderr and "Traceback" not in run.stderr


def test_internal_errors_are_one_line_unless_debug(monkeypatch, capsys):
    """A bug must not greet the user with a traceback; ``--debug`` shows it."""
    from tlslog import cli, pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(pipeline, "analyze", broken)
    monkeypatch.setattr(cli, "analyze", broken)
    monkeypatch.setattr(cli, "_debug", False)  # restored after the test
    monkeypatch.setattr(sys, "argv", ["tlslog", "report", str(LOG)])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 70
    err = capsys.readouterr().err
    assert err.strip() == "tlslog: internal error: RuntimeError: boom (run again with --debug for details)"
    monkeypatch.setattr(sys, "argv", ["tlslog", "report", str(LOG), "--debug"])
    with pytest.raises(RuntimeError, match="boom"):
        cli.main()
