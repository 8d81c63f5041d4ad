"""The report on a seeded synthetic log equals the generator's ground truth, exactly.

``sample_logs/synthetic/`` holds a log made by the project's reference generator together with
the counts a correct report must show (see sample_logs/README.md).
"""

from __future__ import annotations

import json

import pytest

from tlslog.frames import session_frame
from tlslog.pipeline import Options, analyze
from tlslog.report import build_report

from .conftest import SAMPLES

SYNTHETIC = SAMPLES / "synthetic"
TRUTH = json.loads((SYNTHETIC / "truth.json").read_text(encoding="utf-8"))
KEYS = ("total", "tls", "plaintext", "tls_failed", "unknown", "by_protocol", "by_ip_version")


@pytest.mark.parametrize(("jobs", "chunk_size"), [(1, 8 << 20), (2, 1 << 18)], ids=["one-pass", "chunked-parallel"])
def test_report_equals_ground_truth(jobs, chunk_size):
    analysis = analyze([str(SYNTHETIC / "maillog.gz")], Options(jobs=jobs, chunk_size=chunk_size, year=2024))
    report = build_report(session_frame(analysis), analysis.stats)
    for direction in ("inbound", "outbound"):
        for key in KEYS:
            assert report[direction][key] == TRUTH[direction][key], (direction, key)
    assert report["lines"]["read"] == TRUTH["lines"]["read"]
    assert report["lines"]["unparsed"] == 0
    lines = report["lines"]
    assert lines["read"] == lines["postfix"] + lines["other"] + lines["unrecognized"]
