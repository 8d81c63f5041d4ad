"""The history store: reports from it equal reports from the files, whatever was ingested twice,
overlapped or cut; it survives concurrent ingests and refuses what it cannot use, losing nothing."""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tlslog.errors import EXIT_OK, EXIT_STORE, EXIT_USAGE
from tlslog.store import APPLICATION_ID, SCHEMA_VERSION, Store

from .conftest import ROOT, SAMPLES, maillogs, tlslog

MONTH = SAMPLES / "synthetic" / "month.log.gz"  # 2024-11-28 .. 2024-12-26, year-less stamps of 2024
YEAR = ("--year", "2024")


def _lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="surrogateescape") as handle:
        return handle.readlines()


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The bundled month split by date: one file per day, in order (a log rotated daily)."""
    folder = tmp_path_factory.mktemp("days")
    files: dict[str, list[str]] = {}
    for line in _lines(MONTH):
        files.setdefault(line[:6].replace(" ", "-"), []).append(line)
    paths = []
    for name, lines in files.items():
        path = folder / f"maillog-{name}"
        path.write_text("".join(lines), encoding="utf-8", errors="surrogateescape")
        paths.append(path)
    return paths


def ingest(db: Path, *files: Path | str, extra: tuple[str, ...] = ()) -> str:
    run = tlslog("ingest", "--db", str(db), *YEAR, *extra, *map(str, files))
    assert run.code == EXIT_OK, run.stderr
    return run.stderr


def report(*args: str) -> dict:
    run = tlslog("report", "--format", "json", "--by", "week", *args)
    assert run.code == EXIT_OK, run.stderr
    return json.loads(run.stdout)


def sessions(*args: str) -> list[dict]:
    """The exported rows, without the line number (the store counts lines over its ingests)."""
    run = tlslog("sessions", "--format", "jsonl", *args)
    assert run.code == EXIT_OK, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    for row in rows:
        del row["line"]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


def test_day_by_day_twice_equals_the_files_read_together(tmp_path, days, monkeypatch):
    db = tmp_path / "history.db"
    for _ in range(2):
        for day in days:
            ingest(db, day)
    together = report(*YEAR, *map(str, days))
    assert report("--db", str(db)) == together
    monkeypatch.setattr("tlslog.history._JOIN", 4)  # the days joined in groups, then the groups
    assert report("--db", str(db)) == together
    assert len(together["periods"]) == 5
    assert together["inbound"]["total"] == 2639
    assert sessions("--db", str(db)) == sessions(*YEAR, *map(str, days))
    info = json.loads(tlslog("db", "info", "--db", str(db), "--format", "json").stdout)
    assert (info["sessions"], info["days"], info["ingests"], len(info["inputs"])) == (3642, 29, 58, 29)
    assert (info["first_day"], info["last_day"], info["weeks"]) == (
        "2024-11-28", "2024-12-26", ["2024-W48", "2024-W49", "2024-W50", "2024-W51", "2024-W52"])


def test_the_second_ingest_of_a_file_adds_nothing(tmp_path):
    db = tmp_path / "history.db"
    first = ingest(db, MONTH)
    again = ingest(db, MONTH)
    assert "3,642 sessions added, 0 completed, 0 already stored" in first
    assert "0 sessions added, 0 completed, 3,642 already stored" in again
    assert report("--db", str(db)) == report(*YEAR, str(MONTH))


def _cut_inside_a_session(lines: list[str]) -> int:
    """A line number where an smtpd session is open (its connect before, its disconnect after)."""
    open_at: dict[str, int] = {}
    for number, line in enumerate(lines):
        if "postfix/smtpd[" not in line:
            continue
        pid = line.split("postfix/smtpd[", 1)[1].split("]", 1)[0]
        if ": connect from " in line:
            open_at[pid] = number
        elif ": disconnect from " in line and pid in open_at and number - open_at[pid] > 4 and number > 10_000:
            return open_at[pid] + 2
    raise AssertionError("no session to cut")


def test_a_session_cut_by_the_end_of_an_ingest_is_completed_by_the_next(tmp_path):
    lines = _lines(MONTH)
    cut = _cut_inside_a_session(lines)
    head, tail = tmp_path / "maillog.1", tmp_path / "maillog"
    head.write_text("".join(lines[:cut]))
    tail.write_text("".join(lines[cut:]))
    db = tmp_path / "history.db"
    assert "; 1 open, to be continued" in ingest(db, head)
    cutoff = json.loads(tlslog("db", "info", "--db", str(db), "--format", "json").stdout)
    assert cutoff["open_sessions"] == 1
    assert "1 completed" in ingest(db, tail)
    assert sessions("--db", str(db)) == sessions(*YEAR, str(head), str(tail))
    whole = tmp_path / "whole.log"
    whole.write_text("".join(lines))
    assert report("--db", str(db))["inbound"] == report(*YEAR, str(whole))["inbound"]


def test_a_rotated_file_that_grew_overlaps_what_was_ingested(tmp_path):
    """Yesterday: maillog (A). Today: maillog.1 is A and what came after, maillog is new (B)."""
    lines = _lines(MONTH)
    cut, rotated = _cut_inside_a_session(lines), 20_000
    db = tmp_path / "history.db"
    (tmp_path / "maillog").write_text("".join(lines[:cut]))
    ingest(db, tmp_path / "maillog")
    (tmp_path / "maillog.1").write_text("".join(lines[:rotated]))
    (tmp_path / "maillog").write_text("".join(lines[rotated:]))
    ingest(db, tmp_path / "maillog.1", tmp_path / "maillog")
    rotated_pair = (str(tmp_path / "maillog.1"), str(tmp_path / "maillog"))
    assert sessions("--db", str(db)) == sessions(*YEAR, *rotated_pair)
    info = json.loads(tlslog("db", "info", "--db", str(db), "--format", "json").stdout)
    assert [(i["name"], i["lines"]) for i in info["inputs"]] == [
        (str(tmp_path / "maillog.1"), 20_000), (str(tmp_path / "maillog"), 10_000)]
    assert report("--db", str(db)) == report(*YEAR, *rotated_pair)


def test_overlapping_pieces_of_a_log_count_each_session_once(tmp_path):
    """Reads that overlap by hundreds of lines (a journal read --since yesterday every day)."""
    lines = _lines(MONTH)
    db = tmp_path / "history.db"
    step, overlap = 3_000, 700
    for number, start in enumerate(range(0, len(lines), step)):
        piece = tmp_path / f"piece-{number:02d}"
        piece.write_text("".join(lines[max(0, start - overlap):start + step]))
        ingest(db, piece)
    whole = tmp_path / "whole.log"
    whole.write_text("".join(lines))
    stored, read = report("--db", str(db)), report(*YEAR, str(whole))
    for direction in ("inbound", "outbound"):
        assert stored[direction]["total"] == read[direction]["total"]
        assert stored[direction]["messages"] == read[direction]["messages"]
    assert [p["inbound"]["total"] for p in stored["periods"]] == [p["inbound"]["total"] for p in read["periods"]]


def test_the_same_day_from_the_journal_and_from_a_file_counts_once(tmp_path):
    from .test_journal import _records

    log = SAMPLES / "realpostfix" / "default" / "maillog"
    records = _records(tmp_path / "records.json")
    db = tmp_path / "history.db"
    ingest(db, records)
    syslog = ingest(db, log, extra=("--year", "2026"))
    rows = len(sessions("--db", str(db)))
    assert rows == len(sessions(str(records)))
    assert f"0 sessions added, 0 completed, {rows:,} already stored" in syslog


def test_reports_from_the_store_take_filters_and_prune_forgets_whole_days(tmp_path):
    db = tmp_path / "history.db"
    ingest(db, MONTH)  # one ingest, one partition per day
    week = ("--since", "2024-12-02", "--until", "2024-12-09")
    assert report("--db", str(db), *week)["mx"] == report(*YEAR, str(MONTH), *week)["mx"]
    peers = tlslog("peers", "--db", str(db), "--format", "json", "--plaintext")
    assert json.loads(peers.stdout) == json.loads(tlslog("peers", *YEAR, str(MONTH), "--format", "json",
                                                         "--plaintext").stdout)
    pruned = tlslog("db", "prune", "--db", str(db), "--before", "2024-12-09")
    assert pruned.code == EXIT_OK
    before = len(sessions(*YEAR, str(MONTH), "--until", "2024-12-09"))
    assert before == 1_329
    assert pruned.stderr == f"tlslog: forgot {before:,} sessions of the days before 2024-12-09\n"
    after = report("--db", str(db))
    since = report(*YEAR, str(MONTH), "--since", "2024-12-09")
    assert after["periods"] == since["periods"]
    assert [p["period"] for p in after["periods"]] == ["2024-W50", "2024-W51", "2024-W52"]


def test_the_store_is_private_versioned_and_in_wal_mode(tmp_path):
    db = tmp_path / "new" / "history.db"
    ingest(db, SAMPLES / "realpostfix" / "default" / "maillog")
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_the_default_store_is_under_the_users_data_directory(tmp_path):
    run = tlslog("ingest", str(SAMPLES / "realpostfix" / "default" / "maillog"),
                 env={"XDG_DATA_HOME": str(tmp_path / "data")})
    assert run.code == EXIT_OK, run.stderr
    assert (tmp_path / "data" / "tlslog" / "history.db").exists()
    assert run.stderr == (f"tlslog: {tmp_path / 'data' / 'tlslog' / 'history.db'}: 2,086 lines of 1 input(s) (1 new): "
                                 "368 sessions added, 0 completed, 0 already stored; 0 open, to be continued\n")


def _snapshot(db: Path) -> dict:
    return json.loads(tlslog("db", "info", "--db", str(db), "--format", "json").stdout)


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.write_text("not a database, just text\n" * 100),
     "not a tlslog store (not a SQLite database); choose another file with --db"),
    (lambda p: sqlite3.connect(p).execute("CREATE TABLE mail (id INTEGER)").connection.commit(),
     "not a tlslog store (a SQLite database of another program, application_id 0x0); choose another file with --db"),
    (lambda p: sqlite3.connect(p).execute(f"PRAGMA application_id = {APPLICATION_ID}").execute(
        "PRAGMA user_version = 99").connection.commit(),
     f"made by a newer tlslog (schema 99, this one knows up to {SCHEMA_VERSION}); upgrade tlslog"),
])
def test_a_file_that_is_not_our_store_is_refused_and_left_alone(tmp_path, make, message):
    db = tmp_path / "other.db"
    make(db)
    before = db.read_bytes()
    for run in (tlslog("ingest", "--db", str(db), str(MONTH)), tlslog("report", "--db", str(db)),
                tlslog("db", "info", "--db", str(db))):
        assert (run.code, run.stderr) == (EXIT_STORE, f"tlslog: {db}: {message}\n")
    assert db.read_bytes() == before


def test_a_missing_store_is_an_error_for_reports(tmp_path):
    run = tlslog("report", "--db", str(tmp_path / "none.db"))
    assert (run.code, run.stderr) == (
        EXIT_STORE, f"tlslog: {tmp_path / 'none.db'}: no such store (create it with: tlslog ingest --db PATH FILES)\n")


def test_a_read_only_store_is_read_but_never_written(tmp_path):
    db = tmp_path / "history.db"
    ingest(db, SAMPLES / "realpostfix" / "default" / "maillog")
    db.chmod(0o400)
    before = db.read_bytes()
    run = tlslog("ingest", "--db", str(db), str(MONTH))
    assert (run.code, run.stderr) == (
        EXIT_STORE, f"tlslog: {db}: the store is read-only (its mode has no write permission)\n")
    assert db.read_bytes() == before
    assert tlslog("report", "--db", str(db), "--format", "json").code == EXIT_OK


def test_a_full_disk_rolls_the_ingest_back(tmp_path, monkeypatch):
    db = tmp_path / "history.db"
    ingest(db, SAMPLES / "realpostfix" / "default" / "maillog")
    before = _snapshot(db)
    connect = sqlite3.connect

    def small_disk(*args, **kwargs):  # SQLite's own limit: writes past it fail as a full disk does
        con = connect(*args, **kwargs)
        pages = con.execute("PRAGMA page_count").fetchone()[0]
        con.execute(f"PRAGMA max_page_count = {pages + 2}")
        return con

    monkeypatch.setattr(sqlite3, "connect", small_disk)
    run = tlslog("ingest", "--db", str(db), *YEAR, str(MONTH))
    monkeypatch.undo()
    assert run.code == EXIT_STORE
    assert run.stderr == (f"tlslog: {db}: database or disk is full: the ingest was rolled back, nothing stored "
                          "before it is lost\n")
    assert _snapshot(db) == before
    assert "3,642 sessions added" in ingest(db, MONTH)  # and the store still takes the ingest afterwards


def test_files_and_db_together_is_a_usage_error(tmp_path):
    run = tlslog("report", "--db", str(tmp_path / "h.db"), str(MONTH))
    assert run.code == EXIT_USAGE
    assert "give log files or --db, not both" in run.stderr


def test_two_ingests_at_once_neither_corrupt_nor_double_count(tmp_path):
    """Real processes: both take the write lock in turn (the second waits for the first)."""
    db = tmp_path / "history.db"
    logs = [str(p) for p in maillogs(SAMPLES / "realpostfix" / "e2e-mixed-rotated")]
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR")}
    commands = [[sys.executable, "-m", "tlslog", "ingest", "--db", str(db), str(MONTH), *YEAR],
                [sys.executable, "-m", "tlslog", "ingest", "--db", str(db), str(MONTH), *YEAR],
                [sys.executable, "-m", "tlslog", "ingest", "--db", str(db), *logs]]
    procs = [subprocess.Popen(c, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for c in commands]
    results = [(p.wait(timeout=120), p.communicate()[1].decode()) for p in procs]
    assert [code for code, _ in results] == [EXIT_OK] * 3, results
    info = _snapshot(db)
    alone = len(sessions(*YEAR, str(MONTH))) + len(sessions(*logs))
    assert info["sessions"] == alone
    assert info["ingests"] == 3
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_an_older_schema_is_migrated_in_place(tmp_path):
    db = tmp_path / "history.db"
    db.touch(mode=0o600)  # an empty file: schema 0
    with Store(db, write=True) as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    with pytest.raises(Exception, match="schema 0 is older"):
        other = tmp_path / "old.db"
        sqlite3.connect(other).execute(f"PRAGMA application_id = {APPLICATION_ID}").connection.commit()
        Store(other)


def _pieces(lines: list[str], folder: Path, seed: int, count: int, overlap: int) -> list[Path]:
    import random

    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(lines)), count - 1))
    paths = []
    for number, (start, end) in enumerate(zip([0, *cuts], [*cuts, len(lines)])):
        begin = max(0, start - overlap)
        while overlap and 0 < begin and lines[begin][:15] == lines[start - 1][:15]:
            begin -= 1  # an overlapping read begins before the last second read (README, History store)
        path = folder / f"piece-{number}"
        path.write_text("".join(lines[begin:end]), encoding="utf-8", errors="surrogateescape")
        paths.append(path)
    return paths


#: In the default run: connection caching, TLS log levels mixed, host names and SASL; the others with -m slow.
_QUICK = ("conncache", "e2e-mixed", "hostnames-sasl")


@pytest.mark.parametrize("seed", [1, pytest.param(2, marks=pytest.mark.slow), pytest.param(3, marks=pytest.mark.slow)])
@pytest.mark.parametrize("sample", [p.name if p.name in _QUICK else pytest.param(p.name, marks=pytest.mark.slow)
                                    for p in sorted((SAMPLES / "realpostfix").iterdir()) if (p / "maillog").exists()])
def test_a_real_log_cut_anywhere_and_ingested_piece_by_piece(tmp_path, sample, seed):
    """Cut at random lines (inside sessions, between a TLS line and its delivery): the store
    holds what reading the pieces together gives, row for row; read with overlaps, the same
    sessions and messages."""
    lines = _lines(SAMPLES / "realpostfix" / sample / "maillog")
    pieces = _pieces(lines, tmp_path, seed, 4, 0)
    db = tmp_path / "history.db"
    for piece in pieces:
        ingest(db, piece)
    assert sessions("--db", str(db)) == sessions(*YEAR, *map(str, pieces))
    overlapping = tmp_path / "overlapping.db"
    for piece in _pieces(lines, tmp_path, seed, 4, 40):
        ingest(overlapping, piece)
    whole = sessions(*YEAR, str(SAMPLES / "realpostfix" / sample / "maillog"))
    stored = sessions("--db", str(overlapping))
    for key in ("kind", "messages", "complete"):
        assert sorted(str(r[key]) for r in stored) == sorted(str(r[key]) for r in whole), key
