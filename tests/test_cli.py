"""The command line as a user runs it: outputs, golden renderings and exports, exit codes.

Commands run in this process (`tlslog` fixture of conftest); only the console entry point is
started as a real process here. Golden files are whole outputs on the bundled samples, named as
a user would (relative paths from the repository root): a change in any output is a diff.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
import zlib
from collections import Counter

import pytest

from tlslog import __version__, schema
from tlslog.render import EXPORT_FIELDS

from .conftest import REAL_SAMPLES, ROOT, SAMPLES, golden, maillogs, run_tlslog, tlslog

LOG = SAMPLES / "realpostfix" / "default" / "maillog"
#: The export contract of the first release, in order (README, "Output contracts").
CONTRACT_FIELDS = [
    "kind", "start", "end", "host", "service", "pid", "peer_name", "peer_ip", "peer_port", "ip_version",
    "encryption", "trust", "protocol", "cipher", "cipher_bits", "queue_ids",
    "recipient", "recipient_domain", "relay", "status", "dsn",
    "evidence", "key_exchange", "sni", "conn_use", "tls_feature", "sasl_method", "sasl_username",
    "complete", "line",
]  # fmt: skip
#: The samples talk to themselves on loopback: count their rows as mail on the wire.
LOOPBACK = ("--internal", "none")
#: Parsed TLS detail lines of the small level-3 and level-4 logs in tests/data.
TLS_DETAIL = {3: 1273, 4: 1747}
#: Samples small enough to keep their whole session exports as golden files.
EXPORT_SAMPLES = [p for p in REAL_SAMPLES if p.name.startswith("e2e-")]


def relative(sample) -> list[str]:  # noqa: ANN001
    return [str(path.relative_to(ROOT)) for path in maillogs(sample)]


@pytest.fixture(autouse=True)
def _in_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def test_version_from_the_console_entry_point():
    run = run_tlslog("--version")
    assert (run.code, run.stdout) == (0, f"tlslog {__version__}\n")


def test_help_lists_commands_and_examples():
    run = tlslog("--help")
    assert run.code == 0
    for text in ("report", "sessions", "unparsed", "ingest", "db", "zcat maillog.*.gz | tlslog report",
                 "tlslog report --journal", "--format html"):
        assert text in run.stdout


@pytest.mark.parametrize("sample", REAL_SAMPLES, ids=[p.name for p in REAL_SAMPLES])
def test_report_table_golden(sample):
    """The whole rendered report at 160 columns (what a pipe gets)."""
    run = tlslog("report", *relative(sample), "--year", "2026", *LOOPBACK)
    assert (run.code, run.stderr) == (0, "")
    golden(f"report-{sample.name}.txt", run.stdout)


@pytest.mark.parametrize("sample", REAL_SAMPLES, ids=[p.name for p in REAL_SAMPLES])
def test_report_json_golden(sample):
    run = tlslog("report", *relative(sample), "--year", "2026", "--format", "json", *LOOPBACK)
    assert (run.code, run.stderr) == (0, "")
    golden(f"report-{sample.name}.json", run.stdout)


@pytest.mark.parametrize("sample", EXPORT_SAMPLES, ids=[p.name for p in EXPORT_SAMPLES])
@pytest.mark.parametrize("format", ["jsonl", "csv"])
def test_sessions_export_golden(sample, format):
    run = tlslog("sessions", *relative(sample), "--year", "2026", "--format", format, *LOOPBACK)
    assert (run.code, run.stderr) == (0, "")
    golden(f"sessions-{sample.name}.{format}", run.stdout)


def test_report_json_contract():
    run = tlslog("report", str(LOG), "--format", "json", "--year", "2026", *LOOPBACK)
    assert run.code == 0
    report = json.loads(run.stdout)
    assert [report[d]["total"] for d in ("inbound", "outbound")] == [308, 60]
    for direction in ("inbound", "outbound"):
        block = report[direction]
        assert list(block)[:6] == ["total", "tls", "plaintext", "tls_failed", "unknown", "coverage"]
        assert block["total"] == block["tls"] + block["plaintext"] + block["tls_failed"] + block["unknown"]
        assert block["coverage"] == pytest.approx(block["tls"] / (block["total"] - block["unknown"]))
        assert list(block["by_ip_version"]) == ["4", "6"]
    assert list(report["by_ip_version"]) == ["4", "6"]
    assert list(report["lines"]) == ["read", "postfix", "parsed", "unparsed", "other", "unrecognized", "duplicate",
                                     "invalid_utf8", "tls_detail"]
    assert sum(report["by_protocol"].values()) == report["inbound"]["tls"] + report["outbound"]["tls"]


@pytest.mark.parametrize("log", [
    "Nov 25 10:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]\n"
    "Nov 25 10:00:01 mx postfix/smtpd[1]: disconnect from unknown[192.0.2.1] ehlo=1 quit=1 commands=2\n",
    "Nov 25 10:00:00 mx dovecot: imap-login: nothing of Postfix at all\n",
    "",
], ids=["no-tls-no-ipv6", "no-sessions", "empty"])
def test_report_contract_on_logs_without_ipv6_or_tls(log, tmp_path):
    """Keys never disappear because a count is 0 (``by_ip_version`` always has "4" and "6")."""
    path = tmp_path / "maillog"
    path.write_text(log, encoding="utf-8")
    report = json.loads(tlslog("report", str(path), "--format", "json").stdout)
    inbound = 1 if log.count("connect from") else 0
    assert report["by_ip_version"] == {"4": inbound, "6": 0}
    for direction, total in (("inbound", inbound), ("outbound", 0)):
        assert report[direction]["by_ip_version"] == {"4": total, "6": 0}
        assert (report[direction]["total"], report[direction]["tls"]) == (total, 0)
        assert report[direction]["coverage"] == (0.0 if total else None)
        assert report[direction]["by_protocol"] == {} and report[direction]["by_trust"] == {}
    assert report["by_protocol"] == {} and report["by_trust"] == {}
    assert report["period"] == ({"first": "2026-11-25T10:00:00", "last": "2026-11-25T10:00:00"} if inbound else None)


def test_sessions_jsonl_contract():
    run = tlslog("sessions", str(LOG), "--format", "jsonl")
    assert run.code == 0
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(rows) == 368
    assert list(EXPORT_FIELDS)[: len(CONTRACT_FIELDS)] == CONTRACT_FIELDS
    assert list(EXPORT_FIELDS) == [c.name for c in schema.SESSION if c.export]
    for row in rows:
        assert list(row) == list(EXPORT_FIELDS)
        assert isinstance(row["queue_ids"], list) and isinstance(row["messages"], int)
        assert row["source"] == str(LOG)
    # the report's totals of this log (test_report_json_contract), row by row
    assert Counter((r["kind"], r["encryption"]) for r in rows) == {
        ("inbound", "tls"): 186, ("inbound", "plaintext"): 100, ("inbound", "tls-failed"): 22,
        ("outbound", "tls"): 35, ("outbound", "plaintext"): 16, ("outbound", "tls-failed"): 7,
        ("outbound", "unknown"): 2}
    assert Counter(r["ip_version"] for r in rows) == {4: 273, 6: 95}
    assert [r["line"] for r in rows] == sorted(r["line"] for r in rows)


def test_sessions_csv_has_the_same_rows_as_jsonl():
    rows = list(csv.DictReader(io.StringIO(tlslog("sessions", str(LOG), "--format", "csv").stdout)))
    records = [json.loads(line) for line in tlslog("sessions", str(LOG), "--format", "jsonl").stdout.splitlines()]
    assert len(rows) == len(records) == 368 and list(rows[0]) == list(EXPORT_FIELDS)
    for row, record in zip(rows, records):
        for name, value in record.items():
            text = " ".join(value) if isinstance(value, list) else "" if value is None else str(value)
            assert row[name] == text, name


def test_sessions_table():
    run = tlslog("sessions", *relative(SAMPLES / "realpostfix" / "e2e-loglevel1"), "--year", "2026")
    assert run.code == 0
    golden("sessions-e2e-loglevel1.txt", run.stdout)


def test_missing_file_is_reported_and_the_rest_still_analysed(tmp_path):
    run = tlslog("report", str(tmp_path / "missing.log"), str(LOG), "--format", "json", *LOOPBACK)
    assert run.code == 1
    assert run.stderr == f"tlslog: {tmp_path / 'missing.log'}: No such file or directory\n"
    report = json.loads(run.stdout)
    assert report["inbound"]["total"] == 308
    assert report["inputs"] == {"read": 1, "skipped": 1, "damaged": 0, "problems": [
        {"input": str(tmp_path / "missing.log"), "problem": "skipped", "reason": "No such file or directory"}]}
    assert report["notes"][-1] == (f"1 input could not be read ({tmp_path / 'missing.log'}: No such file or "
                                   "directory): this report covers the 1 input read.")


def test_damaged_gzip_exit_code(tmp_path):
    blob = gzip.compress(LOG.read_bytes())
    (tmp_path / "cut.gz").write_bytes(blob[:-100])
    run = tlslog("report", str(tmp_path / "cut.gz"), "--format", "json")
    assert run.code == 3
    assert run.stderr == f"tlslog: {tmp_path / 'cut.gz'}: gzip data ends early (file truncated?)\n"
    report = json.loads(run.stdout)
    assert report["inputs"] == {"read": 1, "skipped": 0, "damaged": 1, "problems": [
        {"input": str(tmp_path / "cut.gz"), "problem": "damaged", "reason": "gzip data ends early (file truncated?)"}]}
    lines = report["lines"]
    # every line before the damage, and not more: what zlib inflates is 2078 whole lines (of 2086) and
    # the timestamp of the next one ("Nov 25 03:44:36"), read as one more line, unrecognised
    recovered = zlib.decompressobj(wbits=31).decompress(blob[:-100])
    whole, piece = recovered.count(b"\n"), recovered.rsplit(b"\n", 1)[1]
    assert LOG.read_bytes().startswith(recovered) and piece and b" postfix/" not in piece
    assert (lines["read"], lines["postfix"], lines["unrecognized"]) == (whole + 1, whole, 1)


def test_strict_fails_on_unparsed_lines(tmp_path):
    path = tmp_path / "log"
    path.write_text(LOG.read_text() + "Nov 25 03:59:00 mx postfix/smtpd[1]: something new entirely\n")
    assert tlslog("report", str(path), "--format", "json").code == 0
    run = tlslog("report", str(path), "--format", "json", "--strict")
    assert run.code == 4
    assert run.stderr == "tlslog: --strict: 1 lines were not understood (see: tlslog unparsed FILES)\n"


def test_unparsed_groups_lines_by_shape(tmp_path):
    path = tmp_path / "log"
    path.write_text(
        "Nov 25 03:59:00 mx postfix/smtpd[1]: frobnicated 3 widgets from unknown[192.0.2.1]\n"
        "Nov 25 03:59:01 mx postfix/smtpd[2]: frobnicated 12 widgets from unknown[192.0.2.7]\n"
        "Nov 25 03:59:02 mx postfix/smtpd[2]: connect from unknown[192.0.2.7]\n"
        "Nov 25 03:59:03 mx postfix/smtp[3]: 1A2B3C4D5E: to=<a@example.net>, relay=none, delay=1\n"
    )
    run = tlslog("unparsed", str(path))
    assert run.code == 0
    assert run.stdout == (
        "       2  smtpd: frobnicated N widgets from unknown[ADDR]\n"
        "          line 1: postfix/smtpd: frobnicated 3 widgets from unknown[192.0.2.1]\n"
        "          line 2: postfix/smtpd: frobnicated 12 widgets from unknown[192.0.2.7]\n"
        "       1  smtp: QUEUEID: to=<ADDR>, relay=none, delay=N\n"
        "          line 4: postfix/smtp: 1A2B3C4D5E: to=<a@example.net>, relay=none, delay=1\n"
    )
    assert run.stderr == "tlslog: 3 unparsed of 4 Postfix lines (4 read)\n"


def test_unparsed_golden_on_the_external_corpus():
    """Every line shape of the public logs that no rule reads yet (README: send them in)."""
    external = ROOT.parent / "shared" / "corpus" / "external"
    if not external.is_dir():
        pytest.skip(f"the external corpus is not beside the repository ({external})")
    files = sorted(str(p.relative_to(ROOT.parent)) for p in external.rglob("*")
                   if p.is_file() and p.suffix in ("", ".log", ".1", ".gz", ".lines", ".decomma", ".maillog")
                   and p.name not in ("PROVENANCE.md", "tlslog.args"))
    run = tlslog("unparsed", "--year", "2020", *(f"../{f}" for f in files))
    assert run.code == 0
    golden("unparsed-external.txt", run.stdout)


def test_bad_option_is_a_usage_error():
    run = tlslog("report", "--format", "yaml", str(LOG))
    assert run.code == 2 and "'yaml' is not one of 'table', 'json'" in run.stderr and "Traceback" not in run.stderr


def test_internal_errors_are_one_line_unless_debug(monkeypatch, capsys):
    """A bug must not greet the user with a traceback; ``--debug`` shows it."""
    from tlslog import analysis, cli

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(analysis, "analyze", broken)
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


@pytest.mark.parametrize(("name", "detail"), [("tls-loglevel3.maillog", TLS_DETAIL[3]), ("tls-loglevel4.maillog", TLS_DETAIL[4])])
def test_tls_log_levels_3_and_4_are_understood(name, detail):
    """Handshake states, certificate and cache lines, hex dumps: known detail without a verdict,
    counted apart, never a reason for --strict to fail."""
    run = tlslog("report", str(ROOT / "tests" / "data" / name), "--year", "2026", "--format", "json", "--strict")
    assert (run.code, run.stderr) == (0, "")
    lines = json.loads(run.stdout)["lines"]
    assert (lines["unparsed"], lines["tls_detail"]) == (0, detail)


@pytest.mark.parametrize("format", ["table", "json"])
def test_report_by_week_golden(format):
    """A month of a busy MX (genlog --days 28 --downgrade 3): the weekly trend, at 80 columns."""
    run = tlslog("report", "sample_logs/synthetic/month.log.gz", "--year", "2024", "--by", "week", "--format", format)
    assert (run.code, run.stderr) == (0, "")
    golden(f"report-month-by-week.{'txt' if format == 'table' else 'json'}", run.stdout)


def test_the_history_store_is_not_read_on_a_cluster(tmp_path):
    run = tlslog("report", "--db", str(tmp_path / "history.db"), "--engine", "dask")
    assert run.code == 2
    assert "the history store is read here: --engine dask and --scheduler read log files and --parquet" in run.stderr
