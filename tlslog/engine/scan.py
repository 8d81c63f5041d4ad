"""Scan one chunk: decode, split the prefix, dispatch by program, parse, fold.

`scan` is the stage a worker runs (chunk bytes in; a session-table partition, the evidence
of its stretches, its edge state, the line accounting and the Postfix versions its master lines
name out). Every line read is counted in
`LineStats`: parsed, unparsed Postfix text of the parsed programs, lines of other Postfix
programs, lines of other programs, or unrecognised. `describe_line` reads one line the slow,
plain way, for tests and debugging.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from .. import table
from ..accounting import LineStats
from ..errors import InputError
from ..events import FIELDS, INBOUND_KINDS, KINDS, OUTBOUND_KINDS, Values
from ..fold import ChunkFold, EdgeState
from ..grammars import ANY_PROGRAM, PROGRAMS, UNKNOWN_PROGRAM, master, prefix, tls
from ..lines import MAX_LINE, LineSplitter, Record
from ..lowering import lower_rule
from ..parse import Match, RuleSet
from ..settle import Evidence
from ..sources import Source, open_raw
from ..timestamps import YearClock
from . import prefilter
from .plan import Task

__all__ = ["POSTFIX_PROGRAMS", "ChunkResult", "Unparsed", "describe_line", "prepare", "scan"]

#: postscreen lines carry no TLS evidence (a STARTTLS during its tests shows up in tlsproxy):
#: its rules are in the grammar, but the scan counts its lines without parsing them.
_SCANNED_PROGRAMS = ("smtpd", "smtp", "tlsproxy")
#: Which side of the fold a program's events belong to (None: recognised, not folded).
_ROLES: dict[str, str | None] = {"smtpd": "in", "smtp": "out", "tlsproxy": None}
#: Daemons and tools of Postfix whose lines carry no TLS evidence (counted as Postfix lines).
POSTFIX_PROGRAMS = frozenset(
    "anvil bounce cleanup defer discard dnsblog error flush lmtp local master nqmgr oqmgr pickup pipe"
    " postalias postcat postconf postdrop postfix postfix-script postkick postlock postlog postlogd"
    " postmap postmulti postqueue postsuper proxymap proxywrite qmgr qmqpd retry scache sendmail"
    " showq smtp smtpd spawn tlsmgr tlsproxy postscreen trace verify virtual".split()
)
#: Rules of TLS log level >= 2 (see `LineStats.tls_detail`).
_DETAIL = frozenset(getattr(tls, "DETAIL_NAMES", ()))


@dataclass
class Unparsed:
    """An smtp/smtpd/tlsproxy line that matched no rule (kept for ``tlslog unparsed``)."""

    line: int  # 0-based over the whole input once stitched
    tag: str
    message: str


@dataclass
class ChunkResult:
    """What `scan` returns for one task; every part is a plain, picklable value."""

    index: int
    rows: pd.DataFrame  # a session-table partition: rows closed inside the chunk (lines chunk-local)
    evidence: Evidence
    edge: EdgeState
    stats: LineStats
    unparsed: list[Unparsed] = field(default_factory=list)
    error: InputError | None = None
    #: the month of the first classic stamp and the year state after the last (see `tlslog.stitch`)
    first_month: int | None = None
    clock: tuple[int, int | None] | None = None
    #: host ("" when unknown) -> the Postfix versions its master start and reload lines name
    postfix_versions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: (day, status, domain, mx_name, mx_addr, failure_type, failure_reason) -> TLSRPT lines
    tlsrpt: dict[tuple, int] = field(default_factory=dict)
    #: with `Task.check_previous`: the chunk's first line (`first_line`), to compare with the line
    #: before it once that is known
    first_line: bytes | None = None


# -- the rules, compiled on first use --------------------------------------------------------------

@cache
def _parsers() -> dict[str, RuleSet]:
    """What the scan parses with: the fields the fold reads, as tuples (hot path)."""
    found = {program: RuleSet(PROGRAMS[program], select=FIELDS) for program in _SCANNED_PROGRAMS}
    found["postfix"] = RuleSet(UNKNOWN_PROGRAM, select=FIELDS)
    found["master"] = RuleSet(master.RULES)
    return found


@cache
def _describers() -> tuple[dict[str, RuleSet], RuleSet, RuleSet]:
    """What `describe_line` parses with: every field, by name."""
    return ({program: RuleSet(rules) for program, rules in PROGRAMS.items()}, RuleSet(UNKNOWN_PROGRAM),
            RuleSet(ANY_PROGRAM))


@cache
def _prefix_patterns() -> tuple[Any, Any, tuple[int, int, int], Any, tuple[int, int]]:
    """The classic syslog prefix rule compiled (the rule that matches nearly every line), and the
    part of it after ``STAMP HOST `` (`prefix.CLASSIC_TAIL`); other prefixes go through
    `LineSplitter`, which tries every prefix rule in order."""
    classic = re.compile(lower_rule(prefix.CLASSIC.element).pattern)
    tail = re.compile(lower_rule(prefix.TAG_PID_ONLY).pattern)
    return (classic.match, tail.match, tuple(classic.groupindex[n] for n in ("stamp", "host", "tag")),  # type: ignore[return-value]
            classic, (tail.groupindex["tag"], tail.groupindex["pid"]))


def prepare() -> None:
    """Compile the rules now (before worker processes fork, so that they share them)."""
    _parsers()
    _prefix_patterns()


def describe_line(line: str, year: int = 2000) -> tuple[Record | None, Match | None]:
    """How one line is read: its prefix record and the rule that matched, with every field.

    A bare message without any prefix is tried against every program's rules. For tests,
    documentation and debugging; `scan` does the same inline.
    """
    by_program, unknown, anything = _describers()
    record = LineSplitter(YearClock(year)).split(line)
    if record is None:
        return None, anything.parse(line)
    program = record.tag[record.tag.rfind("/") + 1 :]
    rules = by_program.get(program) or (unknown if record.tag == "postfix" else None)
    return record, rules.parse(record.message) if rules else None


def _role_by_content(kind: str, values: tuple) -> str | None:
    """Server or client side, for a line whose tag lost the program name."""
    if kind in INBOUND_KINDS:
        return "in"
    if kind in OUTBOUND_KINDS:
        return "out"
    if kind in ("tls_summary", "ssl_error"):  # the first field is the direction
        return "in" if values[0] == "from" else "out"
    return None  # library problems, EHLO notes: the side is not in the text


# -- reading a chunk -------------------------------------------------------------------------------

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


def _read(task: Task) -> bytes:
    if task.data is not None:
        return task.data
    with open_raw(Source(task.source, None if task.path is None else Path(task.path), url=task.url)) as handle:
        handle.seek(task.start)
        return handle.read(task.end - task.start)


def split_lines(data: bytes, stats: LineStats) -> list[str]:
    """Decoded lines without their line ends (LF or CRLF)."""
    text = _decode(data, stats)
    del data
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if "\r" in text:
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    return lines


#: How a tag's lines are handled, decided once per distinct tag (see `_tag_kind`).
_POSTFIX, _OTHER, _MASTER = "postfix", "other", "master"


def _prefilter_kind(tag: str) -> int:
    """What the prefilter does with a tag's classic lines: count them, or keep them for the scan."""
    how = _tag_kind(tag)
    return prefilter.POSTFIX if how is _POSTFIX else prefilter.OTHER if how is _OTHER else prefilter.KEEP


