"""The pipeline: sources -> lines -> grammar -> fold, chunk by chunk, in parallel.

Input is cut into chunks of whole lines (``CHUNK_SIZE`` bytes, the same whatever the number
of workers). Each chunk is decoded, split, parsed and folded on its own (`fold_chunk`, in a
worker process when there are several), then merged in input order into one `Fold`
(`tlslog.fold`), which yields the same sessions as a single sequential pass. Plain files are
cut into byte ranges that workers read themselves; stdin and compressed files are read here
and their chunks sent to the workers.

Every line read is accounted for in `LineStats`: parsed, unparsed Postfix text of the parsed
programs, lines of other Postfix programs, lines of other programs, or unrecognised.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import multiprocessing
import os
import re
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields

from .errors import DamagedInput, InputError
from .fold import (
    DEFAULT_TIMEOUT,
    FIELDS,
    INBOUND_KINDS,
    OUTBOUND_KINDS,
    ChunkFold,
    Counts,
    Fold,
    ServiceEvidence,
    Sessions,
)
from .grammars import ANY_PROGRAM, PROGRAMS, UNKNOWN_PROGRAM, prefix
from .lines import MAX_LINE, LineSplitter, Record
from .lowering import lower_rule
from .parse import Match, RuleSet
from .sources import Source, read_blocks, resolve
from .timestamps import MONTHS, YearClock, start_year

__all__ = ["Analysis", "LineStats", "Options", "analyze", "describe_line", "fold_chunk"]

#: Bytes per chunk: whole lines, independent of the number of workers (so is the result).
#: ``TLSLOG_CHUNK_SIZE`` overrides it (tests use small chunks to cut sessions everywhere).
CHUNK_SIZE = int(os.environ.get("TLSLOG_CHUNK_SIZE", 8 << 20))

#: What the pipeline parses with: the fields the fold reads, as tuples (hot path).
#: postscreen lines carry no TLS evidence (a STARTTLS during its tests shows up in tlsproxy):
#: its rules are in the grammar, but the pipeline counts its lines without parsing them.
_PIPELINE_PROGRAMS = ("smtpd", "smtp", "tlsproxy")
_PARSERS = {program: RuleSet(PROGRAMS[program], select=FIELDS) for program in _PIPELINE_PROGRAMS}
_UNKNOWN = RuleSet(UNKNOWN_PROGRAM, select=FIELDS)
#: What `describe_line` parses with: every field, by name.
_DESCRIBE = {program: RuleSet(rules) for program, rules in PROGRAMS.items()}
_DESCRIBE_UNKNOWN = RuleSet(UNKNOWN_PROGRAM)
_DESCRIBE_ANY = RuleSet(ANY_PROGRAM)
#: Which side of the fold a program's events belong to (None: recognised, not folded).
_ROLES = {"smtpd": "in", "smtp": "out", "tlsproxy": None}
#: Daemons and tools of Postfix whose lines carry no TLS evidence (counted as Postfix lines).
POSTFIX_PROGRAMS = frozenset(
    "anvil bounce cleanup defer discard dnsblog error flush lmtp local master nqmgr oqmgr pickup pipe"
    " postalias postcat postconf postdrop postfix postfix-script postkick postlock postlog postlogd"
    " postmap postmulti postqueue postsuper proxymap proxywrite qmgr qmqpd retry scache sendmail"
    " showq smtp smtpd spawn tlsmgr tlsproxy postscreen trace verify virtual".split()
)


@dataclass
class LineStats:
    """Where every line read went. ``read == postfix + other + unrecognized``."""

    read: int = 0
    postfix: int = 0
    parsed: int = 0
    unparsed: int = 0
    other: int = 0
    unrecognized: int = 0
    duplicate: int = 0  # the same text as the line before it (a doubled log): not folded again
    invalid_utf8: int = 0

    def add(self, other: LineStats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass(frozen=True)
class Options:
    """How to run the pipeline; the defaults are what the CLI uses."""

    jobs: int = 0  # 0: one worker per available core
    year: int | None = None
    now: dt.datetime | None = None
    timeout: float = DEFAULT_TIMEOUT
    chunk_size: int = CHUNK_SIZE
    keep_unparsed: int = 0  # how many unparsed lines to keep for `tlslog unparsed`
    rows: bool = True  # keep every row (`tlslog sessions`); False: only counts (`tlslog report`)


@dataclass
class Unparsed:
    """An smtp/smtpd/... line that matched no rule (kept for ``tlslog unparsed``)."""

    line: int
    tag: str
    message: str


@dataclass
class Analysis:
    """Everything the reports need: rows, line accounting, and what went wrong with inputs."""

    sessions: Sessions | Counts
    services: ServiceEvidence
    stats: LineStats
    errors: list[InputError] = field(default_factory=list)
    unparsed: list[Unparsed] = field(default_factory=list)


@dataclass
class _Task:
    index: int
    year: int
    month: int | None
    data: bytes | None = None
    path: str | None = None
    start: int = 0
    end: int = 0
    keep_unparsed: int = 0
    timeout: float = DEFAULT_TIMEOUT
    rows: bool = True
    name: str = ""  # the source, for error messages
    previous: bytes | None = None  # the line before this chunk, to drop a duplicate of it


@dataclass
class ChunkResult:
    index: int
    fold: ChunkFold
    stats: LineStats
    unparsed: list[Unparsed]
    error: InputError | None = None
    clock: tuple[int, int | None] | None = None  # the year state after the last line


def describe_line(line: str, year: int = 2000) -> tuple[Record | None, Match | None]:
    """How one line is read: its prefix record and the rule that matched, with every field.

    A bare message without any prefix is tried against every program's rules. For tests,
    documentation and debugging; `fold_chunk` does the same inline.
    """
    record = LineSplitter(YearClock(year)).split(line)
    if record is None:
        return None, _DESCRIBE_ANY.parse(line)
    program = record.tag[record.tag.rfind("/") + 1 :]
    rules = _DESCRIBE.get(program) or (_DESCRIBE_UNKNOWN if record.tag == "postfix" else None)
    return record, rules.parse(record.message) if rules else None


def _role_by_content(kind: str, values: tuple) -> str | None:
    """Server or client side, for a line whose tag lost the program name."""
    if kind in INBOUND_KINDS:
        return "in"
    if kind in OUTBOUND_KINDS:
        return "out"
    if kind in ("tls_summary", "ssl_error"):  # the first field is the direction
        return "in" if values[0] == "from" else "out"
    return None


def _decode(data: bytes, stats: LineStats) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    parts = []
    for raw in data.split(b"\n"):
        try:
            parts.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            stats.invalid_utf8 += 1
            parts.append(raw.decode("utf-8", "replace"))
    return "\n".join(parts)


def _read_lines(task: _Task, stats: LineStats) -> list[str]:
    if task.data is not None:
        data = task.data
    else:
        with open(task.path, "rb") as handle:  # type: ignore[arg-type]
            handle.seek(task.start)
            data = handle.read(task.end - task.start)
    return _split_lines(data, stats)


def _split_lines(data: bytes, stats: LineStats) -> list[str]:
    text = _decode(data, stats)
    del data
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if "\r" in text:
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    return lines


#: The classic syslog prefix rule, compiled (the rule that matches nearly every line), and the
#: part of it after ``STAMP HOST `` (see `prefix.CLASSIC_TAIL`); other prefixes go through
#: `LineSplitter`, which tries every prefix rule in order.
_CLASSIC_RE = re.compile(lower_rule(prefix.CLASSIC.element).pattern)
_CLASSIC = _CLASSIC_RE.match
_STAMP, _HOST, _TAG = (_CLASSIC_RE.groupindex[n] for n in ("stamp", "host", "tag"))
_TAIL_RE = re.compile(lower_rule(prefix.TAG_PID_ONLY).pattern)
_TAIL = _TAIL_RE.match
_TAIL_TAG, _TAIL_PID = (_TAIL_RE.groupindex[n] for n in ("tag", "pid"))

#: How a tag's lines are handled, decided once per distinct tag (see `_tag_kind`).
_POSTFIX, _OTHER = "postfix", "other"


def _tag_kind(tag: str) -> tuple[RuleSet, str | None] | str:
    """(rules, role) for a parsed program's tag, else `_POSTFIX` or `_OTHER`."""
    program = tag[tag.rfind("/") + 1 :]
    rules = _PARSERS.get(program)
    if rules is not None:
        return rules, _ROLES.get(program, "?")
    if tag == "postfix":
        return _UNKNOWN, "?"
    if program in POSTFIX_PROGRAMS or tag.startswith("postfix"):
        return _POSTFIX
    return _OTHER


