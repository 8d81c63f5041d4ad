"""Line prefixes detected per line, timestamps, and year inference."""

from __future__ import annotations

import datetime as dt

import pytest

from tlslog.lines import LineSplitter, Record
from tlslog.timestamps import YearClock, format_wall, parse_iso, start_year

MSG = "connect from unknown[203.0.113.7]"


def wall(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc).timestamp()


PREFIXES = [
    # (line, expected record)
    (f"Jun  4 11:52:07 mx1 postfix/smtpd[14150]: {MSG}",
     Record(wall("2026-06-04T11:52:07"), None, "mx1", "postfix/smtpd", "14150", MSG)),
    (f"Jun 04 11:52:07 mx1 postfix/smtpd[14150]: {MSG}",
     Record(wall("2026-06-04T11:52:07"), None, "mx1", "postfix/smtpd", "14150", MSG)),
    (f"Jun 04 11:52:07.123456 mx1 postfix/smtpd[14150]: {MSG}",
     Record(wall("2026-06-04T11:52:07.123456"), None, "mx1", "postfix/smtpd", "14150", MSG)),
    (f"2026-11-24T12:00:00.123456+01:00 mx1 postfix/smtpd[14150]: {MSG}",
     Record(wall("2026-11-24T12:00:00.123456"), 60, "mx1", "postfix/smtpd", "14150", MSG)),
    (f"2026-11-24T12:00:00Z mx1 postfix/smtpd[14150]: {MSG}",
     Record(wall("2026-11-24T12:00:00"), 0, "mx1", "postfix/smtpd", "14150", MSG)),
    (f"2026-06-04T11:52:07+0200 mx1 postfix/smtpd[14150]: {MSG}",
     Record(wall("2026-06-04T11:52:07"), 120, "mx1", "postfix/smtpd", "14150", MSG)),
    (f"2026-06-04T11:52:07-0530 mx1 postfix/smtpd[14150]: {MSG}",
     Record(wall("2026-06-04T11:52:07"), -330, "mx1", "postfix/smtpd", "14150", MSG)),
    (f"<22>1 2026-11-24T12:00:00.123+01:00 mx1.example.com postfix/smtpd 14150 - - {MSG}",
     Record(wall("2026-11-24T12:00:00.123"), 60, "mx1.example.com", "postfix/smtpd", "14150", MSG)),
    (f"<22>1 2026-11-24T12:00:00+01:00 mx1 postfix 14150 - [origin ip=\"192.0.2.1\"] {MSG}",
     Record(wall("2026-11-24T12:00:00"), 60, "mx1", "postfix", "14150", MSG)),
    (f"2026-06-04T09:52:07.123456789Z Jun 04 11:52:07 mail postfix/smtpd[97]: {MSG}",
     Record(wall("2026-06-04T09:52:07.123456789"[:26]), 0, "mail", "postfix/smtpd", "97", MSG)),
    (f"postfix/smtpd[process-id]: {MSG}", Record(None, None, None, "postfix/smtpd", "process-id", MSG)),
    (f"Jun 04 11:52:07 mx1 postfix/smtpd: {MSG}",
     Record(wall("2026-06-04T11:52:07"), None, "mx1", "postfix/smtpd", None, MSG)),
    ('{"__REALTIME_TIMESTAMP":"1780566727123456","_HOSTNAME":"mx1","SYSLOG_IDENTIFIER":"postfix/smtpd",'
     f'"SYSLOG_PID":"14150","_PID":"14150","MESSAGE":"{MSG}"}}',
     Record(1780566727.123456, 0, "mx1", "postfix/smtpd", "14150", MSG)),
    ('{"MESSAGE":[99,111,110,110,101,99,116,255],"SYSLOG_IDENTIFIER":"postfix/smtpd","_PID":"1"}',
     Record(None, None, None, "postfix/smtpd", "1", "connect\ufffd")),
    ('{"log":"Jun 04 11:52:07 mail postfix/smtpd[97]: ' + MSG + '\\n","stream":"stdout"}',
     Record(wall("2026-06-04T11:52:07"), None, "mail", "postfix/smtpd", "97", MSG)),
]