@cache
def _prefilter_decide() -> Callable[[str], int]:
    classic, _, (_, _, g_tag), _, _ = _prefix_patterns()
    return prefilter.decider(_prefilter_kind, classic, g_tag)


def _tag_kind(tag: str) -> tuple[RuleSet, str | None] | str:
    """(rules, role) for a parsed program's tag, else `_MASTER`, `_POSTFIX` or `_OTHER`."""
    program = tag[tag.rfind("/") + 1 :]
    parsers = _parsers()
    if program in _SCANNED_PROGRAMS:
        return parsers[program], _ROLES[program]
    if tag == "postfix":
        return parsers["postfix"], "?"
    if program == "master" and tag.startswith("postfix"):
        return _MASTER
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
        #: marker group -> (rule, groups to read, tuple class, handler, reset, settled keys, TLS detail)
        self.table: dict[str, tuple] = {}
        if compiled:
            for marker, (kind, groups) in compiled[1].items():
                handler = fold.handler(role, kind) if role in ("in", "out") else None
                settled = fold.settled_in if role == "in" else fold.settled_out
                self.table[marker] = (kind, groups, KINDS.get(kind), handler,
                                      fold.is_reset(role, kind) if handler else False,  # type: ignore[arg-type]
                                      settled, kind in _DETAIL)


