"""Stitch chunk results, in input order, into exactly the result of one sequential pass.

Each chunk was folded on its own (`tlslog.engine.scan`). The stitcher keeps one sequential
`Fold` for what crosses chunk edges: for every chunk it replays the events buffered at the
chunk's head into the state carried over, closes what the chunk's resets closed, and adopts
the chunk's open sessions (`tlslog.fold.EdgeState`). Line numbers and epochs of a chunk count
from its own start; the stitcher moves them to the whole input's count. The result: one
session-table partition per chunk, one for the sessions that crossed an edge, and the
evidence table, ready for `tlslog.table.settle`.

The year of classic (year-less) stamps depends on the lines before a chunk; the planner
guessed it. `needs_redo` tells when the guess could have changed a year, so that the chunk
is scanned again from the true state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pandas as pd

from . import table
from .accounting import LineStats
from .classify import Classifier
from .engine.plan import Task
from .engine.scan import ChunkResult
from .fold import DEFAULT_TIMEOUT, EdgeState, Fold, OpenState, Places
from .settle import Evidence
from .timestamps import YearClock

__all__ = ["Stitcher", "clock_after", "needs_redo", "rescanned"]

Clock = tuple[int, int | None]

#: Rows of sessions that crossed chunk edges are turned into a partition this many at a time.
_FLUSH_ROWS = 20_000


def needs_redo(first_month: int | None, guessed: tuple[int, int | None], true: tuple[int, int | None]) -> bool:
    """Whether a chunk scanned from the ``guessed`` year state may differ from one scanned from
    the ``true`` state (the one the previous chunk ended with). Both are compared after the
    chunk's first classic stamp, so an ordinary month boundary between chunks is no reason."""
    if first_month is None or guessed == true:
        return False
    after_guess, after_true = YearClock(*guessed), YearClock(*true)
    return (after_guess.advance(first_month), after_guess.state()) != (after_true.advance(first_month),
                                                                       after_true.state())


def rescanned(task: Task, result: ChunkResult, clock: Clock | None,
              scan: Callable[[Task], ChunkResult]) -> tuple[Task, ChunkResult]:
    """The chunk scanned again (with ``scan``) from the true year state ``clock`` (None: not
    known) when its guessed state could have given other years (`needs_redo`); else as it was."""
    if clock is None or not needs_redo(result.first_month, (task.year, task.month), clock):
        return task, result
    task = dataclasses.replace(task, year=clock[0], month=clock[1])
    return task, scan(task)


def clock_after(result: ChunkResult, clock: Clock | None) -> Clock | None:
    """The year state after a chunk, given the state before it."""
    return result.clock if result.first_month is not None else clock


