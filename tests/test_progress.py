"""The progress display: only on a terminal; it counts finished chunks and lines."""

from __future__ import annotations

import io
import sys

from tlslog.accounting import LineStats
from tlslog.engine.scan import ChunkResult
from tlslog.progress import progress_for


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _result(lines: int) -> ChunkResult:
    return ChunkResult(0, None, None, None, LineStats(read=lines))  # type: ignore[arg-type]


def test_quiet_when_stderr_is_no_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with progress_for([]) as advance:
        assert advance is None
    assert sys.stderr.getvalue() == ""


def test_it_counts_finished_chunks_and_lines(monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress_for([]) as advance:
        assert advance is not None
        advance(_result(1_000))
        advance(_result(234))
    assert "2 chunks · 1,234 lines · " in terminal.getvalue()
