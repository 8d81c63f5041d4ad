"""A progress bar on stderr for long runs, only when stderr is a terminal: the chunks (tasks)
finished, the lines read and the rate; the total is not known ahead (compressed inputs)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .engine.scan import ChunkResult

__all__ = ["progress_for"]


@contextlib.contextmanager
def progress_for(files: list[str]) -> Iterator[Callable[[ChunkResult], None] | None]:
    """Yield a per-chunk callback that advances a rich progress display, or None when quiet."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(bar_width=None),
        TextColumn("{task.fields[chunks]:,} chunks · {task.fields[lines]:,} lines · {task.fields[rate]:,.0f} lines/s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("reading", total=None, chunks=0, lines=0, rate=0.0)
        seen = chunks = 0

        def advance(result: ChunkResult) -> None:
            nonlocal seen, chunks
            seen += result.stats.read
            chunks += 1
            elapsed = progress.tasks[0].elapsed or 1e-9
            progress.update(task, chunks=chunks, lines=seen, rate=seen / elapsed)

        yield advance
