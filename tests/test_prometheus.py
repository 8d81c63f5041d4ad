"""``tlslog report --format prometheus``: valid text exposition whose numbers are the JSON report's.

Parsed with prometheus_client's own parser (what a scraper accepts), on the generator's month of
log and one real Postfix log, plus an all but empty log and hand-made hostile labels.
"""

from __future__ import annotations

import calendar
import copy
import datetime as dt
import functools
import json
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tlslog.prometheus import FAMILIES, label_value, report_prometheus

from .conftest import SAMPLES, tlslog

MONTH = str(SAMPLES / "synthetic" / "month.log.gz")
YEAR = "2026"  # of the year-less samples' stamps: the dates below, whatever today is
DEFAULT = str(SAMPLES / "realpostfix" / "default" / "maillog")
WIRE = ("inbound", "mx", "submission", "outbound")
VERDICTS = ("tls", "plaintext", "tls_failed", "unknown")
#: Every label the output may carry: bounded sets only, never a peer.
LABELS = {"direction", "encryption", "protocol", "trust", "ip_version", "reason", "kind", "version", "state"}

Series = dict[tuple[str, frozenset], float]


@functools.cache
def run(*args: str) -> tuple[dict, str]:
    """The JSON report and the Prometheus text of the same arguments (each run once)."""
    reports = []
    for format in ("json", "prometheus"):
        result = tlslog("report", *args, "--year", YEAR, "--format", format)
        assert result.code == 0, result.stderr
        reports.append(result.stdout)
    return json.loads(reports[0]), reports[1]


def series(text: str) -> Series:
    """(sample name, labels) -> value; fails on a series written twice."""
    out: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in out, f"series written twice: {key}"
            out[key] = sample.value
    return out


def value(values: Series, name: str, **labels: str) -> float:
    return values[(name, frozenset(labels.items()))]


def names(values: Series) -> set[str]:
    return {name for name, _ in values}


# -- the format ------------------------------------------------------------------------------


def test_label_value_escapes_backslash_quote_and_newline() -> None:
    assert label_value('a"b\\c\n') == 'a\\"b\\\\c\\n'
    assert label_value("plain TLSv1.3") == "plain TLSv1.3"


def test_label_value_makes_other_control_characters_visible_text() -> None:
    # a CR or terminal escape from a log must not reach a dashboard raw; the result is still valid
    assert label_value("x\r\x1b[31m") == "x\\\\x0d\\\\x1b[31m"


def test_hostile_reason_round_trips_through_the_parser() -> None:
    data, _ = run(MONTH, "--internal", "none")
    hostile = copy.deepcopy(data)
    hostile["failures"]["inbound"] = [{"reason": 'a"b\\c\nd', "count": 7, "peers": 1, "top_peer": "x[192.0.2.1]"}]
    values = series(report_prometheus(hostile))
    assert value(values, "tlslog_tls_failures_total", direction="inbound", reason='a"b\\c\nd') == 7


@pytest.mark.parametrize("args", [(MONTH, "--internal", "none"), (DEFAULT, "--internal", "none"), (DEFAULT,)],
                         ids=["month", "realpostfix-wire", "realpostfix-internal"])
def test_every_family_has_help_type_and_a_conventional_name(args: tuple[str, ...]) -> None:
    _, text = run(*args)
    helps = re.findall(r"^# HELP (\S+) \S", text, re.M)
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    written = [line.split("{")[0].split(" ")[0] for line in text.splitlines() if not line.startswith("#")]
    assert len(helps) == len(set(helps)) == len(types), "HELP and TYPE once per family"
    assert set(helps) == set(types) == set(written)
    for name, kind in types.items():
        assert re.fullmatch(r"tlslog_[a-z_]+", name), name
        assert kind in ("counter", "gauge"), name
        assert name.endswith("_total") == (kind == "counter"), name
        if kind == "gauge":
            assert name.endswith(("_ratio", "_seconds", "_info")), name
    # each family's series follow its TYPE line, before the next family's
    order = [line.split(" ")[2] if line.startswith("# TYPE") else None for line in text.splitlines()]
    current = None
    for line, family in zip(text.splitlines(), order):
        current = family or current
        if not line.startswith("#"):
            assert line.split("{")[0].split(" ")[0] == current, line
    families = list(text_string_to_metric_families(text))
    assert all(f.documentation and f.type in ("counter", "gauge") for f in families)
    assert {label for f in families for s in f.samples for label in s.labels} <= LABELS


