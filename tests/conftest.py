"""Shared fixtures: sample paths, a deterministic console, and a CLI runner."""

from __future__ import annotations

import importlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_logs"
DATA = Path(__file__).resolve().parent / "data"
GOLDEN = Path(__file__).resolve().parent / "golden"
REAL_SAMPLES = sorted(p for p in (SAMPLES / "realpostfix").iterdir() if (p / "truth.jsonl").exists())


def maillogs(sample: Path) -> list[Path]:
    """A sample's log files, oldest first (``maillog.1.gz maillog`` for a rotated pair)."""
    from tlslog.sources import rotation_order

    return [Path(p) for p in rotation_order(sorted(str(p) for p in sample.glob("maillog*")))]


def import_or_skip(module: str, required: str, hint: str) -> object:
    """``module``, or a skip with ``hint`` (an optional extra not installed here), except where the
    environment variable ``required`` is set (CI): then its absence is a failure."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get(required):
            raise
        pytest.skip(hint, allow_module_level=True)


@pytest.fixture(autouse=True)
def _no_colour_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's terminal settings must not leak into rendered output."""
    for name in ("FORCE_COLOR", "NO_COLOR", "COLUMNS", "LINES", "TERM"):
        monkeypatch.delenv(name, raising=False)


def make_console(width: int = 100) -> tuple[Console, io.StringIO]:
    """A fixed-width, colourless, in-memory console (rich's own test pattern)."""
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, force_terminal=False, legacy_windows=False,
                      highlight=False, _environ={})
    return console, out


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


def tlslog(*args: str, stdin: bytes | None = None, env: dict | None = None) -> Run:
    """Run a command in this process (typer's test runner): exit code, stdout, stderr.

    The default for CLI tests; `run_tlslog` is for what only a real process shows (signals,
    pipes, the console entry point, peak memory).
    """
    from typer.testing import CliRunner

    from tlslog.cli import app

    result = CliRunner().invoke(app, list(args), input=stdin if stdin is not None else b"", env=env,
                                catch_exceptions=False, prog_name="tlslog")
    return Run(result.exit_code, result.stdout, result.stderr)


def run_tlslog(*args: str, stdin: bytes | None = None, timeout: float = 120, env: dict | None = None) -> Run:
    """Run the real command in a child process (exit codes, stdin, stderr as a user sees them)."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR", "COLUMNS")} | (env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "tlslog", *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
        check=False,
    )
    return Run(proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"))


def golden(name: str, actual: str) -> None:
    """Compare with tests/golden/<name>; ``TLSLOG_REGEN_GOLDEN=1 pytest`` rewrites them."""
    path = GOLDEN / name
    if os.environ.get("TLSLOG_REGEN_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"output differs from {path} (regenerate with TLSLOG_REGEN_GOLDEN=1 if intended)"
