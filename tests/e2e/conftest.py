"""Fixtures for the real-Postfix end-to-end test: one harness run per session, skip or fail when impossible.

``TLSLOG_E2E_REQUIRED=1`` (set in .ci/run) turns "cannot run Postfix here" from a skip into a failure, so CI
cannot pass without running it. ``TLSLOG_E2E_SAVE=DIR`` also copies each run's maillog, truth.jsonl and
run-info.txt to ``DIR/<run>/``.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import NoReturn

import pytest

from .harness import RUNS, RunResult, run_all
from .postfix import Unavailable

REQUIRED_ENV = "TLSLOG_E2E_REQUIRED"
SAVE_ENV = "TLSLOG_E2E_SAVE"
_summary: list[str] = []


def unavailable(reason: str) -> NoReturn:
    """Skip with a one-line reason, or fail with it when the environment says the test is required."""
    if os.environ.get(REQUIRED_ENV) == "1":
        pytest.fail(f"real-Postfix e2e test required ({REQUIRED_ENV}=1) but cannot run: {reason}", pytrace=False)
    pytest.skip(f"real-Postfix e2e: {reason}")


@pytest.fixture(scope="session")
def realpostfix_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunResult]:
    """Drive both runs once per test session; their files stay in pytest's tmp dir."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        unavailable("needs root (starts a private Postfix, may apt-get install it)")
    out = tmp_path_factory.mktemp("realpostfix")
    started = time.monotonic()
    try:
        results = run_all(out)
    except Unavailable as e:
        unavailable(str(e))
    seconds = time.monotonic() - started
    info = results[0].info
    _summary.append(f"Postfix {info['postfix_version']}, {info['openssl']}, swaks {info['swaks']}; "
                    f"harness {seconds:.1f} s (installed: {info['installed_packages']}); files in {out}")
    _summary.extend(f"  {r.name}: {r.info['truth_rows']} truth rows, {r.info['log_lines']} log lines, "
                    f"{r.info['seconds']} s" for r in results)
    if os.environ.get(SAVE_ENV):
        _save(results, Path(os.environ[SAVE_ENV]))
    return {r.name: r for r in results}


@pytest.fixture(scope="session", params=list(RUNS))
def run(request: pytest.FixtureRequest, realpostfix_runs: dict[str, RunResult]) -> RunResult:
    return realpostfix_runs[request.param]


def _save(results: list[RunResult], target: Path) -> None:
    for result in results:
        (target / result.name).mkdir(parents=True, exist_ok=True)
        for name in ("maillog", "truth.jsonl", "run-info.txt"):
            shutil.copy2(result.directory / name, target / result.name / name)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _summary:
        terminalreporter.write_sep("-", "real Postfix e2e")
        for line in _summary:
            terminalreporter.write_line(line)
