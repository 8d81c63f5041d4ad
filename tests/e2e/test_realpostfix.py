"""End to end: a real Postfix on loopback, real SMTP sessions, every tlslog verdict against the ground truth.

Each test runs once per default harness run (``loglevel1``, ``loglevel0``, ``loglevel2``, ``mixed``). The first
two check the harness itself (what the clients saw, which scenarios really happened, at which TLS log level),
the third that the truth check can fail at every level of the run, so that a failure of the last two means
tlslog.
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from .. import truthcheck
from .conftest import TLSLOG_COMMANDS, tlslog_outputs
from .driver import HANDLERS
from .harness import RUNS, SEGMENTS_FILE, RunResult

# slow too: four real Postfix runs take half a minute, so the default run leaves them to `-m slow`
pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def tlslog(name: str, maillog: Path) -> str:
    """The stdout of ``tlslog sessions``/``tlslog report`` on a maillog (run once, see conftest)."""
    done = tlslog_outputs(maillog)[name]
    assert done.returncode == 0, f"{' '.join(done.args[2:])} exited {done.returncode}:\n{done.stderr[-3000:]}"
    kept = maillog.parent / TLSLOG_COMMANDS[name][1]  # the copy a failure message points to
    assert kept.read_text() == done.stdout, kept
    return done.stdout


@cache
def exported(maillog: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``tlslog sessions`` and ``tlslog report`` of one maillog, kept next to it for inspection."""
    sessions_text, report_text = tlslog("sessions", maillog), tlslog("report", maillog)
    return [json.loads(line) for line in sessions_text.splitlines() if line.strip()], json.loads(report_text)


def where(run: RunResult) -> str:
    return f"[{run.name}: maillog, truth.jsonl and tlslog's output are in {run.directory}]"


def test_clients_observed_what_the_truth_says(run: RunResult) -> None:
    """Truth rows come from what the driver asked for; the clients' own observations must agree."""
    assert not run.problems, f"harness problems (not tlslog's) {where(run)}:\n" + "\n".join(run.problems)


def test_every_scenario_happened(run: RunResult) -> None:
    """Every planned kind ran at its TLS log level, IPv6 was used both ways, cached connections were reused,
    and a mixed run's reloads cut its log into segments at the planned levels."""
    rows, spec = run.rows, RUNS[run.name]
    kinds = {r["kind"] for r in rows if r["direction"] == "in"}
    assert kinds == {s.kind for s in spec.scenarios} <= set(HANDLERS)
    planned = [level for level, scenarios in spec.segments for _ in scenarios]
    assert [r["tls_loglevel"] for r in rows if r["direction"] == "in"] == planned
    level_of = {r["id"]: r["tls_loglevel"] for r in rows if r["direction"] == "in"}
    assert all(r["tls_loglevel"] == level_of[r["parent"]] for r in rows if r["direction"] == "out")
    if spec.mixed:
        assert [s["tls_loglevel"] for s in run.segments] == [level for level, _ in spec.segments], where(run)
        assert [s["sessions"] for s in run.segments] == [len(scenarios) for _, scenarios in spec.segments]
        reloads = [s["reload_line"] for s in run.segments[1:]]
        assert reloads == sorted(set(reloads)) and run.info["reload_lines"] == ",".join(map(str, reloads))
        lines = run.maillog.read_text().splitlines()
        assert all(" reload -- version " in lines[n - 1] for n in reloads), where(run)
        written = json.loads((run.directory / SEGMENTS_FILE).read_text(encoding="utf-8"))
        assert written == {"run": run.name, "reload_lines": reloads, "segments": run.segments}, where(run)
    assert {r["ip_version"] for r in rows if r["direction"] == "in"} == {4, 6}
    assert {r["ip_version"] for r in rows if r["direction"] == "out"} == {4, 6}
    sent = [r for r in rows if r["direction"] == "out" and r["outcome"] == "sent"]
    assert all(r["log_sink_queue_id"] for r in sent), f"sink queue id not found in the log {where(run)}"
    if run.name == "loglevel1":
        reused = {r["dest_domain"] for r in rows if (r.get("log_conn_use") or 0) >= 2}
        assert reused == {"cache.example", "cache6.example", "plaincache.example"}, (
            f"conn_use>=2 on {sorted(reused)} {where(run)}")


def test_a_wrong_verdict_is_caught_at_every_level(run: RunResult) -> None:
    """The truth check can fail for each level of the run: a TLS delivery called plaintext at level 0, or
    unknown at level >= 1 (only level 0 excuses a missing TLS line), is reported on that row and field."""
    sessions, _ = exported(run.maillog)
    for level in sorted({r["tls_loglevel"] for r in run.rows}):
        row = next(r for r in run.rows if r["direction"] == "out" and r["tls_loglevel"] == level
                   and r["tls_expected"] and r["outcome"] == "sent")
        wrong = "plaintext" if level == 0 else "unknown"
        mutated = [dict(s, encryption=wrong) if s.get("kind") == "outbound" and s.get("recipient") == row["rcpt"]
                   and (s.get("queue_ids") or [None])[0] == row["log_queue_id"] else s for s in sessions]
        result = truthcheck.check(run.rows, mutated)
        expected = '"tls" | "unknown"' if level == 0 else '"tls"'
        caught = [m for m in result.mismatches if m.id == row["id"] and m.field == "encryption"]
        assert caught == [truthcheck.Mismatch(row["id"], "encryption", expected, json.dumps(wrong))], (
            f"level {level}: {row['id']} exported as {wrong} was not caught {where(run)}")


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
