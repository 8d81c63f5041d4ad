"""Cut the inputs into tasks: chunks of whole lines, the same whatever the number of workers.

Plain regular files and URLs become byte ranges that a worker reads itself; standard input,
pipes and compressed files are read here and their chunks travel with the task, except for a
cluster's ``whole_files``, which its worker reads whole and cuts itself
(`tlslog.engine.wholefile`). Each task also carries
the year state its first classic (year-less) stamp is guessed to see, and the last line of
the chunk before it (to spot a line repeated across the cut); `tlslog.stitch` checks the
guess and redoes a chunk in the rare case it was wrong.
"""

from __future__ import annotations

import codecs
import datetime as dt
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from ..classify import Classifier
from ..errors import InputError
from ..fold import DEFAULT_TIMEOUT
from ..lines import MAX_LINE
from ..schema import Projection
from ..sources import Source, open_raw, read_blocks
from ..timestamps import MONTHS, YearClock, start_year

__all__ = ["CHUNK_SIZE", "Planner", "Task", "default_chunk_size"]

#: Bytes per chunk: whole lines, independent of the number of workers (so is the result).
CHUNK_SIZE = 8 << 20


def default_chunk_size() -> int:
    """`CHUNK_SIZE`, or ``TLSLOG_CHUNK_SIZE`` (tests use small chunks to cut sessions everywhere)."""
    return int(os.environ.get("TLSLOG_CHUNK_SIZE") or CHUNK_SIZE)
#: How far back the planner looks for the last line of a chunk (duplicate detection).
_TAIL_BYTES = 65536
#: A line longer than this is counted in pieces of this size, each one unrecognised line,
#: and never held in memory whole (a stream without any newline, a decompression bomb).
LONGEST_LINE = 64 << 20
#: A line of more bytes than this has more than ``MAX_LINE`` characters whatever its bytes (a
#: character, or an invalid byte read as U+FFFD, takes at most 4 bytes): it is no record, and is
#: read through (`_LongLine`) instead of being buffered once it also exceeds the chunk size.
_KEEP = 4 * (MAX_LINE + 2)

_CLASSIC_AT_LINE_START = re.compile(rb"(?:^|\n)((?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-3]?[0-9] [0-2][0-9]:)")


@dataclass
class Task:
    """One chunk to scan: where its bytes are, and what it needs to know of what came before."""

    index: int
    source: str  # the input's name, as the user gave it (error messages, the ``source`` column)
    year: int
    month: int | None
    data: bytes | None = None
    path: str | None = None
    url: str | None = None  # an fsspec URL whose range start..end the worker reads
    start: int = 0
    end: int = 0
    keep_unparsed: int = 0
    timeout: float = DEFAULT_TIMEOUT
    columns: tuple[str, ...] | Projection | None = None  # session-table columns to return (None: all)
    previous: bytes | None = None  # the line before this chunk, to drop a duplicate of it
    classifier: Classifier = field(default_factory=Classifier)  # roles and hops of rows
    #: an overlong line read through by the planner instead of data: (its pieces of
    #: `LONGEST_LINE`, each one line, and how many of them held invalid UTF-8)
    overlong: tuple[int, int] | None = None
    #: a compressed file or URL the worker reads and cuts itself (`tlslog.engine.wholefile`)
    whole: Source | None = None
    chunk_size: int = CHUNK_SIZE  # the cut of a ``whole`` source
    #: the line before this chunk was unknown when it was planned (it follows a ``whole``
    #: source): ``previous`` is None, and the result names the chunk's first line to check
    check_previous: bool = False


def _first_classic(data: bytes) -> str | None:
    m = _CLASSIC_AT_LINE_START.search(data, 0, 65536)
    return m.group(1).decode("ascii") if m else None


