"""Fixtures for the real-Postfix end-to-end test: one harness run per session, skip or fail when impossible.

``TLSLOG_E2E_REQUIRED=1`` (set in .ci/run) turns "cannot run Postfix here" from a skip into a failure, so CI
cannot pass without running it. ``TLSLOG_E2E_SAVE=DIR`` also copies each run's maillog, truth.jsonl and
run-info.txt (and segments.json) to ``DIR/<run>/``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import NoReturn

import pytest

from .harness import DEFAULT_RUNS, SEGMENTS_FILE, RunResult, run_all
from .postfix import Unavailable

REQUIRED_ENV = "TLSLOG_E2E_REQUIRED"
SAVE_ENV = "TLSLOG_E2E_SAVE"
REPO = Path(__file__).resolve().parents[2]
TLSLOG_TIMEOUT = 120
# the two tlslog commands the tests check, and the file each output is kept in next to the maillog
#: The harness talks to itself on loopback: every row is mail on the wire here (--internal none).
TLSLOG_COMMANDS = {"sessions": (["sessions", "--format", "jsonl", "--internal", "none"], "tlslog-sessions.jsonl"),
                   "report": (["report", "--format", "json", "--internal", "none"], "tlslog-report.json")}
_summary: list[str] = []
_outputs: dict[Path, dict[str, subprocess.CompletedProcess[str]]] = {}
_outputs_lock = threading.Lock()


def tlslog_outputs(maillog: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """``tlslog sessions`` and ``tlslog report`` of one maillog (both at once), run once and kept.

    The fixture starts them for each run as soon as it is written, while the other runs still go on; the
    tests judge the exit codes and outputs. Outputs are also written next to the maillog for inspection.
    """
    with _outputs_lock:
        if maillog in _outputs:
            return _outputs[maillog]
    procs = {name: subprocess.Popen([sys.executable, "-m", "tlslog", args[0], str(maillog), *args[1:]], cwd=REPO,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, (args, _) in TLSLOG_COMMANDS.items()}
    done: dict[str, subprocess.CompletedProcess[str]] = {}
    for name, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=TLSLOG_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err += f"\n(killed after {TLSLOG_TIMEOUT} s)"
        done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        (maillog.parent / TLSLOG_COMMANDS[name][1]).write_text(out)
    with _outputs_lock:
        return _outputs.setdefault(maillog, done)


def unavailable(reason: str) -> NoReturn:
    """Skip with a one-line reason, or fail with it when the environment says the test is required."""
    if os.environ.get(REQUIRED_ENV) == "1":
        pytest.fail(f"real-Postfix e2e test required ({REQUIRED_ENV}=1) but cannot run: {reason}", pytrace=False)
    pytest.skip(f"real-Postfix e2e: {reason}")


@pytest.fixture(scope="session")
def realpostfix_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunResult]:
    """Drive the default runs once per test session (side by side); their files stay in pytest's tmp dir."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        unavailable("needs root (starts a private Postfix, may apt-get install it)")
    out = tmp_path_factory.mktemp("realpostfix")
    started = time.monotonic()
    try:
        results = run_all(out, on_done=lambda result: tlslog_outputs(result.maillog))
    except Unavailable as e:
        unavailable(str(e))
    seconds = time.monotonic() - started
    info = results[0].info
    _summary.append(f"Postfix {info['postfix_version']}, {info['openssl']}, swaks {info['swaks']}; "
                    f"harness {seconds:.1f} s (installed: {info['installed_packages']}); files in {out}")
    _summary.extend(f"  {r.name}: {r.info['truth_rows']} truth rows, {r.info['log_lines']} log lines, "
                    f"ports {r.info['base_port']}+, {r.info['seconds']} s" for r in results)
    if os.environ.get(SAVE_ENV):
        _save(results, Path(os.environ[SAVE_ENV]))
    return {r.name: r for r in results}


@pytest.fixture(scope="session", params=DEFAULT_RUNS)
def run(request: pytest.FixtureRequest, realpostfix_runs: dict[str, RunResult]) -> RunResult:
    return realpostfix_runs[request.param]


def _save(results: list[RunResult], target: Path) -> None:
    for result in results:
        (target / result.name).mkdir(parents=True, exist_ok=True)
        for name in ("maillog", "truth.jsonl", "run-info.txt", SEGMENTS_FILE):
            if (result.directory / name).exists():
                shutil.copy2(result.directory / name, target / result.name / name)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _summary:
        terminalreporter.write_sep("-", "real Postfix e2e")
        for line in _summary:
            terminalreporter.write_line(line)