class Stitcher:
    """Merge `ChunkResult`s in order; `finish` gives the session table and the evidence."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, columns: table.Wanted = None, *,
                 ordered: bool = True, classifier: Classifier | None = None,
                 resume: OpenState | None = None, keep_open: bool = False) -> None:
        """``resume``: the open edge a previous ingest left (`Fold.open_state`, line numbers
        counted so that this input's first line is 0); ``keep_open``: `finish` also keeps
        what is still open then, as `open_state` (the rows of those sessions are cut off)."""
        self.ordered = ordered
        self.classifier = classifier or Classifier()
        self.places = Places()
        self.fold = Fold(timeout=timeout, places=self.places)
        self.columns = columns
        self.table = table.Accumulator(columns)
        self.evidence = Evidence()
        self.stats = LineStats()
        self.line_base = 0
        self.restarts: dict[str | None, int] = {}  # per host, restarts in the chunks so far
        self.clock: tuple[int, int | None] | None = None  # year state after the last chunk
        self._versions: dict[str, set[str]] = {}  # host -> Postfix versions of its master lines
        #: per input, each host's epoch count when the input began (its epochs count from there)
        self.source_epochs: dict[str, dict[str | None, int]] = {}
        self.keep_open = keep_open
        self.open_state: OpenState | None = None
        #: keys of the open edge resumed from a previous ingest, until a chunk has lines of them
        self.resumed: set[tuple] = set()
        if resume:
            self.fold.resume(resume)
            self.resumed = set(self.fold.inbound) | set(self.fold.outbound)

    def add(self, result: ChunkResult, source: str) -> None:
        """Continue with the next chunk's result (``source``: the input it was read from)."""
        base = self.line_base
        places = self.places
        places.add_source(base, source)
        epoch_base = dict(self.restarts)
        self.source_epochs.setdefault(source, epoch_base)
        edge = result.edge
        for line, host in edge.restarts:
            places.add_restart(host, line + base)
            self.restarts[host] = self.restarts.get(host, 0) + 1
        rows = result.rows
        if len(rows):
            rows["line"] += base
            if epoch_base and rows["host"].isin(list(epoch_base)).any():
                shift = rows["host"].astype(object).map(epoch_base).fillna(0).astype("int32")
                rows["epoch"] = (rows["epoch"] + shift.to_numpy()).astype("int32")
            self.table.add(rows)
        self.evidence.update(result.evidence, epoch_base)
        fold = self.fold
        if self.resumed:
            self._reread(edge)
        for events in edge.heads.values():
            for event in events:
                fold.feed(event.role, event.kind, event.wall, event.offset, event.line + base, event.key,
                          event.values)
        for key in edge.settled_in:
            if key in fold.inbound:
                fold.close(key)  # what the chunk's first `connect` of this key did
            tail = edge.inbound.get(key)
            if tail is not None:
                tail.line += base
                tail.epoch += epoch_base.get(key[0], 0)
                fold.inbound[key] = tail
        for key in edge.settled_out:
            conn = edge.outbound.get(key)
            if conn is None:
                fold.outbound.pop(key, None)
            else:
                fold.outbound[key] = conn
        fold.sweep()
        if len(fold.rows) >= _FLUSH_ROWS:  # keep rows compact, not as tuples (a log of endless sessions)
            self.table.add(table.partition(fold.rows, self.columns, self.classifier))
            fold.rows.clear()
        self.line_base += result.stats.read
        self.stats.add(result.stats)
        for host, versions in result.postfix_versions.items():
            self._versions.setdefault(host, set()).update(versions)
        self.clock = clock_after(result, self.clock)

    def _reread(self, edge: EdgeState) -> None:
        """A resumed session or connection whose process's first line here is older than it:
        this input reads that stretch again (an overlapping read), so the lines before its
        process's next reset belong to what came before it, not to it: it is dropped (its
        stored row stays, and the reading of it here, if any, replaces that)."""
        fold = self.fold
        for key in [k for k in self.resumed if k in edge.heads or k in edge.settled_in or k in edge.settled_out]:
            self.resumed.discard(key)
            events = edge.heads.get(key)
            first = events[0].wall if events else None
            if first is None:
                continue
            session = fold.inbound.get(key)
            if session is not None and session.start is not None and first < session.start:
                del fold.inbound[key]
            conn = fold.outbound.get(key)
            if conn is not None and conn.wall is not None and first < conn.wall:
                del fold.outbound[key]

    @property
    def postfix_versions(self) -> dict[str, tuple[str, ...]]:
        """Host ("" when unknown) -> the distinct Postfix versions its master start and reload
        lines named in the chunks so far, sorted (as text)."""
        return {host: tuple(sorted(versions)) for host, versions in sorted(self._versions.items())}

    def finish(self) -> tuple[pd.DataFrame, Evidence]:
        """Close what is still open (the input ended): the settled session table and the evidence."""
        if self.keep_open:
            self.open_state = self.fold.open_state()
        self.table.add(table.partition(self.fold.finish(), self.columns, self.classifier))
        self.evidence.update(self.fold.evidence)
        frame = self.table.frame()
        frame["line"] += 1  # 1-based, as exported
        return table.settle(frame, self.evidence, ordered=self.ordered), self.evidence
