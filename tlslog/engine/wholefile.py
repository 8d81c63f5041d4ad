"""A compressed file or URL read whole by a cluster's worker: one task per file, as a fleet's
rotated logs in object storage want (the client reads only its first block).

The worker cuts the file into the chunks the local engine would make and scans them, checking
each chunk's year guess against the chunk before it as `tlslog.analysis` does. What it cannot
know is what came before the file: the year state and the last line of the chunk before it.
The client checks those with `fits` once the results before are in, and in the rare case they
were wrong (a file starting with the line the previous file ended with, a year guessed wrong),
scans the file again itself with `scan_source` from the true state. So the results are the
local engine's, chunk for chunk.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..errors import InputError
from ..stitch import Clock, clock_after, needs_redo, rescanned
from ..timestamps import YearClock
from .plan import Planner, Task
from .scan import ChunkResult, first_line_of, same_line, scan

__all__ = ["SourceResult", "fits", "scan_source"]


@dataclass
class SourceResult:
    """What `scan_source` returns: each chunk's task (without its data) and result, in order."""

    chunks: list[tuple[Task, ChunkResult]]
    errors: list[InputError] = field(default_factory=list)  # damaged, or vanished since it was planned
    first_line: bytes | None = None  # the file's first line (see `Task.check_previous`)
    last_line: bytes | None = None  # its last line: the ``previous`` of the chunk after it


def scan_source(task: Task, clock: Clock | None = None) -> SourceResult:
    """Read, cut and scan ``task.whole`` (in a worker). ``clock``: the true year state before
    it, when known (the client's rescan); a worker checks each chunk against the one before."""
    source = task.whole
    assert source is not None
    planner = Planner(chunk_size=task.chunk_size, keep_unparsed=task.keep_unparsed, timeout=task.timeout,
                      columns=task.columns, classifier=task.classifier)
    planner.clock = YearClock(task.year, task.month)  # the first chunk is guessed as the client did
    planner.previous = task.previous
    chunks: list[tuple[Task, ChunkResult]] = []
    first_line: bytes | None = None
    for chunk in planner.tasks([source]):
        if not chunks and chunk.data is not None:
            first_line = first_line_of(chunk.data)
        chunk, result = rescanned(chunk, scan(chunk), clock, scan)
        clock = clock_after(result, clock)
        chunks.append((dataclasses.replace(chunk, data=None), result))
    return SourceResult(chunks, planner.errors, first_line, planner.previous)


def fits(outcome: SourceResult, task: Task, clock: Clock | None, previous: bytes | None) -> bool:
    """Whether a worker's `SourceResult` is what scanning the file from the true year state
    (``clock``, before it) and after the true line before it (``previous``) gives."""
    if task.check_previous and same_line(outcome.first_line, previous):
        return False
    for chunk, result in outcome.chunks:
        if clock is not None and needs_redo(result.first_month, (chunk.year, chunk.month), clock):
            return False
        clock = clock_after(result, clock)
    return True
