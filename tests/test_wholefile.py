"""Compressed files read whole by a worker (a cluster's `whole_files` plan) give what the local
engine gives, chunk for chunk: also where a file starts with the line the one before ended with,
where the year guess from a file's first line is wrong, and for damaged and empty files.

These run the worker's function in this process (no Dask needed); tests/test_cluster.py runs it
on a cluster."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tlslog import analysis as analysis_module
from tlslog.analysis import Options, analyze
from tlslog.engine.plan import Task
from tlslog.engine.scan import ChunkResult, scan
from tlslog.engine.wholefile import SourceResult, scan_source

from .conftest import SAMPLES, maillogs

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def _session(month: int, day: int, pid: int, tls: bool) -> bytes:
    """One smtpd session of four (or three) lines."""
    stamp = f"{MONTHS[month - 1]} {day:2d} 10:{pid % 60:02d}:00 mx"
    peer = f"client{pid}.example[192.0.2.{pid % 250 + 1}]"
    lines = [f"{stamp} postfix/smtpd[{pid}]: connect from {peer}"]
    if tls:
        lines.append(f"{stamp} postfix/smtpd[{pid}]: Anonymous TLS connection established from {peer}: TLSv1.3 "
                     "with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)")
    lines.append(f"{stamp} postfix/smtpd[{pid}]: disconnect from {peer} ehlo=1{' starttls=1' if tls else ''} "
                 f"quit=1 commands={3 if tls else 2}")
    return ("\n".join(lines) + "\n").encode()


def _log(months: list[int], first_pid: int) -> bytes:
    return b"".join(_session(m, 1 + n % 28, first_pid + n, n % 3 != 0) for n, m in enumerate(months))


def _local_runner(tasks: Iterator[Task], jobs: int) -> Iterator[tuple[Task, ChunkResult | SourceResult]]:
    """A cluster's runner, in this process: whole files through the worker's function."""
    for task in tasks:
        yield task, scan_source(task) if task.whole is not None else scan(task)


def _both(paths: list[Path], chunk_size: int, monkeypatch: pytest.MonkeyPatch, year: int = 2024) -> dict:
    """Analyse ``paths`` locally and as a cluster would; assert they agree; count the rescans."""
    rescans = {"whole": 0, "chunk": 0}
    real_source, real_scan = analysis_module.scan_source, analysis_module.scan

    def counted_source(*args: object) -> SourceResult:
        rescans["whole"] += 1
        return real_source(*args)  # type: ignore[arg-type]

    def counted_scan(task: Task) -> ChunkResult:
        rescans["chunk"] += 1
        return real_scan(task)

    names = [str(p) for p in paths]
    local = analyze(names, Options(jobs=1, year=year, chunk_size=chunk_size))
    monkeypatch.setattr(analysis_module, "scan_source", counted_source)
    monkeypatch.setattr(analysis_module, "scan", counted_scan)
    whole = analyze(names, Options(jobs=1, year=year, chunk_size=chunk_size, runner=_local_runner,
                                   whole_files=1))
    monkeypatch.undo()
    pd.testing.assert_frame_equal(whole.sessions, local.sessions)
    assert list(whole.evidence) == list(local.evidence)
    assert (whole.stats, whole.source_stats, whole.sources) == (local.stats, local.source_stats, local.sources)
    assert [str(e) for e in whole.errors] == [str(e) for e in local.errors]
    return {"rescans": rescans, "analysis": local}


def test_rotated_samples_read_whole_equal_the_local_engine(monkeypatch):
    sample = SAMPLES / "realpostfix" / "e2e-mixed-rotated"
    for chunk_size in (1 << 12, 1 << 20):
        seen = _both(maillogs(sample), chunk_size, monkeypatch, year=2026)
        assert seen["rescans"] == {"whole": 0, "chunk": 0}
        assert len(seen["analysis"].sessions) == 67


def test_a_file_starting_with_the_line_the_one_before_ended_with(tmp_path, monkeypatch):
    first = _log([11] * 40, 100)
    last = first.rstrip(b"\n").rsplit(b"\n", 1)[1] + b"\n"
    (tmp_path / "maillog.2.gz").write_bytes(gzip.compress(first))
    (tmp_path / "maillog.1.gz").write_bytes(gzip.compress(last + _log([11] * 40, 200)))
    (tmp_path / "maillog").write_bytes(last + _log([12] * 10, 300))  # a doubled line after a whole file too
    plain = tmp_path / "maillog"
    ordered = [tmp_path / "maillog.2.gz", tmp_path / "maillog.1.gz", plain]
    seen = _both(ordered, 1 << 11, monkeypatch)
    # maillog.1.gz repeats the last line of maillog.2.gz; maillog does not repeat maillog.1.gz's
    assert seen["analysis"].stats.duplicate == 1
    assert seen["rescans"] == {"whole": 1, "chunk": 0}
    ends_second = gzip.decompress((tmp_path / "maillog.1.gz").read_bytes()).rstrip(b"\n").rsplit(b"\n", 1)[1]
    plain.write_bytes(ends_second + b"\n" + _log([12] * 10, 300))
    seen = _both(ordered, 1 << 11, monkeypatch)
    assert seen["analysis"].stats.duplicate == 2
    assert seen["rescans"] == {"whole": 1, "chunk": 1}


def test_a_year_guessed_wrong_from_a_files_first_line(tmp_path, monkeypatch):
    # the first file runs from November to October; its first line alone says November, so the
    # second file (from November) is guessed a year too early and is scanned again
    months = [11, 12, 1, 3, 5, 7, 9, 10]
    (tmp_path / "a.gz").write_bytes(gzip.compress(_log([m for m in months for _ in range(10)], 100)))
    (tmp_path / "b.gz").write_bytes(gzip.compress(_log([11] * 30, 500)))
    seen = _both([tmp_path / "a.gz", tmp_path / "b.gz"], 1 << 11, monkeypatch, year=2023)
    years = pd.to_datetime(seen["analysis"].sessions["start"], unit="s").dt.year
    assert years.value_counts().sort_index().to_dict() == {2023: 20, 2024: 90}
    assert seen["rescans"] == {"whole": 1, "chunk": 0}


def test_damaged_and_empty_files_read_whole(tmp_path, monkeypatch):
    blob = gzip.compress(_log([5] * 60, 100))
    (tmp_path / "a.gz").write_bytes(blob[: len(blob) * 2 // 3])
    (tmp_path / "b.gz").write_bytes(gzip.compress(b""))
    (tmp_path / "c.gz").write_bytes(gzip.compress(_log([6] * 10, 900)))
    seen = _both([tmp_path / "a.gz", tmp_path / "b.gz", tmp_path / "c.gz"], 1 << 11, monkeypatch)
    assert [type(e).__name__ for e in seen["analysis"].errors] == ["DamagedInput"]
    assert seen["analysis"].sources == [str(tmp_path / "a.gz"), str(tmp_path / "c.gz"), str(tmp_path / "b.gz")]


def test_which_files_a_cluster_reads_whole():
    from tlslog.analysis import read_whole
    from tlslog.sources import Source

    def gz(name: str, size: int) -> Source:
        return Source(name, Path(name), "gzip", True, size=size)

    big, small, other = gz("big.gz", 80), gz("a.gz", 10), gz("b.gz", 10)
    plain = Source("maillog", Path("maillog"), None, True, size=500)
    assert read_whole([big, small, other, plain], 2) == {small, other}  # the plain file: byte ranges anyway
    assert read_whole([big], 2) == set()  # one big .gz: sent in chunks to every worker
    assert read_whole([big], 1) == {big}
    assert read_whole([small, other], 2) == {small, other}
    assert read_whole([gz("c.gz", 30), small], 2) == {small, gz("c.gz", 30)}  # 30 of 40: 1.5 shares
    assert read_whole([gz("c.gz", 31), small], 2) == {small}
    assert read_whole([big, small, other], 0) == set()  # the local engine


def test_a_file_that_vanishes_before_its_worker_reads_it(tmp_path):
    older, newer = _log([11] * 20, 100), _log([11] * 20, 200)
    last = older.rstrip(b"\n").rsplit(b"\n", 1)[1] + b"\n"
    for name, data in (("a.gz", older), ("b.gz", _log([11] * 5, 500)), ("c.gz", last + newer)):
        (tmp_path / name).write_bytes(gzip.compress(data))
    names = [str(tmp_path / n) for n in ("a.gz", "b.gz", "c.gz")]

    def vanishing(tasks: Iterator[Task], jobs: int) -> Iterator[tuple[Task, ChunkResult | SourceResult]]:
        for task in tasks:
            if task.source.endswith("b.gz"):
                (tmp_path / "b.gz").unlink()  # planned (its head read), then gone
            yield task, scan_source(task)

    gone = analyze(names, Options(jobs=1, year=2024, runner=vanishing, whole_files=1))
    assert [str(e) for e in gone.errors] == [f"{names[1]}: No such file or directory"]
    without = analyze([names[0], names[2]], Options(jobs=1, year=2024))
    pd.testing.assert_frame_equal(gone.sessions, without.sessions)
    assert gone.stats == without.stats and without.stats.duplicate == 1  # c.gz still repeats a.gz's last line
