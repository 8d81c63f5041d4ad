"""Read inputs into the session table: sources → plan → scan (in workers) → stitch → settle.

`analyze` is the library's entry point; every command, the store and a cluster runner start
from the `Analysis` it returns.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pandas as pd

from .accounting import LineStats
from .classify import Classifier
from .engine.plan import Planner, Task
from .engine.run import default_jobs, run_local
from .engine.scan import ChunkResult, Unparsed, same_line, scan
from .engine.wholefile import SourceResult, fits, scan_source
from .errors import DamagedInput, InputError
from .fold import DEFAULT_TIMEOUT, OpenState
from .schema import Projection
from .settle import Evidence
from .sources import Source, resolve
from .stitch import Stitcher, rescanned

__all__ = ["Analysis", "Options", "analyze", "read_whole"]


@dataclass(frozen=True)
class Options:
    """How to run the engine; the defaults are what the CLI uses."""

    jobs: int = 0  # 0: one worker per available core
    year: int | None = None
    now: dt.datetime | None = None
    timeout: float = DEFAULT_TIMEOUT
    chunk_size: int | None = None  # bytes per chunk; None: `tlslog.engine.plan.default_chunk_size()`
    keep_unparsed: int = 0  # how many unparsed lines to keep for `tlslog unparsed`
    #: session-table columns the caller reads, or its `Projection` (None: all); what settlement
    #: needs is always kept
    columns: tuple[str, ...] | Projection | None = None
    #: rows in log order (the export's promise); a report does not need it and saves the sort
    ordered: bool = True
    #: roles and hops of rows (`tlslog.classify`)
    classifier: Classifier = field(default_factory=Classifier)
    #: the open edge a previous ingest left (`tlslog.fold.Fold.open_state`), continued here
    resume: OpenState | None = None
    #: keep what is still open at the end as `Analysis.open_state` (the history store's edge)
    keep_open: bool = False
    #: runs the scan tasks: (tasks, jobs) -> (task, result) in task order; None: this machine
    #: (`tlslog.engine.run.run_local`), or a cluster's (`tlslog.engine.cluster.Cluster.run`)
    runner: Callable[[Iterator[Task], int], Iterator[tuple[Task, ChunkResult | SourceResult]]] | None = None
    #: a cluster's worker threads: its workers then read compressed files and URLs whole, one
    #: task each (`tlslog.engine.wholefile`), those not much bigger than a fair share (`read_whole`);
    #: 0: never (a local pool is sent chunks)
    whole_files: int = 0


@dataclass
class Analysis:
    """The session table (settled, one row per session or delivery, in log order), the
    evidence it was settled with, the line accounting, what went wrong with inputs, and the
    Postfix versions the master lines named (host, "" when unknown -> sorted distinct versions)."""

    sessions: pd.DataFrame
    evidence: Evidence
    stats: LineStats
    sources: list[str] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    unparsed: list[Unparsed] = field(default_factory=list)
    postfix_versions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: per input read: its line accounting, and each host's epoch count when it began
    source_stats: dict[str, LineStats] = field(default_factory=dict)
    source_epochs: dict[str, dict[str | None, int]] = field(default_factory=dict)
    #: with `Options.keep_open`: the sessions still open at the end (their rows are cut off)
    open_state: OpenState | None = None
    #: Postfix 3.10+ TLSRPT lines: (day, status, domain, mx_name, mx_addr, failure_type,
    #: failure_reason) -> how many (`tlslog.tlsrpt`); empty from the history store
    tlsrpt: dict[tuple, int] = field(default_factory=dict)


def analyze(args: list[str], options: Options | None = None,
            progress: Callable[[ChunkResult], None] | None = None, *,
            sources: list[Source] | None = None) -> Analysis:
    """Read the inputs (paths, globs, ``-``; stdin when empty) into a settled session table;
    ``sources`` (built by the caller, e.g. `tlslog.journal.journal_source`) instead of ``args``."""
    options = options or Options()
    sources, errors = (list(sources), []) if sources is not None else resolve(args)
    whole = read_whole(sources, options.whole_files)
    planner = Planner(chunk_size=options.chunk_size, year=options.year, now=options.now,
                      keep_unparsed=options.keep_unparsed, timeout=options.timeout, columns=options.columns,
                      classifier=options.classifier, whole_files=whole)
    stitcher = Stitcher(options.timeout, options.columns, ordered=options.ordered, classifier=options.classifier,
                        resume=options.resume, keep_open=options.keep_open)
    source_stats: dict[str, LineStats] = {}
    tlsrpt: dict[tuple, int] = {}
    unparsed: list[Unparsed] = []
    names: list[str] = []
    late: list[InputError] = []  # what workers found reading whole files
    runner = options.runner or run_local
    for task, result in _in_order(runner(planner.tasks(sources), options.jobs or default_jobs()), stitcher, late):
        if result.error is not None:
            errors.append(result.error)
        for item in result.unparsed:
            if len(unparsed) < options.keep_unparsed:
                unparsed.append(Unparsed(item.line + stitcher.line_base, item.tag, item.message))
        if not names or names[-1] != task.source:
            names.append(task.source)
        stitcher.add(result, task.source)
        source_stats.setdefault(task.source, LineStats()).add(result.stats)
        for entry, count in result.tlsrpt.items():
            tlsrpt[entry] = tlsrpt.get(entry, 0) + count
        if progress is not None:
            progress(result)
    sessions, evidence = stitcher.finish()
    position = {source.name: n for n, source in enumerate(sources)}
    errors.extend(sorted(planner.errors + late, key=lambda e: position.get(e.name, len(position))))
    errors.sort(key=lambda e: isinstance(e, DamagedInput))
    unread = {e.name for e in errors if not isinstance(e, DamagedInput)}
    read = [s.name for s in sources if s.name not in unread and s.name not in names]  # empty ones: no task
    return Analysis(sessions, evidence, stitcher.stats, names + read, errors, unparsed, stitcher.postfix_versions,
                    source_stats, stitcher.source_epochs, stitcher.open_state, tlsrpt)


def read_whole(sources: list[Source], threads: int) -> frozenset[Source]:
    """The compressed inputs a cluster of ``threads`` worker threads reads whole, one task each:
    those no bigger than one and a half fair shares (1/threads of all of them), so files of about
    the same size all are. A bigger one, such as a single big ``.gz``, would keep one worker busy
    while the others wait: it is decompressed here and its chunks go to every worker (measured,
    README: Fleet)."""
    readable = [s for s in sources if s.worker_readable and s.size is not None]
    total = sum(s.size or 0 for s in readable)
    return frozenset(s for s in readable if threads > 0 and (s.size or 0) * threads * 2 <= total * 3)


def _in_order(outcomes: Iterator[tuple[Task, ChunkResult | SourceResult]], stitcher: Stitcher,
              late: list[InputError]) -> Iterator[tuple[Task, ChunkResult]]:
    """Each chunk's task and result as the stitcher takes them, right for what came before it.

    The planner guessed a chunk's year state from its first line: when the chunk before ended
    where that guess gives other years, the chunk is scanned again from the true state. A file
    a worker read whole (`tlslog.engine.wholefile`) gives its chunks one by one; it, and the
    chunk after it, did not know the line before them, and are scanned again when it matters.
    """
    tail: bytes | None = None  # the last line of the last file read whole
    for task, outcome in outcomes:
        if isinstance(outcome, SourceResult):
            previous = tail if task.check_previous else task.previous
            if not fits(outcome, task, stitcher.clock, previous):
                outcome = scan_source(dataclasses.replace(task, previous=previous), stitcher.clock)
            late.extend(outcome.errors)
            tail = outcome.last_line if outcome.chunks else previous  # (it vanished before its worker read it)
            yield from outcome.chunks
            continue
        if task.check_previous and same_line(outcome.first_line, tail):
            task = dataclasses.replace(task, previous=tail)
            outcome = scan(task)
        yield rescanned(task, outcome, stitcher.clock, scan)
