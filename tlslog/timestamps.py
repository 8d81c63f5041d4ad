"""Timestamps of every prefix format, as wall-clock seconds plus an optional UTC offset.

Classic syslog stamps (``Nov 28 22:00:01``) carry no year and no zone. Their year comes from a
`YearClock`: a start year (``--year``, else the current year, or last year if that would put
the first line in the future) that rolls over when the months jump back (Dec -> Jan) within a
stream. Times are kept as *wall-clock* seconds (the local clock reading, counted as if it were
UTC) so that sessions, timeouts and weeks follow the clock the postmaster reads; stamps that
carry a zone keep it as minutes east of UTC for output.
"""

from __future__ import annotations

import calendar
import datetime as dt

__all__ = [
    "MONTHS",
    "YearClock",
    "classic_month",
    "format_seconds",
    "format_wall",
    "parse_iso",
    "start_year",
]

MONTHS = {name: index for index, name in enumerate(calendar.month_abbr) if name}
#: Months may go back a little (syslog reorders across a month boundary); a jump back of more
#: than this many months is a new year.
_ROLLOVER_GAP = 6


def classic_month(stamp: str) -> int | None:
    """Month number of a classic stamp, or None if it is not one."""
    return MONTHS.get(stamp[:3])


def _classic_wall(stamp: str, year: int) -> float:
    month_name, day, clock = stamp.split()
    hours, minutes, seconds = clock.split(":")
    month = MONTHS[month_name]
    day_number = int(day)
    if month == 2 and day_number == 29 and not calendar.isleap(year):
        day_number = 28  # a Feb 29 line placed in a non-leap year: keep it, do not crash
    moment = dt.datetime(year, month, day_number, int(hours), int(minutes))  # ValueError if invalid
    return calendar.timegm(moment.timetuple()) + float(seconds)


class YearClock:
    """Wall-clock seconds for year-less stamps, with Dec -> Jan roll-over.

    State is ``(year, month of the latest stamp)``; `tlslog.pipeline` hands each chunk the
    state its first line would have seen, so chunks give the same answer as one pass.
    """

    __slots__ = ("_days", "first_month", "month", "year")

    def __init__(self, year: int, month: int | None = None) -> None:
        self.year = year
        self.month = month
        #: the month of the first stamp this clock placed (None: none yet); with the state it
        #: started from, that decides every year it gives (see `tlslog.stitch`)
        self.first_month: int | None = None
        #: ``"Nov 28"`` -> that day's midnight, for days of the current (year, month) state
        self._days: dict[str, float] = {}

    def advance(self, month: int) -> int:
        """Move the state to a stamp in ``month``; return the year that stamp belongs to."""
        if self.first_month is None:
            self.first_month = month
        if self.month is None:
            self.month = month
        elif month < self.month - _ROLLOVER_GAP:
            self.year += 1
            self.month = month
            self._days.clear()
        elif month > self.month + _ROLLOVER_GAP:
            return self.year - 1  # a late line from December after January began
        elif month != self.month:
            self.month = month
            self._days.clear()
        return self.year

    def state(self) -> tuple[int, int | None]:
        """(year, month): everything the years of later stamps depend on."""
        return self.year, self.month

    def wall(self, stamp: str) -> float | None:
        """Seconds for ``Mon dd HH:MM:SS[.ffffff]``, or None if the stamp is malformed."""
        midnight = self._days.get(stamp[:6])
        if midnight is not None and stamp[6:7] == " " and stamp[7:9] < "24":
            # the common case: a day already seen (the grammar guarantees the digit positions)
            seconds = stamp[13:]
            return midnight + int(stamp[7:9]) * 3600 + int(stamp[10:12]) * 60 + (
                int(seconds) if len(seconds) == 2 else float(seconds)
            )
        month = MONTHS.get(stamp[:3])
        if month is None:
            return None
        year = self.advance(month)
        try:
            value = _classic_wall(stamp, year)
        except ValueError:
            return None
        if year == self.year and stamp[6:7] == " " and len(stamp) >= 15:
            self._days[stamp[:6]] = _classic_wall(stamp[:6] + " 00:00:00", year)
        return value


def start_year(first_stamp: str | None, year: int | None, now: dt.datetime) -> int:
    """The year of a stream's first classic stamp.

    An explicit ``year`` wins; otherwise the current year, unless the stamp would then lie
    more than a day in the future, which means the log was written last year.
    """
    if year is not None:
        return year
    if first_stamp is None or classic_month(first_stamp) is None:
        return now.year
    try:
        wall = _classic_wall(first_stamp, now.year)
    except ValueError:
        return now.year
    now_wall = calendar.timegm(now.timetuple()[:6] + (0, 0, 0))
    return now.year - 1 if wall > now_wall + 86400 else now.year


def parse_iso(stamp: str) -> tuple[float, int | None] | None:
    """``2026-11-24T12:00:00.123456+01:00`` -> (wall seconds, +60); None if malformed.

    Accepts ``Z``, ``+01:00``, ``+0100`` (older journalctl) and any number of fraction digits.
    """
    text = stamp
    offset: int | None = None
    if text.endswith("Z"):
        text, offset = text[:-1], 0
    elif len(text) > 19 and text[-5] in "+-" and text[-3] != ":" and text[-4:].isdigit():
        offset = _offset_minutes(text[-5], text[-4:-2], text[-2:])
        text = text[:-5]
    elif len(text) > 19 and text[-6] in "+-" and text[-3] == ":":
        offset = _offset_minutes(text[-6], text[-5:-3], text[-2:])
        text = text[:-6]
    fraction = 0.0
    if "." in text[19:]:
        text, digits = text[:19], text[20:]
        if not digits.isdigit():
            return None
        fraction = int(digits) / 10 ** len(digits)
    try:
        clock = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    wall = calendar.timegm(clock.timetuple()) + fraction
    return wall, offset


def _offset_minutes(sign: str, hours: str, minutes: str) -> int:
    value = int(hours) * 60 + int(minutes)
    return -value if sign == "-" else value


def format_seconds(seconds: float, offset: object = None) -> str | None:
    """`format_wall` of a number from a table column: None when it is missing (NaN), as is an
    offset that is missing."""
    if seconds != seconds:
        return None
    return format_wall(float(seconds), None if offset is None or offset != offset else int(offset))  # type: ignore[call-overload]


def format_wall(wall: float | None, offset: int | None) -> str | None:
    """ISO 8601 text of a wall-clock time, with its zone when known."""
    if wall is None:
        return None
    whole = int(wall // 1)
    micro = round((wall - whole) * 1_000_000)
    if micro == 1_000_000:
        whole, micro = whole + 1, 0
    stamp = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=whole, microseconds=micro)
    text = stamp.isoformat()
    if offset is None:
        return text
    sign = "+" if offset >= 0 else "-"
    return f"{text}{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
