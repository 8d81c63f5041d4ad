"""On every bundled real-Postfix log, each verdict matches what really happened.

``sample_logs/realpostfix/*/truth.jsonl`` says, for every SMTP session the test driver made and
every delivery Postfix relayed, what the truth was (see sample_logs/README.md); the export must
match it session by session (``tests/truthcheck.py`` has the exact rules) and the report totals
must equal the export's.
"""

from __future__ import annotations

import copy
import functools
import gzip
import json
from pathlib import Path

import pytest

from tlslog.analysis import Options, analyze
from tlslog.classify import Classifier
from tlslog.render import session_records
from tlslog.report import build_report

from . import truthcheck
from .conftest import REAL_SAMPLES, SAMPLES, maillogs

MIXED = SAMPLES / "realpostfix" / "e2e-mixed"
#: The harness talks to itself on loopback: every row is mail on the wire here (--internal none).
ON_THE_WIRE = Classifier(hops=False)
SEGMENTS = json.loads((MIXED / "segments.json").read_text(encoding="utf-8"))["segments"]


def _truth(sample: Path) -> list[dict]:
    return [json.loads(line) for line in (sample / "truth.jsonl").read_text(encoding="utf-8").splitlines() if line]


#: Truth items of each sample (tests/truthcheck.py): one per ``in`` row, one per ``out`` row, and one
#: per sink session (distinct sink queue ids, and failed deliveries the driver saw reach a sink).
ITEMS = {
    "conncache": {"in": 150, "out": 185, "sink": 50},
    "default": {"in": 250, "out": 60, "sink": 43},
    "e2e-loglevel0": {"in": 24, "out": 10, "sink": 9},
    "e2e-loglevel1": {"in": 58, "out": 23, "sink": 21},
    "e2e-loglevel2": {"in": 32, "out": 11, "sink": 10},
    "e2e-mixed": {"in": 31, "out": 18, "sink": 18},
    "e2e-mixed-rotated": {"in": 31, "out": 18, "sink": 18},
    "hostnames-sasl": {"in": 150, "out": 32, "sink": 22},
    "loglevel0": {"in": 150, "out": 28, "sink": 21},
}
#: The same for the sessions of each segment of e2e-mixed (6 or 7 sessions, 3 or 4 relayed messages).
SEGMENT_ITEMS = {0: {"in": 6, "out": 3, "sink": 3}, 1: {"in": 6, "out": 3, "sink": 3},
                 2: {"in": 6, "out": 4, "sink": 4}, 3: {"in": 7, "out": 4, "sink": 4},
                 4: {"in": 6, "out": 4, "sink": 4}}


@functools.cache
def _analysed(sample: Path) -> tuple[list[dict], list[dict], dict]:
    analysis = analyze([str(p) for p in maillogs(sample)], Options(jobs=1, year=2026, classifier=ON_THE_WIRE))
    frame = analysis.sessions
    return _truth(sample), list(session_records(frame)), build_report(frame, analysis.stats)


def _load(sample):
    """Truth rows, exported sessions and report of a sample: analysed once, a fresh copy for each test."""
    return copy.deepcopy(_analysed(sample))


@pytest.mark.parametrize("sample", REAL_SAMPLES, ids=[p.name for p in REAL_SAMPLES])
def test_every_session_matches_the_truth(sample):
    rows, sessions, _ = _load(sample)
    result = truthcheck.check(rows, sessions)
    assert result.items == ITEMS[sample.name]
    assert result.matched == sum(result.items.values())
    assert result.ok, result.format()


@pytest.mark.parametrize("sample", REAL_SAMPLES, ids=[p.name for p in REAL_SAMPLES])
def test_report_totals_agree_with_export_and_truth(sample):
    rows, sessions, report = _load(sample)
    counted = truthcheck.export_totals(sessions)
    mismatches = truthcheck.compare_totals("report-vs-sessions", counted, truthcheck.report_totals(report))
    mismatches += truthcheck.compare_totals("sessions-vs-truth", truthcheck.expected_totals(rows), counted)
    assert not mismatches, "\n".join(map(str, mismatches))


def test_a_wrong_verdict_is_caught():
    """The check can fail: flip one verdict and it must say which session and field."""
    rows, sessions, _ = _load(REAL_SAMPLES[0])
    victim = next(s for s in sessions if s["encryption"] == "tls" and s["kind"] == "inbound")
    victim["encryption"] = "plaintext"
    result = truthcheck.check(rows, sessions)
    assert not result.ok
    assert REAL_SAMPLES[0].name == "conncache" and victim["line"] == 3  # its first session, truth row s102-00001
    assert result.mismatches == [truthcheck.Mismatch("s102-00001", "encryption", '"tls"', '"plaintext"')]


# -- rotated pairs written at different TLS log levels ------------------------------------------

