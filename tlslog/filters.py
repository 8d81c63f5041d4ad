"""Which rows a command looks at: ``--since``, ``--until``, ``--direction``, ``--service``, ``--peer``.

Filters apply to the settled session table, so a filter never changes a verdict: the rows it
keeps are judged exactly as with the whole input. A row's time is that of its first line (an
outbound delivery: its status line), by the wall clock the log shows.

Times: ``2026-10-01`` (midnight), ``2026-10-01T12:30`` (ISO), or relative to now: ``7d``,
``12h``, ``30m``, ``today``, ``yesterday``, ``this-week``, ``last-week`` (ISO weeks, Monday
first), ``this-month``, ``last-month``. ``--until`` is exclusive. ``--peer`` matches a client's or
server's name (``mail.example.net``, or a domain: ``example.net`` matches its hosts), an address
or a network (``192.0.2.0/24``), or a recipient domain.
"""

from __future__ import annotations

import calendar
import datetime as dt
import ipaddress
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .peers import event_times
from .schema import Projection

__all__ = ["DIRECTIONS", "Filter", "parse_when"]

DIRECTIONS = ("in", "out", "submission", "mx")
_COLUMNS = ("kind", "start", "end", "role", "service", "peer_name", "peer_ip", "recipient_domain")
_RELATIVE = re.compile(r"^(\d+)([dhm])$")


def _wall(moment: dt.datetime) -> float:
    return float(calendar.timegm(moment.timetuple()))


def parse_when(text: str, now: dt.datetime, *, end: bool = False) -> float:
    """Wall-clock seconds of a ``--since``/``--until`` value (ValueError when it is none).

    For a named period, ``end`` gives its end (``--until last-week`` is the Monday of this week).
    """
    value = text.strip().lower()
    today = dt.datetime(now.year, now.month, now.day)
    monday = today - dt.timedelta(days=today.weekday())
    first = today.replace(day=1)
    last_month = (first - dt.timedelta(days=1)).replace(day=1)
    named = {
        "today": (today, today + dt.timedelta(days=1)),
        "yesterday": (today - dt.timedelta(days=1), today),
        "this-week": (monday, monday + dt.timedelta(days=7)),
        "last-week": (monday - dt.timedelta(days=7), monday),
        "this-month": (first, (first + dt.timedelta(days=32)).replace(day=1)),
        "last-month": (last_month, first),
    }
    if value in named:
        return _wall(named[value][1 if end else 0])
    if m := _RELATIVE.match(value):
        amount, unit = int(m[1]), m[2]
        delta = {"d": dt.timedelta(days=amount), "h": dt.timedelta(hours=amount), "m": dt.timedelta(minutes=amount)}
        return _wall(now - delta[unit])
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not a date, time or period: {text!r} (2026-10-01, 2026-10-01T12:30, 7d, last-week)") \
            from None
    return _wall(moment.replace(tzinfo=None))


@dataclass(frozen=True)
class Filter:
    """The rows to keep; empty means every row."""

    since: float | None = None
    until: float | None = None
    direction: str | None = None
    services: tuple[str, ...] = ()
    peers: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return any((self.since is not None, self.until is not None, self.direction, self.services, self.peers))

    def projection(self, base: Projection | tuple[str, ...] | None) -> Projection | tuple[str, ...] | None:
        """What a command must read with this filter: ``base`` plus the filter's columns, and
        peers on every row when it matches peers."""
        if not self or base is None:
            return base
        if isinstance(base, tuple):
            base = Projection(base)
        columns = base.columns + tuple(c for c in _COLUMNS if c not in base.columns)
        if self.peers:
            return Projection(columns)
        return Projection(columns, base.peer_verdicts, base.peer_protocols)

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of the (settled) table that pass."""
        if not self or not len(frame):
            return frame
        keep = np.ones(len(frame), dtype=bool)
        inbound = (frame["kind"] == "inbound").to_numpy()
        if self.since is not None or self.until is not None:
            when = event_times(frame)
            if self.since is not None:
                keep &= when >= self.since
            if self.until is not None:
                keep &= when < self.until
        if self.direction == "in":
            keep &= inbound
        elif self.direction == "out":
            keep &= ~inbound
        elif self.direction in ("submission", "mx"):
            keep &= (frame["role"] == self.direction).to_numpy()
        if self.services:
            keep &= frame["service"].isin(self.services).to_numpy()
        if self.peers:
            keep &= self._peer_mask(frame)
        return frame.loc[keep].reset_index(drop=True)

    def _peer_mask(self, frame: pd.DataFrame) -> np.ndarray:
        mask = np.zeros(len(frame), dtype=bool)
        names = frame["peer_name"].astype(object).fillna("").str.lower()
        addresses = frame["peer_ip"].astype(object)
        domains = (frame["recipient_domain"].astype(object).fillna("").str.lower()
                   if "recipient_domain" in frame.columns else None)
        for peer in self.peers:
            text = peer.strip().lower()
            try:
                network = ipaddress.ip_network(text, strict=False)
            except ValueError:
                network = None
            if network is not None:
                mask |= addresses.map(lambda a, n=network: _in(a, n)).to_numpy(dtype=bool)
                continue
            mask |= ((names == text) | names.str.endswith("." + text)).to_numpy()
            if domains is not None:
                mask |= (domains == text).to_numpy()
        return mask


def _in(address: object, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    if not isinstance(address, str):
        return False
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]) in network
    except ValueError:
        return False