class Planner:
    """Cuts sources into tasks and carries the guessed year state from chunk to chunk."""

    def __init__(self, *, chunk_size: int | None = None, year: int | None = None, now: dt.datetime | None = None,
                 keep_unparsed: int = 0, timeout: float = DEFAULT_TIMEOUT,
                 columns: tuple[str, ...] | Projection | None = None,
                 classifier: Classifier | None = None, whole_files: frozenset[Source] = frozenset()) -> None:
        self.chunk_size = chunk_size or default_chunk_size()
        self.year = year
        self.now = now
        self.keep_unparsed = keep_unparsed
        self.timeout = timeout
        self.columns = columns
        self.classifier = classifier or Classifier()
        self.index = 0
        self.clock: YearClock | None = None
        self.errors: list[InputError] = []
        self.previous: bytes | None = None  # the last line of the previous chunk
        self.whole_files = whole_files  # the compressed files and URLs that are one task (read by the worker)
        self.previous_unknown = False  # the previous chunk was such a file

    def _clock_for(self, head: bytes) -> tuple[int, int | None]:
        """The guessed (year, month) state after the chunk's first classic stamp."""
        stamp = _first_classic(head)
        if self.clock is None:
            self.clock = YearClock(start_year(stamp, self.year, self.now or dt.datetime.now()))
        if stamp is not None:
            self.clock.advance(MONTHS[stamp[:3]])
        return self.clock.state()

    def _task(self, head: bytes, tail: bytes, source: str, **where: object) -> Task:
        """The next task; ``head``/``tail``: the first and the last bytes of its chunk."""
        year, month = self._clock_for(head)
        task = Task(self.index, source, year, month, keep_unparsed=self.keep_unparsed, timeout=self.timeout,
                    columns=self.columns, previous=self.previous, classifier=self.classifier,
                    check_previous=self.previous_unknown, **where)  # type: ignore[arg-type]
        self.index += 1
        self.previous_unknown = False
        body = tail[:-1] if tail.endswith(b"\n") else tail
        cut = body.rfind(b"\n")
        # a line longer than the tail we looked at is not compared (it is no log line anyway)
        self.previous = body[cut + 1 :] if cut >= 0 or len(tail) < _TAIL_BYTES else None
        return task

    def tasks(self, sources: list[Source]) -> Iterator[Task]:
        """Every task of every source, in order; unreadable sources end up in ``errors``."""
        for source in sources:
            try:
                if source.seekable:
                    yield from self._ranges(source)
                elif source in self.whole_files:
                    yield from self._whole(source)
                else:
                    yield from self._blocks(source)
            except InputError as exc:  # DamagedInput too: the chunks read so far were yielded
                self.errors.append(exc)

    def _ranges(self, source: Source) -> Iterator[Task]:
        size = self.chunk_size
        try:
            handle = open_raw(source)
            total = handle.seek(0, os.SEEK_END)
        except OSError as exc:
            raise InputError(source.name, exc.strerror or str(exc)) from exc
        where = {"url": source.url} if source.url is not None else {"path": str(source.path)}
        with handle:
            start = 0
            while start < total:
                handle.seek(start)
                head = handle.read(65536)
                end = min(start + size, total)
                if end < total:
                    line_end = _line_end(handle, end, total)
                    if line_end is None:  # the range would end inside an overlong line
                        handle.seek(start)
                        cut = handle.read(end - start).rfind(b"\n")
                        if cut < 0:  # it starts with that line: count it, go on after it
                            long = _LongLine()
                            handle.seek(start)
                            start = long.read_through(handle, total)
                            yield self._overlong(long, source.name)
                            continue
                        line_end = start + cut + 1
                    end = line_end
                handle.seek(max(start, end - _TAIL_BYTES))
                tail = handle.read(end - max(start, end - _TAIL_BYTES))
                yield self._task(head, tail, source.name, start=start, end=end, **where)
                start = end

    def _whole(self, source: Source) -> Iterator[Task]:
        """One task for the whole source, whose worker reads and cuts it; only its first block is
        read here (its first stamp moves the year guess on; an empty source makes no task)."""
        blocks = read_blocks(source)
        try:
            head = next(blocks, b"")
        finally:
            blocks.close()
        if not head:
            return
        task = self._task(head[:65536], b"", source.name, whole=source, chunk_size=self.chunk_size)
        self.previous, self.previous_unknown = None, True  # its last line is the worker's to find
        yield task

    def _blocks(self, source: Source) -> Iterator[Task]:
        size = self.chunk_size
        pending = bytearray()  # whole lines, then the start of the line being read
        long: _LongLine | None = None  # that line, once it is too long to keep: read through
        try:
            for block in read_blocks(source):
                if long is not None:
                    newline = block.find(b"\n")
                    long.feed(block if newline < 0 else block[:newline])
                    if newline < 0:
                        continue
                    yield self._overlong(long, source.name)
                    long = None
                    block = block[newline + 1 :]
                pending += block
                while len(pending) >= size:
                    cut = pending.rfind(b"\n", 0, size) + 1 or pending.find(b"\n", size) + 1
                    if cut == 0:  # one line so far, without its end
                        if len(pending) <= _KEEP:
                            break  # wait for its end
                        long = _LongLine()
                        long.feed(pending)
                        pending.clear()
                        break
                    data = bytes(pending[:cut])
                    del pending[:cut]
                    yield self._task(data, data[-_TAIL_BYTES:], source.name, data=data)
        except InputError:  # damaged or vanished: still use every line that was read
            yield from self._rest(pending, long, source.name)
            raise
        yield from self._rest(pending, long, source.name)

    def _rest(self, pending: bytearray, long: _LongLine | None, name: str) -> Iterator[Task]:
        if long is not None:
            yield self._overlong(long, name)
        elif pending:
            yield self._task(bytes(pending), bytes(pending[-_TAIL_BYTES:]), name, data=bytes(pending))

    def _overlong(self, long: _LongLine, source: str) -> Task:
        """A task that only counts an overlong line (see `_LongLine`)."""
        task = Task(self.index, source, *(self.clock.state() if self.clock else (self.year or 0, None)),
                    overlong=long.counts(), previous=None)
        self.index += 1
        self.previous, self.previous_unknown = None, False  # no line equals one this long: the next chunk has nothing to compare
        return task