@pytest.mark.parametrize(("line", "expected"), PREFIXES, ids=[p[0][:30] for p in PREFIXES])
def test_prefix_formats(line, expected):
    record = LineSplitter(YearClock(2026)).split(line)
    assert record is not None
    assert record._replace(wall=None) == expected._replace(wall=None)
    assert record.wall == pytest.approx(expected.wall) if expected.wall else record.wall is None


@pytest.mark.parametrize("line", [
    "", "garbage", "{not json", "[]", '{"MESSAGE": 5}', "Jun 32 11:52:07 mx1 postfix/smtpd[1]:",
    "x" * 70000, "\x00\x00\x00", "Jun  4 11:52:07 mx1", "<22>1 nonsense",
])
def test_unrecognised_lines(line):
    assert LineSplitter(YearClock(2026)).split(line) is None


def test_bad_day_gives_no_time_not_a_crash():
    record = LineSplitter(YearClock(2026)).split("Jun 32 11:52:07 mx1 postfix/smtpd[1]: x")
    assert record is not None and record.wall is None


def test_year_rolls_over_from_december_to_january():
    clock = YearClock(2025)
    stamps = ["Dec 31 23:59:58", "Dec 31 23:59:59", "Jan  1 00:00:00", "Dec 31 23:59:59", "Jan  1 00:00:01"]
    got = [format_wall(clock.wall(s), None) for s in stamps]
    assert got == ["2025-12-31T23:59:58", "2025-12-31T23:59:59", "2026-01-01T00:00:00",
                   "2025-12-31T23:59:59", "2026-01-01T00:00:01"]


def test_small_month_reorder_is_not_a_new_year():
    clock = YearClock(2026)
    got = [format_wall(clock.wall(s), None) for s in ["Nov 30 23:59:59", "Dec  1 00:00:00", "Nov 30 23:59:59"]]
    assert got == ["2026-11-30T23:59:59", "2026-12-01T00:00:00", "2026-11-30T23:59:59"]


@pytest.mark.parametrize(("stamp", "year", "now", "expected"), [
    ("Nov 25 03:43:52", None, dt.datetime(2026, 11, 25, 12, 0), 2026),
    ("Dec 30 03:43:52", None, dt.datetime(2027, 1, 2, 12, 0), 2026),  # would be in the future
    ("Nov 26 03:43:52", None, dt.datetime(2026, 11, 25, 12, 0), 2026),  # within a day: clock skew
    ("Dec 30 03:43:52", 2020, dt.datetime(2027, 1, 2, 12, 0), 2020),  # --year wins
    (None, None, dt.datetime(2026, 11, 25), 2026),
])
def test_start_year(stamp, year, now, expected):
    assert start_year(stamp, year, now) == expected


def test_feb_29_in_a_common_year_does_not_crash():
    assert format_wall(YearClock(2026).wall("Feb 29 10:00:00"), None) == "2026-02-28T10:00:00"


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-24T12:00:00.5+01:00", (wall("2026-11-24T12:00:00.5"), 60)),
    ("2026-11-24 12:00:00", (wall("2026-11-24T12:00:00"), None)),
    ("2026-13-24T12:00:00Z", None),
    ("2026-11-24T12:00:00.xZ", None),
])
def test_parse_iso(text, expected):
    assert parse_iso(text) == expected


def test_format_wall_keeps_the_zone():
    assert format_wall(wall("2026-11-24T12:00:00.25"), 60) == "2026-11-24T12:00:00.250000+01:00"
    assert format_wall(wall("2026-11-24T12:00:00"), -330) == "2026-11-24T12:00:00-05:30"
    assert format_wall(None, 0) is None