def test_families_are_declared_once() -> None:
    declared = [f.name for f in FAMILIES]
    assert len(declared) == len(set(declared)) == 18


# -- the values are the JSON report's --------------------------------------------------------


def test_month_sessions_and_messages_by_verdict() -> None:
    data, text = run(MONTH, "--internal", "none")
    values = series(text)
    assert value(values, "tlslog_sessions_total", direction="inbound", encryption="tls") == 1890
    assert value(values, "tlslog_sessions_total", direction="inbound", encryption="plaintext") == 557
    assert value(values, "tlslog_sessions_total", direction="inbound", encryption="tls_failed") == 192
    assert value(values, "tlslog_sessions_total", direction="outbound", encryption="unknown") == 36
    assert value(values, "tlslog_messages_total", direction="inbound", encryption="tls") == 1101
    for direction in WIRE:
        for verdict in VERDICTS:
            assert value(values, "tlslog_sessions_total", direction=direction, encryption=verdict) \
                == data[direction][verdict]
            assert value(values, "tlslog_messages_total", direction=direction, encryption=verdict) \
                == data[direction]["messages"][verdict]


def test_month_coverage_is_a_ratio_of_the_report() -> None:
    data, text = run(MONTH, "--internal", "none")
    values = series(text)
    assert value(values, "tlslog_session_tls_coverage_ratio", direction="inbound") == 1890 / 2639
    assert value(values, "tlslog_mail_tls_coverage_ratio", direction="inbound") == 1101 / 1299
    assert value(values, "tlslog_mail_tls_coverage_ratio", direction="submission") == 1.0
    for direction in WIRE:
        block = data[direction]
        assert value(values, "tlslog_session_tls_coverage_ratio", direction=direction) == block["coverage"]
        assert value(values, "tlslog_mail_tls_coverage_ratio", direction=direction) == block["messages"]["coverage"]
        assert 0 <= block["coverage"] <= 1


def test_month_breakdowns_weak_tls_and_failures() -> None:
    data, text = run(MONTH, "--internal", "none")
    values = series(text)
    assert value(values, "tlslog_sessions_by_protocol_total", direction="inbound", protocol="TLSv1") == 55
    assert value(values, "tlslog_sessions_by_trust_total", direction="outbound", trust="Trusted") == 485
    assert value(values, "tlslog_weak_tls_sessions_by_reason_total", direction="inbound", reason="broken_cipher") == 12
    assert value(values, "tlslog_unverified_tls_sessions_total", direction="outbound") == 254
    assert value(values, "tlslog_tls_failures_total", direction="inbound", reason="unsupported protocol") == 77
    for direction in WIRE:
        block = data[direction]
        for key, name, label in (("by_protocol", "protocol", "protocol"), ("by_trust", "trust", "trust"),
                                 ("by_ip_version", "ip_version", "ip_version")):
            got = {dict(labels)[label]: v for (sample, labels), v in values.items()
                   if sample == f"tlslog_sessions_by_{name}_total" and ("direction", direction) in labels}
            assert got == block[key], (direction, key)
        assert value(values, "tlslog_weak_tls_sessions_total", direction=direction) == block["weak_tls"]["total"]
    got = {(dict(labels)["direction"], dict(labels)["reason"]): v for (sample, labels), v in values.items()
           if sample == "tlslog_tls_failures_total"}
    assert got == {(d, f["reason"]): f["count"] for d, rows in data["failures"].items() for f in rows}


def test_month_lines_period_and_info() -> None:
    data, text = run(MONTH, "--internal", "none")
    values = series(text)
    assert value(values, "tlslog_log_lines_total", kind="read") == 30000
    for kind in ("read", "parsed", "unparsed"):
        assert value(values, "tlslog_log_lines_total", kind=kind) == data["lines"][kind]
    # the log has no zone: its wall clock is read as UTC
    assert data["period"] == {"first": "2026-11-28T22:21:59", "last": "2026-12-26T16:01:14"}
    assert value(values, "tlslog_report_period_start_seconds") == calendar.timegm((2026, 11, 28, 22, 21, 59))
    assert value(values, "tlslog_report_period_end_seconds") == calendar.timegm((2026, 12, 26, 16, 1, 14))
    assert [k for k in values if k[0] == "tlslog_info"] == [("tlslog_info", frozenset({("version", "0.1.0")}))]
    assert value(values, "tlslog_info", version="0.1.0") == 1


