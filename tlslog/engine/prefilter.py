"""Drop the lines of programs without TLS evidence before the scan makes Python objects of them.

About 60 % of a busy MX's lines come from postscreen, qmgr, cleanup, dovecot, opendkim... The
scan only counts them (`tlslog.accounting.LineStats`). The compiled core (``tlslog._linescan``,
built from ``tlslog/_linescan.c`` when a C compiler is there) walks a chunk's bytes and counts
such a line without decoding it when its classic prefix names such a program; every other line
is decoded and handed on, with its number and whether it repeats the line before it. It
decides nothing the grammar does not: a line is dropped only when it certainly matches the
classic prefix rule with that tag, and kept whenever that cannot be told from its bytes.

`reference` is the definition in Python, through the grammar's lowered prefix rule; the test
suite proves the compiled core gives exactly its result. Without the compiled core, or with
``TLSLOG_PURE_PYTHON=1`` in the environment, `compiled` is None and the scan reads every line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import NamedTuple

__all__ = ["KEEP", "OTHER", "POSTFIX", "Kept", "compiled", "decider", "reference"]

#: What a tag's lines are to the prefilter (`classify`'s answers).
KEEP, POSTFIX, OTHER = 0, 1, 2


class Kept(NamedTuple):
    """A chunk after the prefilter: the kept lines (decoded, line ends removed) and, per kept
    line, ``number * 2 + repeated`` (its 0-based line number in the chunk, and 1 if it has the
    same text as the line before it); the counts cover every line of the chunk."""

    lines: list[str]
    codes: list[int]
    read: int
    postfix: int
    other: int
    duplicate: int


#: ``keep(data, previous, classify, decide, max_line)``: a `Kept` tuple, or None when the
#: chunk (or the line before it) holds invalid UTF-8 and must be read the plain way.
#: ``classify(tag)`` and ``decide(line)`` answer `KEEP`, `POSTFIX` or `OTHER`.
Prefilter = Callable[[bytes, bytes | None, Callable[[str], int], Callable[[str], int], int], tuple | None]


def _load() -> Prefilter | None:
    if os.environ.get("TLSLOG_PURE_PYTHON"):
        return None
    try:
        from .. import _linescan
    except ImportError:
        return None
    return _linescan.keep


#: The compiled prefilter, or None (no compiler at install time, or ``TLSLOG_PURE_PYTHON``).
compiled: Prefilter | None = _load()


def decider(classify: Callable[[str], int], classic: Callable[[str], re.Match | None],
            tag_group: int) -> Callable[[str], int]:
    """What a line is to the prefilter, by the grammar: ``classic`` is the lowered classic
    prefix rule's ``match``, ``tag_group`` its tag group."""

    def decide(line: str) -> int:
        m = classic(line)
        return classify(m.group(tag_group)) if m is not None else KEEP

    return decide


def reference(data: bytes, previous: bytes | None, classify: Callable[[str], int], decide: Callable[[str], int],
              max_line: int) -> tuple | None:
    """What the compiled core returns, in Python: every line is given to ``decide``.
    ``previous`` (the line before the chunk) comes without its line end. A line of more than
    ``max_line`` bytes is kept (the scan counts it as unrecognised when it has more than that
    many characters)."""
    try:
        text = data.decode("utf-8")
        before = previous.decode("utf-8") if previous is not None else None
    except UnicodeDecodeError:
        return None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    kept: list[str] = []
    codes: list[int] = []
    postfix = other = duplicate = 0
    for number, line in enumerate(lines):
        if line.endswith("\r"):
            line = line[:-1]
        repeated = line == before
        duplicate += repeated
        before = line
        kind = decide(line) if len(line.encode()) <= max_line else KEEP
        if kind == POSTFIX:
            postfix += 1
        elif kind == OTHER:
            other += 1
        else:
            kept.append(line)
            codes.append(number * 2 + repeated)
    return kept, codes, len(lines), postfix, other, duplicate