def _segment_rows(indexes: list[int]) -> list[dict]:
    """Truth rows of the driver sessions of these segments (sessions run in segment order)."""
    bounds, first = {}, 1
    for segment in SEGMENTS:
        bounds[segment["index"]] = range(first, first + segment["sessions"])
        first += segment["sessions"]
    numbers = {n for i in indexes for n in bounds[i]}
    return [r for r in _truth(MIXED) if int(r["id"].split("-")[1]) in numbers]


def _lines(segment: dict, lines: list[str], *, master: bool) -> str:
    part = lines[segment["first_line"] - 1 : segment["last_line"]]
    return "".join(line for line in part if master or " postfix/master[" not in line)


PAIRS = [(0, 1), (1, 2), (2, 3), (3, 4)]
PAIR_IDS = [f"{SEGMENTS[a]['tls_loglevel']}-then-{SEGMENTS[b]['tls_loglevel']}" for a, b in PAIRS]


@pytest.mark.parametrize("master", [True, False], ids=["with-reload-lines", "master-lines-filtered-out"])
@pytest.mark.parametrize(("older", "newer"), PAIRS, ids=PAIR_IDS)
def test_rotated_pair_with_different_tls_log_levels(older, newer, master, tmp_path):
    """``maillog.1.gz`` written at one TLS log level, ``maillog`` at another: every session of both
    matches the truth, whether or not the log still has the master's reload lines (the file
    boundary alone separates the stretches then)."""
    lines = (MIXED / "maillog").read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "maillog.1.gz").write_bytes(gzip.compress(_lines(SEGMENTS[older], lines, master=master).encode()))
    (tmp_path / "maillog").write_text(_lines(SEGMENTS[newer], lines, master=master), encoding="utf-8")
    analysis = analyze([str(tmp_path / "maillog"), str(tmp_path / "maillog.1.gz")], Options(jobs=1, year=2026))
    rows = _segment_rows([older, newer])
    result = truthcheck.check(rows, list(session_records(analysis.sessions)))
    assert result.items == {kind: SEGMENT_ITEMS[older][kind] + SEGMENT_ITEMS[newer][kind]
                            for kind in ("in", "out", "sink")}
    assert result.matched == sum(result.items.values())
    assert result.ok, result.format()


@pytest.mark.parametrize("index", [s["index"] for s in SEGMENTS], ids=[f"segment{s['index']}-level{s['tls_loglevel']}"
                                                                        for s in SEGMENTS])
def test_each_level_read_alone(index, tmp_path):
    lines = (MIXED / "maillog").read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "maillog").write_text(_lines(SEGMENTS[index], lines, master=False), encoding="utf-8")
    analysis = analyze([str(tmp_path / "maillog")], Options(jobs=1, year=2026))
    result = truthcheck.check(_segment_rows([index]), list(session_records(analysis.sessions)))
    assert result.items == SEGMENT_ITEMS[index]
    assert result.matched == sum(result.items.values())
    assert result.ok, result.format()


def test_one_file_with_every_level_but_no_reload_lines_is_caught(tmp_path):
    """Without reload lines or a file boundary the levels cannot be told apart within a day: the
    TLS deliveries of the level-0 segments look plaintext. This is the documented limit, and it
    shows that the pair tests above can fail."""
    path = tmp_path / "maillog"
    path.write_text("".join(line for line in (MIXED / "maillog").read_text(encoding="utf-8").splitlines(keepends=True)
                            if " postfix/master[" not in line), encoding="utf-8")
    analysis = analyze([str(path)], Options(jobs=1, year=2026))
    result = truthcheck.check(_truth(MIXED), list(session_records(analysis.sessions)))
    wrong = sorted((m.id, m.got) for m in result.mismatches)
    assert wrong == [(f"mixed-{n:03d}-out", '"plaintext"') for n in (4, 5, 15, 16, 28, 29, 31)], result.format()


def _expected_messages(rows: list[dict]) -> tuple[int, int]:
    """(inbound, outbound) messages from the truth: every queue id an smtpd session made (the
    driver's sessions and the sinks' that received relayed mail), and every delivery sent."""
    inbound = outbound = 0
    sink_ids = set()
    for row in rows:
        if row["direction"] == "in":
            if "log_message_queue_ids" in row:  # this project's harness: the sink's id is listed too
                inbound += len(row["log_message_queue_ids"] or ())
            elif row.get("log_queue_id"):
                inbound += 1
        else:
            outbound += row.get("outcome") == "sent"
            if row.get("log_sink_queue_id") and not any("log_message_queue_ids" in r for r in rows):
                sink_ids.add(row["log_sink_queue_id"])
    return inbound + len(sink_ids), outbound


@pytest.mark.parametrize("sample", REAL_SAMPLES, ids=[p.name for p in REAL_SAMPLES])
def test_message_counts_equal_the_queue_ids_of_the_truth(sample):
    rows, _, report = _load(sample)
    inbound, outbound = _expected_messages(rows)
    assert (report["inbound"]["messages"]["total"], report["outbound"]["messages"]["total"]) == (inbound, outbound)
    assert report["inbound"]["messages"]["total"] == (report["mx"]["messages"]["total"]
                                                      + report["submission"]["messages"]["total"])
