"""The report on a seeded synthetic log equals the generator's ground truth, exactly.

``sample_logs/synthetic/`` holds a log made by the project's reference generator together with
the counts a correct report must show (see sample_logs/README.md).
"""

from __future__ import annotations

import json

import pytest

from tlslog.frames import period, session_frame
from tlslog.pipeline import Options, analyze
from tlslog.report import build_report

from .conftest import SAMPLES

SYNTHETIC = SAMPLES / "synthetic"
TRUTH = json.loads((SYNTHETIC / "truth.json").read_text(encoding="utf-8"))
KEYS = ("total", "tls", "plaintext", "tls_failed", "unknown", "by_protocol", "by_ip_version")


@pytest.mark.parametrize(("jobs", "chunk_size"), [(1, 8 << 20), (2, 1 << 18)], ids=["one-pass", "chunked-parallel"])
def test_report_equals_ground_truth(jobs, chunk_size):
    analysis = analyze([str(SYNTHETIC / "maillog.gz")], Options(jobs=jobs, chunk_size=chunk_size, year=2024))
    report = build_report(frame := session_frame(analysis), analysis.stats, period=period(analysis, frame))
    for direction in ("inbound", "outbound"):
        for key in KEYS:
            assert report[direction][key] == TRUTH[direction][key], (direction, key)
    assert report["lines"]["read"] == TRUTH["lines"]["read"]
    assert report["lines"]["unparsed"] == 0
    lines = report["lines"]
    assert lines["read"] == lines["postfix"] + lines["other"] + lines["unrecognized"]


def test_count_frame_and_session_frame_give_the_same_report():
    """`tlslog report` counts rows instead of keeping them; the report must not notice."""
    from tlslog.frames import count_frame

    path = [str(SYNTHETIC / "maillog.gz")]
    rows = analyze(path, Options(jobs=1, year=2024))
    counts = analyze(path, Options(jobs=1, year=2024, rows=False))
    by_rows = build_report(frame := session_frame(rows), rows.stats, period=period(rows, frame))
    by_counts = build_report(frame := count_frame(counts), counts.stats, period=period(counts, frame))
    assert by_rows == by_counts
    assert len(count_frame(counts)) < len(session_frame(rows)) / 3
