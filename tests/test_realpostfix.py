"""On every bundled real-Postfix log, each verdict matches what really happened.

``sample_logs/realpostfix/*/truth.jsonl`` says, for every SMTP session the test driver made and
every delivery Postfix relayed, what the truth was (see sample_logs/README.md); the export must
match it session by session (``tests/truthcheck.py`` has the exact rules) and the report totals
must equal the export's.
"""

from __future__ import annotations

import json

import pytest

from tlslog.frames import period, session_frame
from tlslog.pipeline import Options, analyze
from tlslog.render import session_records
from tlslog.report import build_report

from . import truthcheck
from .conftest import REAL_SAMPLES


def _load(sample):
    rows = [json.loads(line) for line in (sample / "truth.jsonl").read_text(encoding="utf-8").splitlines() if line]
    analysis = analyze([str(sample / "maillog")], Options(jobs=1, year=2026))
    frame = session_frame(analysis)
    return rows, list(session_records(frame)), build_report(frame, analysis.stats, period=period(analysis, frame))


@pytest.mark.parametrize("sample", REAL_SAMPLES, ids=[p.name for p in REAL_SAMPLES])
def test_every_session_matches_the_truth(sample):
    rows, sessions, _ = _load(sample)
    result = truthcheck.check(rows, sessions)
    assert result.matched == sum(result.items.values()) > 40
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
    assert any(m.field == "encryption" and "plaintext" in m.got for m in result.mismatches)
