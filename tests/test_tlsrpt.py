"""`tlslog tlsrpt`: RFC 8460 reports from the logs, valid against the RFC's report format."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from jsonschema import Draft202012Validator

from tlslog.tlsrpt import RESULT_TYPES, result_type

from .conftest import DATA, REAL_SAMPLES, SAMPLES, maillogs, tlslog

SCHEMA = Draft202012Validator(json.loads((DATA / "rfc8460-report.schema.json").read_text()))
MONTH = SAMPLES / "synthetic" / "month.log.gz"

LINES = """\
Jun  4 11:52:07 mx1 postfix/smtp[100]: TLSRPT: status=success, domain=example.net, receiving_mx=mx.example.net[192.0.2.1]
Jun  4 11:52:08 mx1 postfix/smtp[100]: TLSRPT: status=success, domain=example.net, receiving_mx=mx.example.net[192.0.2.1]
Jun  4 11:53:00 mx1 postfix/smtp[101]: TLSRPT: status=failure, domain=example.net, receiving_mx=mx2.example.net[192.0.2.2], failure_type=validation_failure, failure_reason=self-signed_certificate
Jun  4 11:54:00 mx1 postfix/smtp[102]: TLSRPT: status=failure, domain=Example.NET, receiving_mx=mx2.example.net[192.0.2.2], failure_type=starttls_not_supported
Jun  4 11:55:00 mx1 postfix/smtp[103]: TLSRPT: status=failure, domain=example.net, receiving_mx=mx2.example.net[192.0.2.2], failure_type=unfinished_policY
Jun  4 11:55:01 mx1 postfix/smtp[103]: TLSRPT: status=failure, domain=example.net, receiving_mx=mx2.example.net[192.0.2.2], failure_type=unfinished_policY
Jun  5 09:00:00 mx1 postfix/smtp[104]: TLSRPT: status=success, domain=example.org, receiving_mx=mx.example.org[2001:db8::25]
Jun  5 09:00:01 mx1 postfix/smtp[105]: TLSRPT: status=whatever, domain=example.org
"""


def _reports(*args: str) -> list[dict]:
    run = tlslog("tlsrpt", *args, "--format", "json")
    assert run.code == 0, run.stderr
    return json.loads(run.stdout)


def _assert_valid(reports: list[dict]) -> None:
    for report in reports:
        errors = sorted(SCHEMA.iter_errors(report), key=str)
        assert not errors, (report["report-id"], [e.message for e in errors])


def test_postfix_tlsrpt_lines_are_counted_exactly(tmp_path):
    log = tmp_path / "maillog"
    log.write_text(LINES)
    reports = _reports(str(log), "--year", "2026", "--organization", "Example Mail", "--contact", "tls@example.com")
    _assert_valid(reports)
    assert [(r["date-range"]["start-datetime"], r["policies"][0]["policy"]["policy-domain"]) for r in reports] == [
        ("2026-06-04T00:00:00Z", "example.net"), ("2026-06-05T00:00:00Z", "example.org")]
    net = reports[0]
    assert (net["organization-name"], net["contact-info"]) == ("Example Mail", "tls@example.com")
    assert net["report-id"] == "2026-06-04T00:00:00Z_example.net@tlslog"
    assert net["date-range"]["end-datetime"] == "2026-06-04T23:59:59Z"
    policy = net["policies"][0]
    assert policy["summary"] == {"total-successful-session-count": 2, "total-failure-session-count": 4}
    assert policy["failure-details"] == [
        {"result-type": "validation-failure", "receiving-mx-hostname": "mx2.example.net", "receiving-ip": "192.0.2.2",
         "failed-session-count": 2, "failure-reason-code": "unfinished_policY"},
        {"result-type": "starttls-not-supported", "receiving-mx-hostname": "mx2.example.net",
         "receiving-ip": "192.0.2.2", "failed-session-count": 1},
        {"result-type": "validation-failure", "receiving-mx-hostname": "mx2.example.net", "receiving-ip": "192.0.2.2",
         "failed-session-count": 1, "failure-reason-code": "self-signed_certificate"},
    ]
    assert reports[1]["policies"][0]["summary"] == {"total-successful-session-count": 1,
                                                     "total-failure-session-count": 0}
    only = _reports(str(log), "--year", "2026", "--domain", "EXAMPLE.org")
    assert [r["policies"][0]["policy"]["policy-domain"] for r in only] == ["example.org"]


def test_every_postfix_failure_type_has_an_rfc_result_type():
    assert sorted(RESULT_TYPES.values()) == sorted(
        SCHEMA.schema["properties"]["policies"]["items"]["properties"]["failure-details"]["items"]["properties"]
        ["result-type"]["enum"])


@pytest.mark.parametrize("encryption,evidence,reason,expected", [
    ("tls", "tls-line", None, None),
    ("plaintext", "no-tls-line", None, "starttls-not-supported"),
    ("plaintext", "starttls-not-offered", "TLS is required, but was not offered", "starttls-not-supported"),
    ("tls", "certificate-not-verified", "certificate verification failed: num=62:hostname mismatch",
     "certificate-host-mismatch"),
    ("tls-failed", "ssl-connect-error", "certificate has expired", "certificate-expired"),
    ("tls", "certificate-not-verified", "certificate verification failed: self-signed certificate",
     "certificate-not-trusted"),
    ("tls-failed", "ssl-connect-error", "tlsv1 alert protocol version", "validation-failure"),
    ("unknown", "cut-off", None, None),
])
def test_result_types_from_what_postfix_said(encryption, evidence, reason, expected):
    assert result_type(encryption, evidence, reason) == expected


def _connections(frame: pd.DataFrame) -> tuple[int, int]:
    """Sessions and failed sessions, counted from the export: one per (host, service, pid, relay,
    start) among deliveries with evidence; failed when one of its deliveries was not encrypted
    (or failed verification)."""
    rows = frame[(frame["kind"] == "outbound") & (frame["hop"] == "external") & (frame["encryption"] != "unknown")
                 & frame["recipient_domain"].notna()]
    keys = rows[["recipient_domain", "host", "service", "pid", "relay", "start"]].astype(str).agg("|".join, axis=1)
    bad = (rows["encryption"] != "tls") | (rows["evidence"] == "certificate-not-verified")
    return int(keys.nunique()), int(keys[bad].nunique())


@pytest.mark.parametrize("sample", ["month", *[p.name for p in REAL_SAMPLES]])
def test_reports_from_deliveries_are_valid_and_count_every_connection(sample):
    if sample == "month":
        paths, extra = [str(MONTH)], ["--year", "2024"]
    else:
        paths, extra = [str(p) for p in maillogs(SAMPLES / "realpostfix" / sample)], ["--internal", "none"]
    reports = _reports(*paths, *extra)
    _assert_valid(reports)
    run = tlslog("sessions", *paths, *extra, "--format", "jsonl")
    frame = pd.DataFrame([json.loads(line) for line in run.stdout.splitlines()])
    sessions, failed = _connections(frame)
    summaries = [r["policies"][0]["summary"] for r in reports]
    assert sum(s["total-successful-session-count"] + s["total-failure-session-count"] for s in summaries) == sessions
    assert sum(s["total-failure-session-count"] for s in summaries) == failed
    for report in reports:
        policy = report["policies"][0]
        assert sum(d["failed-session-count"] for d in policy.get("failure-details", [])) == \
            policy["summary"]["total-failure-session-count"]


def test_jsonl_and_table():
    lines = tlslog("tlsrpt", str(MONTH), "--year", "2024", "--format", "jsonl").stdout.splitlines()
    reports = _reports(str(MONTH), "--year", "2024")
    assert [json.loads(line) for line in lines] == reports
    table = tlslog("tlsrpt", str(MONTH), "--year", "2024", "--format", "table", env={"COLUMNS": "140"})
    assert table.code == 0 and "TLSRPT reports your peers would receive (RFC 8460)" in table.stdout
    assert table.stdout.count("deliveries") == len(reports)
