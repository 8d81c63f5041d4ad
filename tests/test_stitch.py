"""Chunks scanned on their own stitch back into one sequential pass (tlslog/stitch.py).

The hand-over between chunks is a plain value (`EdgeState`), and the year of classic stamps
is guessed per chunk by the planner; a wrong guess makes the stitcher scan a chunk again, but
an ordinary month boundary between two chunks never does.
"""

from __future__ import annotations

import pickle

import pytest

from tlslog import analysis
from tlslog.analysis import Options, analyze
from tlslog.engine.plan import Planner
from tlslog.engine.scan import scan
from tlslog.render import session_records
from tlslog.sources import resolve
from tlslog.stitch import needs_redo

SESSION = (
    "{day} 10:00:00 mx postfix/smtpd[{pid}]: connect from unknown[192.0.2.1]\n"
    "{day} 10:00:01 mx postfix/smtpd[{pid}]: Anonymous TLS connection established from unknown[192.0.2.1]: "
    "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\n"
    "{day} 10:00:02 mx postfix/smtp[{out}]: Verified TLS connection established to mx.example.net[203.0.113.25]:25: "
    "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\n"
    "{day} 10:00:03 mx postfix/smtpd[{pid}]: disconnect from unknown[192.0.2.1] ehlo=2 starttls=1 quit=1 commands=4\n"
    "{day} 10:00:04 mx postfix/smtp[{out}]: 1A2B3C4D5E: to=<bob@example.net>, relay=mx.example.net[203.0.113.25]:25,"
    " delay=1, delays=0/0/1/0, dsn=2.0.0, status=sent (250 ok)\n"
)


@pytest.mark.parametrize(("first_month", "guessed", "true", "redo"), [
    (12, (2026, 12), (2026, 11), False),  # Nov 30 -> Dec 1 between chunks: an ordinary boundary
    (11, (2026, 11), (2026, 12), False),  # a late November line after December began
    (1, (2027, 1), (2026, 12), False),  # the new year, guessed right
    (12, (2026, 12), (2026, 12), False),
    (None, (2020, 3), (2026, 12), False),  # no classic stamp in the chunk: nothing to get wrong
    (5, (2026, 5), (2026, 12), True),  # the true state says May follows December: a new year
    (1, (2026, 1), (2026, 12), True),  # the guess missed the roll-over
])
def test_needs_redo(first_month, guessed, true, redo):
    assert needs_redo(first_month, guessed, true) is redo


def _month_boundary_log(tmp_path):
    days = ["Nov 29", "Nov 30", "Dec  1", "Dec  2"]
    text = "".join(SESSION.format(day=day, pid=100 + i % 7, out=200 + i % 5) for day in days for i in range(40))
    path = tmp_path / "maillog"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_ordinary_month_boundary_does_not_redo_chunks(tmp_path, monkeypatch):
    path = _month_boundary_log(tmp_path)
    redone = []
    monkeypatch.setattr(analysis, "scan", lambda task: redone.append(task.index) or scan(task))
    one_pass = list(session_records(analyze([str(path)], Options(jobs=1, year=2026)).sessions))
    for size in (700, 2048, 5000):
        chunked = list(session_records(analyze([str(path)], Options(jobs=1, year=2026, chunk_size=size)).sessions))
        assert chunked == one_pass
    assert redone == []
    assert len(one_pass) == 320 and {r["start"][:10] for r in one_pass} == {
        "2026-11-29", "2026-11-30", "2026-12-01", "2026-12-02"}


def test_a_wrong_year_guess_is_redone(tmp_path, monkeypatch):
    """The planner sees only each chunk's first stamp: a chunk that runs from July over the new
    year into January hides the roll-over from it, so the next chunk (March) is guessed a year
    early. The stitcher knows the true state and scans that chunk again."""
    first = "".join(SESSION.format(day=day, pid=i, out=i + 50) for i, day in enumerate(["Jul  1", "Sep  1", "Nov  1",
                                                                                      "Jan  2"]))
    second = SESSION.format(day="Mar  1", pid=9, out=59)
    path = tmp_path / "maillog"
    path.write_text(first + second, encoding="utf-8")
    redone = []
    monkeypatch.setattr(analysis, "scan", lambda task: redone.append(task.index) or scan(task))
    one_pass = list(session_records(analyze([str(path)], Options(jobs=1, year=2026)).sessions))
    assert redone == []
    chunked = list(session_records(analyze([str(path)], Options(jobs=1, year=2026, chunk_size=len(first) - 1))
                                   .sessions))
    assert chunked == one_pass
    assert [r["start"][:10] for r in one_pass] == [
        "2026-07-01", "2026-07-01", "2026-09-01", "2026-09-01", "2026-11-01", "2026-11-01",
        "2027-01-02", "2027-01-02", "2027-03-01", "2027-03-01"]
    assert redone == [1]


#: tasks of the log, and the edge of its 4th chunk: keys with head events, keys it settled, open
#: sessions and connections at its end (sessions of 5 lines cut every 2048 bytes)
EDGE = (50, 2, 3, 0, 3)


def test_edge_state_is_a_plain_value(tmp_path):
    """What a worker returns pickles without bound methods or open handles, so any executor
    (a process pool, a cluster) can carry it."""
    path = _month_boundary_log(tmp_path)
    tasks = list(Planner(chunk_size=2048, year=2026).tasks(resolve([str(path)])[0]))
    result = scan(tasks[3])
    edge = result.edge
    # the chunk starts inside sessions (events before their key's first reset) and ends in others
    assert (len(tasks), len(edge.heads), len(edge.settled_in), len(edge.inbound), len(edge.outbound)) == EDGE
    for value in (edge, result.evidence, result.stats):
        again = pickle.loads(pickle.dumps(value))
        assert type(again) is type(value)
    assert pickle.loads(pickle.dumps(result.stats)) == result.stats
    assert not any(callable(v) for v in vars(edge).values())
    assert all(type(event).__name__ == "Event" for events in edge.heads.values() for event in events)