class _Dispatch:
    """Per chunk and tag kind: the compiled rules and, per rule, what to do with a match."""

    __slots__ = ("match", "parse", "role", "table")

    def __init__(self, rules: RuleSet, role: str | None, fold: ChunkFold) -> None:
        self.parse = rules.parse
        self.role = role
        compiled = rules.compiled()
        self.match = compiled[0] if compiled else None
        self.table: dict[str, tuple] = {}
        if compiled:
            for marker, (kind, groups) in compiled[1].items():
                handler = fold.handler(role, kind) if role not in (None, "?") else None
                self.table[marker] = (kind, groups, handler, fold.is_reset(role, kind) if handler else False,
                                      fold.settled_in if role == "in" else fold.settled_out)


def fold_chunk(task: _Task) -> ChunkResult:
    """Parse and fold one chunk (runs in a worker process).

    The loop is the hot path of tlslog. A line that starts like the previous one (same stamp
    and host) is matched from its tag on; most lines go no further than their tag; messages
    are parsed in place with one compiled pattern per program, extracting only the fields the
    fold reads; times are converted only for lines that reach the fold.
    """
    stats = LineStats()
    fold = ChunkFold(Sessions() if task.rows else Counts(), timeout=task.timeout)
    try:
        lines = _read_lines(task, stats)
    except OSError as exc:  # the file vanished or became unreadable after it was planned
        return ChunkResult(task.index, fold, stats, [], InputError(task.name, exc.strerror or str(exc)),
                           (task.year, task.month))
    stats.read = len(lines)
    previous = _split_lines(task.previous, LineStats())[0] if task.previous is not None else None
    unparsed: list[Unparsed] = []
    clock = YearClock(task.year, task.month)
    split, wall_of = LineSplitter(clock).split, clock.wall
    classic, tail = _CLASSIC, _TAIL
    kinds: dict[str, _Dispatch | str] = {}
    head = "\n"  # no line starts with a newline
    stamp = host = last_stamp = wall = None
    postfix = other = unrecognized = parsed = missed = duplicate = 0
    for number, line in enumerate(lines):
        repeated = line == previous  # a doubled log: counted as usual, but folded once
        if repeated:
            duplicate += 1
        previous = line
        record = None
        if len(line) > MAX_LINE:  # not a Postfix record (they are cut at 2000 bytes)
            unrecognized += 1
            continue
        if line.startswith(head) and (m := tail(line, len(head))) is not None:
            tag = m.group(_TAIL_TAG)
        elif "A" <= line[:1] <= "Z" and (full := classic(line)) is not None:
            stamp, host, tag = full.group(_STAMP, _HOST, _TAG)
            head = line[: full.start(_TAG)]
            m = tail(line, len(head))
        else:
            record = split(line)
            if record is None:
                unrecognized += 1
                continue
            tag = record.tag
        how = kinds.get(tag)
        if how is None:
            how = _tag_kind(tag)
            how = kinds[tag] = how if isinstance(how, str) else _Dispatch(*how, fold)
        if how is _POSTFIX:
            postfix += 1
            continue
        if how is _OTHER:
            other += 1
            continue
        postfix += 1
        if record is None and how.match is not None:  # type: ignore[union-attr]
            mm = how.match(line, m.end())  # type: ignore[union-attr]
            if mm is not None:
                parsed += 1
                kind, groups, handler, reset, settled = how.table[mm.lastgroup]  # type: ignore[union-attr]
                if groups is None:
                    continue  # a known line without verdict evidence
                values = mm.group(*groups) if len(groups) > 1 else (mm.group(groups[0]),)
                if handler is not None:
                    if repeated:
                        continue
                    if stamp is not last_stamp:
                        last_stamp, wall = stamp, wall_of(stamp)  # type: ignore[arg-type]
                    fold.feed_resolved(handler, reset, settled, kind, wall, None, number,
                                       (host, tag, m.group(_TAIL_PID)), values)  # type: ignore[union-attr]
                    continue
                found = (kind, values)
            else:
                found = None
        else:
            message = record.message if record is not None else line[m.end() :]  # type: ignore[union-attr]
            found = how.parse(message)  # type: ignore[union-attr]
            if found is not None:
                parsed += 1
        if found is None:
            missed += 1
            if len(unparsed) < task.keep_unparsed:
                message = record.message if record is not None else line[m.end() :]  # type: ignore[union-attr]
                unparsed.append(Unparsed(number, tag, message))
            continue
        kind, values = found
        if values is None:
            continue
        role = how.role  # type: ignore[union-attr]
        if repeated:
            continue
        if role == "?":
            role = _role_by_content(kind, values)
        if role is None:
            continue
        if record is None:
            key, wall, offset = (host, tag, m.group(_TAIL_PID)), wall_of(stamp), None  # type: ignore[union-attr,arg-type]
        else:
            key, wall, offset = (record.host, tag, record.pid), record.wall, record.offset
        last_stamp = None
        fold.feed(role, kind, wall, offset, number, key, values)
    fold.close_chunk()
    stats.postfix, stats.other, stats.unrecognized = postfix, other, unrecognized
    stats.parsed, stats.unparsed, stats.duplicate = parsed, missed, duplicate
    return ChunkResult(task.index, fold, stats, unparsed, clock=(clock.year, clock.month))