def scan(task: Task) -> ChunkResult:
    """Parse and fold one chunk (runs in a worker process).

    The loop is the hot path of tlslog. A line that starts like the previous one (same stamp
    and host) is matched from its tag on; most lines go no further than their tag; messages
    are parsed in place with one compiled pattern per program, extracting only the fields the
    fold reads; times are converted only for lines that reach the fold.
    """
    stats = LineStats()
    rows: list[tuple] = []
    fold = ChunkFold(rows, timeout=task.timeout, source=task.source)
    if task.overlong is not None:  # a line the planner read through: no record, only counted
        stats.read = stats.unrecognized = task.overlong[0]
        stats.invalid_utf8 = task.overlong[1]
        return ChunkResult(task.index, table.partition([], task.columns), fold.evidence, fold.edge(), stats)
    try:
        data = _read(task)
    except OSError as exc:  # the file vanished or became unreadable after it was planned
        return ChunkResult(task.index, table.partition([], task.columns), fold.evidence, fold.edge(), stats,
                           error=InputError(task.source, exc.strerror or str(exc)))
    first_line = first_line_of(data) if task.check_previous else None
    postfix = other = duplicate = 0
    kept = None
    if prefilter.compiled is not None:
        before = task.previous[:-1] if task.previous is not None and task.previous.endswith(b"\r") else task.previous
        kept = prefilter.compiled(data, before, _prefilter_kind, _prefilter_decide(), MAX_LINE)
    codes: list[int] | None = None
    pairs: Iterable[tuple[int, str]]
    if kept is not None:  # only the lines the prefilter kept, as (number * 2 + repeated, text)
        lines, codes, stats.read, postfix, other, duplicate = kept
        pairs = zip(codes, lines)
    else:
        lines = split_lines(data, stats)
        stats.read = len(lines)
        pairs = enumerate(lines)
    del data
    previous = line_text(task.previous) if task.previous is not None else None
    unparsed: list[Unparsed] = []
    clock = YearClock(task.year, task.month)
    split, wall_of = LineSplitter(clock).split, clock.wall
    classic, tail, (g_stamp, g_host, g_tag), _, (g_tail_tag, g_tail_pid) = _prefix_patterns()
    master_rules = _parsers()["master"]
    kinds: dict[str, _Dispatch | str] = {}
    versions: dict[str, set[str]] = {}  # host -> Postfix versions of its master lines
    tlsrpt: dict[tuple, int] = {}  # (day, TLSRPT fields) -> lines
    head = "\n"  # no line starts with a newline
    stamp = host = last_stamp = wall = None
    unrecognized = parsed = missed = detail = 0
    m: Any = None
    feed_resolved: Callable[..., None] = fold.feed_resolved
    new_tuple = tuple.__new__  # a rule's typed tuple from its groups (what NamedTuple._make does)
    for number, line in pairs:
        if codes is not None:
            repeated = number & 1
            number >>= 1
        else:
            repeated = line == previous  # a doubled log: counted as usual, but folded once
            duplicate += repeated
            previous = line
        record = None
        if len(line) > MAX_LINE:  # not a Postfix record (they are cut at 2000 bytes)
            unrecognized += 1
            continue
        if line.startswith(head) and (m := tail(line, len(head))) is not None:
            tag = m.group(g_tail_tag)
        elif "A" <= line[:1] <= "Z" and (full := classic(line)) is not None:
            stamp, host, tag = full.group(g_stamp, g_host, g_tag)
            head = line[: full.start(g_tag)]
            m = tail(line, len(head))
        else:
            record = split(line)
            if record is None:
                unrecognized += 1
                continue
            tag = record.tag
        how = kinds.get(tag)
        if how is None:
            found_kind = _tag_kind(tag)
            how = kinds[tag] = found_kind if isinstance(found_kind, str) else _Dispatch(*found_kind, fold)
        if how is _POSTFIX:
            postfix += 1
            continue
        if how is _OTHER:
            other += 1
            continue
        postfix += 1
        if how is _MASTER:
            message = record.message if record is not None else line[m.end() :]
            found = master_rules.parse(message)
            if found is not None and found[0] in master.RESTARTS:
                master_host = record.host if record is not None else host
                versions.setdefault(master_host or "", set()).add(found[1]["version"])
                if not repeated:
                    fold.restart(master_host, number)
            continue
        if record is None and how.match is not None:  # type: ignore[union-attr]
            mm = how.match(line, m.end())  # type: ignore[union-attr]
            if mm is not None:
                parsed += 1
                kind, groups, make, handler, reset, settled, is_detail = how.table[mm.lastgroup]  # type: ignore[union-attr,index]
                if groups is None:
                    detail += is_detail
                    continue  # a known line without verdict evidence
                values = new_tuple(make, mm.group(*groups) if len(groups) > 1 else (mm.group(groups[0]),))
                if handler is not None:
                    if repeated:
                        continue
                    if stamp is not last_stamp:
                        last_stamp, wall = stamp, wall_of(stamp)  # type: ignore[arg-type]
                    key = (host, tag, m.group(g_tail_pid))
                    if key in settled:  # what `feed_resolved` would do first, without its call
                        handler(wall, None, number, key, values)
                    else:
                        feed_resolved(handler, reset, settled, how.role, kind, wall, None, number,  # type: ignore[union-attr]
                                      key, values)
                    continue
                found = (kind, values)
            else:
                found = None
        else:
            message = record.message if record is not None else line[m.end() :]
            found = how.parse(message)  # type: ignore[union-attr]
            if found is not None:
                parsed += 1
                detail += found[0] in _DETAIL
        if found is None:
            missed += 1
            if len(unparsed) < task.keep_unparsed:
                message = record.message if record is not None else line[m.end() :]
                unparsed.append(Unparsed(number, tag, message))
            continue
        kind, fields = found
        if fields is None or kind not in KINDS:
            continue
        role = how.role  # type: ignore[union-attr]
        if repeated:
            continue
        if kind == "tlsrpt":  # one line per new TLS connection: counted, not folded
            when = wall_of(stamp) if record is None else record.wall  # type: ignore[arg-type]
            entry = (int(when // 86400) if when is not None else -1, *fields)
            tlsrpt[entry] = tlsrpt.get(entry, 0) + 1
            continue
        if role == "?":
            role = _role_by_content(kind, fields)
        if role is None:
            continue
        values_typed: Values = fields if isinstance(fields, KINDS[kind]) else KINDS[kind]._make(fields)
        if record is None:
            key, wall, offset = (host, tag, m.group(g_tail_pid)), wall_of(stamp), None  # type: ignore[arg-type]
        else:
            key, wall, offset = (record.host, tag, record.pid), record.wall, record.offset
        last_stamp = None
        fold.feed(role, kind, wall, offset, number, key, values_typed)
    stats.postfix, stats.other, stats.unrecognized = postfix, other, unrecognized
    stats.parsed, stats.unparsed, stats.duplicate, stats.tls_detail = parsed, missed, duplicate, detail
    edge = fold.edge()
    return ChunkResult(task.index, table.partition(rows, task.columns, task.classifier), fold.evidence, edge, stats,
                       unparsed,
                       first_month=clock.first_month, clock=clock.state(),
                       postfix_versions={h: tuple(sorted(v)) for h, v in sorted(versions.items())}, tlsrpt=tlsrpt,
                       first_line=first_line)


def first_line_of(data: bytes) -> bytes | None:
    """The first line of a chunk (None when it has none), without its newline."""
    if not data:
        return None
    newline = data.find(b"\n")
    return data if newline < 0 else data[:newline]


def line_text(line: bytes) -> str:
    """One line's text as the scan compares it with the next (decoded, without a CR; an empty
    line, b"", is a line too)."""
    return (split_lines(line, LineStats()) or [""])[0]


def same_line(first: bytes | None, previous: bytes | None) -> bool:
    """Whether a chunk starting with ``first`` repeats ``previous``, the line before it, as the
    scan compares them: then the chunk is scanned again knowing it."""
    return first is not None and previous is not None and line_text(first) == line_text(previous)