def _line_end(handle: IO[bytes], end: int, total: int) -> int | None:
    """Where the line that ``end`` falls in ends (after its newline, or the end of the file);
    None if that is more than `_KEEP` bytes away (an overlong line)."""
    handle.seek(end)
    scanned = 0
    while end + scanned < total:
        probe = handle.read(65536)
        if not probe:
            break
        newline = probe.find(b"\n")
        if newline >= 0:
            return end + scanned + newline + 1
        scanned += len(probe)
        if scanned > _KEEP:
            return None
    return total


class _LongLine:
    """A line too long to be a record, read through without being kept: counted in pieces of
    `LONGEST_LINE` bytes (each piece one unrecognised line, as README says), noting the pieces
    that hold invalid UTF-8."""

    def __init__(self) -> None:
        self.pieces = 0
        self.invalid = 0
        self._start()

    def _start(self) -> None:
        self.size = 0
        self.valid = True
        self.decoder = codecs.getincrementaldecoder("utf-8")()

    def feed(self, data: bytes | bytearray) -> None:
        """More of the line (no newline in it)."""
        start = 0
        while start < len(data):
            if self.size == LONGEST_LINE:  # a piece is over once more of the line follows
                self._close()
            piece = data[start : start + LONGEST_LINE - self.size]
            start += len(piece)
            self.size += len(piece)
            if self.valid and (self.decoder.getstate()[0] or not piece.isascii()):
                try:
                    self.decoder.decode(piece)
                except UnicodeDecodeError:
                    self.valid = False

    def _close(self) -> None:
        if self.valid:
            try:
                self.decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                self.valid = False
        self.pieces += 1
        self.invalid += not self.valid
        self._start()

    def read_through(self, handle: IO[bytes], total: int) -> int:
        """Read the line from the handle's position: where the next line starts."""
        while True:
            block = handle.read(1 << 20)
            newline = block.find(b"\n")
            self.feed(block if newline < 0 else block[:newline])
            if newline >= 0:
                return handle.tell() - len(block) + newline + 1
            if len(block) < 1 << 20:
                return total

    def counts(self) -> tuple[int, int]:
        """(lines, lines with invalid UTF-8) of the whole line; ends it."""
        self._close()
        return self.pieces, self.invalid