def test_period_with_a_zone_is_converted() -> None:
    data, _ = run(MONTH, "--internal", "none")
    zoned = {**data, "period": {"first": "2026-11-28T22:21:59+01:00", "last": "2026-12-26T16:01:14-05:30"}}
    values = series(report_prometheus(zoned))
    assert value(values, "tlslog_report_period_start_seconds") == calendar.timegm((2026, 11, 28, 21, 21, 59))
    assert value(values, "tlslog_report_period_end_seconds") == \
        dt.datetime(2026, 12, 26, 21, 31, 14, tzinfo=dt.timezone.utc).timestamp()


def test_realpostfix_on_the_wire() -> None:
    data, text = run(DEFAULT, "--internal", "none")
    values = series(text)
    assert [value(values, "tlslog_sessions_total", direction="inbound", encryption=v) for v in VERDICTS] \
        == [186, 100, 22, 0]
    assert [value(values, "tlslog_sessions_total", direction="outbound", encryption=v) for v in VERDICTS] \
        == [35, 16, 7, 2]
    assert value(values, "tlslog_session_tls_coverage_ratio", direction="outbound") == 35 / 58
    assert value(values, "tlslog_session_tls_coverage_ratio", direction="outbound") == data["outbound"]["coverage"]
    assert value(values, "tlslog_mail_tls_coverage_ratio", direction="mx") == data["mx"]["messages"]["coverage"]
    assert value(values, "tlslog_tls_failures_total", direction="outbound",
                 reason="TLS is required, but was not offered") == 4
    assert value(values, "tlslog_log_lines_total", kind="read") == 2086
    assert all(value(values, "tlslog_internal_sessions_total", direction=d, encryption=v) == 0
               for d in ("inbound", "outbound") for v in VERDICTS)


def test_realpostfix_internal_hops_and_no_coverage_without_rows() -> None:
    # loopback peers are hops inside the mail system by default: nothing on the wire
    data, text = run(DEFAULT)
    values = series(text)
    assert data["inbound"]["coverage"] is None and data["inbound"]["messages"]["coverage"] is None
    assert not names(values) & {"tlslog_session_tls_coverage_ratio", "tlslog_mail_tls_coverage_ratio",
                                "tlslog_tls_failures_total", "tlslog_sessions_by_protocol_total"}
    assert value(values, "tlslog_sessions_total", direction="inbound", encryption="tls") == 0
    assert [value(values, "tlslog_internal_sessions_total", direction="inbound", encryption=v) for v in VERDICTS] \
        == [186, 100, 22, 0]
    assert value(values, "tlslog_internal_messages_total", direction="outbound", encryption="tls") \
        == data["internal"]["outbound"]["messages"]["tls"] == 31


def test_a_log_without_sessions_still_parses(tmp_path) -> None:  # noqa: ANN001
    log = tmp_path / "maillog"
    log.write_text("Nov 25 03:43:52 mx postfix/qmgr[1]: ABC123: removed\n", encoding="utf-8")
    data, text = run(str(log))
    values = series(text)
    assert data["period"] is None
    assert not any(name.endswith(("_ratio", "_seconds")) for name in names(values))
    assert value(values, "tlslog_log_lines_total", kind="read") == 1
    assert value(values, "tlslog_log_lines_total", kind="parsed") == 0
    assert sum(v for (name, _), v in values.items() if name == "tlslog_sessions_total") == 0
    assert len([k for k in values if k[0] == "tlslog_sessions_total"]) == len(WIRE) * len(VERDICTS)
    assert value(values, "tlslog_info", version="0.1.0") == 1
    assert text.endswith("\n") and "NaN" not in text


def test_inputs_skipped_and_damaged_are_series(tmp_path) -> None:  # noqa: ANN001
    import gzip

    cut = tmp_path / "cut.gz"
    blob = gzip.compress(Path(DEFAULT).read_bytes())
    cut.write_bytes(blob[: len(blob) // 2])
    result = tlslog("report", DEFAULT, str(tmp_path / "missing"), str(cut), "--year", YEAR, "--format", "prometheus")
    assert result.code == 1
    values = series(result.stdout)
    assert {state: value(values, "tlslog_inputs_total", state=state) for state in ("read", "skipped", "damaged")} == {
        "read": 2, "skipped": 1, "damaged": 1}
    assert value(series(run(DEFAULT)[1]), "tlslog_inputs_total", state="skipped") == 0
