"""End to end: a real Postfix on loopback, real SMTP sessions, every tlslog verdict against the ground truth.

Each test runs once per harness run (``loglevel1``, ``loglevel0``). The first two check the harness itself
(what the clients saw, which scenarios really happened), so that a failure of the last two means tlslog.
"""
from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from .. import truthcheck
from .driver import HANDLERS
from .harness import RUNS, RunResult

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
TLSLOG_TIMEOUT = 120


def tlslog(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "tlslog", *args], capture_output=True, text=True,
                          timeout=TLSLOG_TIMEOUT, cwd=REPO)
    assert done.returncode == 0, f"tlslog {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


@cache
def exported(maillog: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``tlslog sessions`` and ``tlslog report`` of one maillog, kept next to it for inspection."""
    sessions_text = tlslog("sessions", str(maillog), "--format", "jsonl")
    report_text = tlslog("report", str(maillog), "--format", "json")
    (maillog.parent / "tlslog-sessions.jsonl").write_text(sessions_text)
    (maillog.parent / "tlslog-report.json").write_text(report_text)
    return [json.loads(line) for line in sessions_text.splitlines() if line.strip()], json.loads(report_text)


def where(run: RunResult) -> str:
    return f"[{run.name}: maillog, truth.jsonl and tlslog's output are in {run.directory}]"


def test_clients_observed_what_the_truth_says(run: RunResult) -> None:
    """Truth rows come from what the driver asked for; the clients' own observations must agree."""
    assert not run.problems, f"harness problems (not tlslog's) {where(run)}:\n" + "\n".join(run.problems)


def test_every_scenario_happened(run: RunResult) -> None:
    """Every planned kind ran, IPv6 was used both ways, and cached connections were really reused."""
    rows = run.rows
    kinds = {r["kind"] for r in rows if r["direction"] == "in"}
    assert kinds == {s.kind for s in RUNS[run.name].scenarios} <= set(HANDLERS)
    assert {r["ip_version"] for r in rows if r["direction"] == "in"} == {4, 6}
    assert {r["ip_version"] for r in rows if r["direction"] == "out"} == {4, 6}
    sent = [r for r in rows if r["direction"] == "out" and r["outcome"] == "sent"]
    assert all(r["log_sink_queue_id"] for r in sent), f"sink queue id not found in the log {where(run)}"
    if run.name == "loglevel1":
        reused = {r["dest_domain"] for r in rows if (r.get("log_conn_use") or 0) >= 2}
        assert {"cache.example", "cache6.example", "plaincache.example"} <= reused, f"conn_use=2 missing {where(run)}"


def test_sessions_match_the_truth(run: RunResult) -> None:
    """Session by session: encryption, trust, protocol, cipher, addresses, recipient, status, ..."""
    sessions, _ = exported(run.maillog)
    result = truthcheck.check(run.rows, sessions)
    assert result.ok, f"tlslog sessions disagree with the truth {where(run)}\n{result.format()}"


def test_report_totals_match_the_truth(run: RunResult) -> None:
    """The report agrees with the export, and the export's totals with the truth (see expected_totals)."""
    sessions, report = exported(run.maillog)
    counted = truthcheck.export_totals(sessions)
    mismatches = truthcheck.compare_totals("report-vs-sessions", counted, truthcheck.report_totals(report))
    mismatches += truthcheck.compare_totals("sessions-vs-truth", truthcheck.expected_totals(run.rows), counted)
    assert not mismatches, (f"tlslog report totals disagree {where(run)}\n"
                            f"{truthcheck.format_mismatches(mismatches)}\n"
                            f"{truthcheck.check(run.rows, sessions).format(max_rows=0)}")
