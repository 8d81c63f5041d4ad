"""Split a raw log line into time, host, tag, pid and the Postfix message text.

The prefix is recognised per line (``grammars/prefix.py``), so files that mix syslog, RFC 3339,
RFC 5424 and ``journalctl -o json`` lines are read correctly. Lines that have no recognisable
prefix come back as None and are counted by the caller, never dropped silently.
"""

from __future__ import annotations

import json
from functools import cache
from typing import NamedTuple

from .grammars import prefix
from .parse import RuleSet
from .timestamps import YearClock, parse_iso

__all__ = ["Record", "LineSplitter", "MAX_LINE"]

#: Postfix cuts records at 2000 bytes of text; anything this long is not a Postfix line and
#: is not given to the regular expressions at all.
MAX_LINE = 65536


class Record(NamedTuple):
    """One log line, split. ``wall`` is wall-clock seconds (see `tlslog.timestamps`)."""

    wall: float | None
    offset: int | None
    host: str | None
    tag: str
    pid: str | None
    message: str


@cache
def _prefixes() -> tuple[RuleSet, RuleSet]:
    """The classic rule alone (nearly every line) and all prefix rules, compiled on first use."""
    return RuleSet([prefix.CLASSIC]), RuleSet(prefix.RULES)



class LineSplitter:
    """Stateful because classic stamps need the stream's `YearClock`."""

    def __init__(self, clock: YearClock) -> None:
        self.clock = clock
        self._iso_cache: dict[str, tuple[float, int | None] | None] = {}

    def split(self, line: str) -> Record | None:
        """The line's parts, or None when no known prefix matches."""
        if len(line) > MAX_LINE:
            return None
        if line[:1] == "{":
            return self._json(line)
        classic, every = _prefixes()
        found = classic.parse(line) or every.parse(line)
        if found is None:
            return None
        kind, f = found
        wall: float | None = None
        offset: int | None = None
        stamp = f.get("stamp")
        if kind == "classic":
            wall = self.clock.wall(stamp)
        elif stamp is not None:
            parsed = self._iso(stamp)
            if parsed is not None:
                wall, offset = parsed
        return Record(wall, offset, f.get("host"), f["tag"], f["pid"], f["message"] or "")

    def _iso(self, stamp: str) -> tuple[float, int | None] | None:
        cached = self._iso_cache.get(stamp, False)
        if cached is not False:
            return cached  # type: ignore[return-value]
        parsed = parse_iso(stamp)
        if len(self._iso_cache) > 4096:
            self._iso_cache.clear()
        self._iso_cache[stamp] = parsed
        return parsed

    def _json(self, line: str) -> Record | None:
        """``journalctl -o json`` records, and Docker json-file records wrapping a syslog line."""
        try:
            obj = json.loads(line)
        except ValueError:
            return None
        if not isinstance(obj, dict):
            return None
        if "MESSAGE" in obj:
            return _journal_record(obj)
        inner = obj.get("log")
        if isinstance(inner, str):
            return self.split(inner.rstrip("\n"))
        return None


def _journal_record(obj: dict[str, object]) -> Record | None:
    message = obj.get("MESSAGE")
    if isinstance(message, list):  # journald stores non-UTF-8 messages as byte arrays
        try:
            message = bytes(message).decode("utf-8", "replace")
        except (TypeError, ValueError):
            return None
    if not isinstance(message, str):
        return None
    tag = obj.get("SYSLOG_IDENTIFIER") or obj.get("_COMM")
    if not isinstance(tag, str):
        return None
    pid = obj.get("SYSLOG_PID") or obj.get("_PID")
    host = obj.get("_HOSTNAME")
    wall: float | None = None
    offset: int | None = None
    stamp = obj.get("__REALTIME_TIMESTAMP")
    if isinstance(stamp, str) and stamp.isdigit():
        wall, offset = int(stamp) / 1_000_000, 0
    return Record(wall, offset, host if isinstance(host, str) else None, tag,
                  pid if isinstance(pid, str) else None, message)