# -- chunk planning -------------------------------------------------------------------------

#: How far back the planner looks for the last line of a chunk (duplicate detection).
_TAIL_BYTES = 65536
#: A stream without a newline is cut into lines of this size rather than held in memory.
_LONGEST_LINE = 64 << 20

_CLASSIC_AT_LINE_START = re.compile(rb"(?:^|\n)((?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-3]?[0-9] [0-2][0-9]:)")


def _first_classic(data: bytes) -> str | None:
    m = _CLASSIC_AT_LINE_START.search(data, 0, 65536)
    return m.group(1).decode("ascii") if m else None


class _Planner:
    """Cuts sources into tasks and carries the year state from chunk to chunk."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.index = 0
        self.clock: YearClock | None = None
        self.errors: list[InputError] = []
        self.previous: bytes | None = None  # the last line of the previous chunk

    def _clock_for(self, head: bytes) -> tuple[int, int | None]:
        stamp = _first_classic(head)
        if self.clock is None:
            now = self.options.now or dt.datetime.now()
            self.clock = YearClock(start_year(stamp, self.options.year, now))
        if stamp is not None:
            self.clock.advance(MONTHS[stamp[:3]])
        return self.clock.year, self.clock.month

    def _task(self, head: bytes, tail: bytes, name: str, **where: object) -> _Task:
        """The next task; ``head``/``tail``: the first and the last bytes of its chunk."""
        year, month = self._clock_for(head)
        task = _Task(self.index, year, month, keep_unparsed=self.options.keep_unparsed,
                     timeout=self.options.timeout, rows=self.options.rows, name=name,
                     previous=self.previous, **where)  # type: ignore[arg-type]
        self.index += 1
        body = tail[:-1] if tail.endswith(b"\n") else tail
        cut = body.rfind(b"\n")
        # a line longer than the tail we looked at is not compared (it is no log line anyway)
        self.previous = body[cut + 1 :] if cut >= 0 or len(tail) < _TAIL_BYTES else None
        return task

    def tasks(self, sources: list[Source]) -> Iterator[_Task]:
        for source in sources:
            try:
                if source.seekable:
                    yield from self._ranges(source)
                else:
                    yield from self._blocks(source)
            except InputError as exc:  # DamagedInput too: the chunks read so far were yielded
                self.errors.append(exc)

    def _ranges(self, source: Source) -> Iterator[_Task]:
        size = self.options.chunk_size
        try:
            handle = open(source.path, "rb")  # type: ignore[arg-type]
        except OSError as exc:
            raise InputError(source.name, exc.strerror or str(exc)) from exc
        with handle:
            total = os.fstat(handle.fileno()).st_size
            start = 0
            while start < total:
                handle.seek(start)
                head = handle.read(65536)
                end = min(start + size, total)
                if end < total:
                    handle.seek(end)
                    while True:  # extend to the end of the line
                        probe = handle.read(65536)
                        if not probe:
                            end = total
                            break
                        newline = probe.find(b"\n")
                        if newline >= 0:
                            end += newline + 1
                            break
                        end += len(probe)
                handle.seek(max(start, end - _TAIL_BYTES))
                tail = handle.read(end - max(start, end - _TAIL_BYTES))
                yield self._task(head, tail, source.name, path=str(source.path), start=start, end=end)
                start = end

    def _blocks(self, source: Source) -> Iterator[_Task]:
        size = self.options.chunk_size
        pending = bytearray()
        try:
            for block in read_blocks(source):
                pending += block
                while len(pending) >= size:
                    cut = pending.rfind(b"\n", 0, size) + 1 or pending.find(b"\n", size) + 1
                    if cut == 0:
                        if len(pending) < _LONGEST_LINE:
                            break  # one huge line so far: wait for its end
                        cut = len(pending)  # no newline at all (binary junk, /dev/zero): cut it
                    data = bytes(pending[:cut])
                    del pending[:cut]
                    yield self._task(data, data[-_TAIL_BYTES:], source.name, data=data)
        except InputError:  # damaged or vanished: still use every line that was read
            if pending:
                yield self._task(bytes(pending), bytes(pending[-_TAIL_BYTES:]), source.name, data=bytes(pending))
            raise
        if pending:
            yield self._task(bytes(pending), bytes(pending[-_TAIL_BYTES:]), source.name, data=bytes(pending))


# -- running --------------------------------------------------------------------------------


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _run(tasks: Iterator[_Task], jobs: int) -> Iterator[tuple[_Task, ChunkResult]]:
    """(task, result) in task order, with at most a few chunks in flight (bounded memory)."""
    first = next(tasks, None)
    if first is None:
        return
    second = next(tasks, None)
    if second is None or jobs <= 1:
        for task in _chain(iter([first] if second is None else [first, second]), tasks):
            yield task, fold_chunk(task)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    pool = context.Pool(jobs, initializer=_ignore_sigint)
    try:
        window: collections.deque = collections.deque()
        for task in _chain(iter([first, second]), tasks):
            window.append((task, pool.apply_async(fold_chunk, (task,))))
            if len(window) >= 2 * jobs:
                task, pending = window.popleft()
                yield task, pending.get()
        while window:
            task, pending = window.popleft()
            yield task, pending.get()
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def _chain(*iterators: Iterator[_Task]) -> Iterator[_Task]:
    for iterator in iterators:
        yield from iterator


def analyze(args: list[str], options: Options | None = None,
            progress: Callable[[ChunkResult], None] | None = None) -> Analysis:
    """Read the inputs (paths, globs, ``-``; stdin when empty) and fold them into sessions."""
    options = options or Options()
    sources, errors = resolve(args)
    planner = _Planner(options)
    fold = Fold(Sessions() if options.rows else Counts(), timeout=options.timeout)
    stats = LineStats()
    unparsed: list[Unparsed] = []
    line_base = 0
    clock: tuple[int, int | None] | None = None  # the year state the previous chunk ended with
    for task, result in _run(planner.tasks(sources), options.jobs or _default_jobs()):
        if clock is not None and (task.year, task.month) != clock:
            # The planner guessed this chunk's starting year state from its first line; the
            # previous chunk ended elsewhere (months out of order around the cut). Redo it from
            # the true state, so that the result is the one of a single pass.
            result = fold_chunk(dataclasses.replace(task, year=clock[0], month=clock[1]))
        clock = result.clock
        if result.error is not None:
            errors.append(result.error)
        fold.merge(result.fold, line_base)
        fold.sweep()
        for item in result.unparsed:
            if len(unparsed) < options.keep_unparsed:
                unparsed.append(Unparsed(item.line + line_base, item.tag, item.message))
        line_base += result.stats.read
        stats.add(result.stats)
        if progress is not None:
            progress(result)
    sessions = fold.finish()
    errors.extend(planner.errors)
    errors.sort(key=lambda e: isinstance(e, DamagedInput))
    return Analysis(sessions, fold.services, stats, errors, unparsed)
