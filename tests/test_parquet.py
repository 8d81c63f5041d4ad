"""`ingest --parquet DIR` and `report --parquet DIR`: the store's days as Parquet, read back into
the same reports; plain Parquet that other readers take as one dataset."""

from __future__ import annotations

import json

import pytest

from .conftest import SAMPLES, import_or_skip, maillogs, tlslog

import_or_skip("pyarrow", "TLSLOG_PARQUET_REQUIRED", "pyarrow is not installed here (pip install 'tlslog[parquet]')")

import pandas as pd

MONTH = SAMPLES / "synthetic" / "month.log.gz"


def _report(*args: str) -> str:
    run = tlslog("report", *args, "--format", "json")
    assert run.code == 0, run.stderr
    return run.stdout


def test_the_parquet_days_give_the_reports_of_the_store_and_of_the_files(tmp_path):
    store, folder = str(tmp_path / "history.db"), tmp_path / "parquet"
    run = tlslog("ingest", "--db", store, "--parquet", str(folder), str(MONTH), "--year", "2024")
    assert run.code == 0
    assert f"tlslog: {folder}: 29 day(s) written, 3,642 sessions\n" in run.stderr
    days = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert (len(days), days[0], days[-1]) == (29, "date=2024-11-28", "date=2024-12-26")
    files = _report(str(MONTH), "--year", "2024")
    assert _report("--parquet", str(folder)) == _report("--db", store) == files
    week = ["--since", "2024-12-02", "--until", "2024-12-09", "--by", "day"]
    assert _report("--parquet", str(folder), *week) == _report("--db", store, *week)
    # options that derive roles and hops apply when the days are read
    assert _report("--parquet", str(folder), "--internal", "none") == _report("--db", store, "--internal", "none")
    # plain Parquet: one dataset for any reader, a row per session
    table = pd.read_parquet(folder)
    assert len(table) == 3642 and set(table["date"].astype(str)) == {d[5:] for d in days}


def test_ingesting_again_or_in_parts_never_doubles_a_row(tmp_path):
    rotated = [str(p) for p in maillogs(SAMPLES / "realpostfix" / "e2e-mixed-rotated")]
    whole_db, parts_db = str(tmp_path / "whole.db"), str(tmp_path / "parts.db")
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert tlslog("ingest", "--db", whole_db, "--parquet", str(whole), *rotated).code == 0
    for path in rotated:  # the older file, then the newer one: a session crosses between them
        assert tlslog("ingest", "--db", parts_db, "--parquet", str(parts), path).code == 0
    assert tlslog("ingest", "--db", parts_db, "--parquet", str(parts), *rotated).code == 0  # again
    extra = ["--internal", "none"]
    expected = _report(*rotated, *extra)
    assert _report("--parquet", str(whole), *extra) == expected
    assert _report("--parquet", str(parts), *extra) == expected
    assert len(pd.read_parquet(parts)) == len(pd.read_parquet(whole))


def test_errors(tmp_path):
    missing = tlslog("report", "--parquet", str(tmp_path / "none"))
    assert missing.code == 1
    assert missing.stderr == (f"tlslog: {tmp_path / 'none'}: no such directory (write one with: tlslog ingest "
                              "--parquet DIR)\n")
    both = tlslog("report", str(MONTH), "--parquet", str(tmp_path))
    assert both.code == 2 and "give log files or --parquet, not both" in both.stderr
    empty = tlslog("report", "--parquet", str(tmp_path), "--format", "json")  # nothing written yet
    assert empty.code == 6 and json.loads(empty.stdout)["inbound"]["total"] == 0


@pytest.fixture(scope="module")
def month_days(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("days") / "parquet"
    store = str(folder.parent / "history.db")
    assert tlslog("ingest", "--db", store, "--parquet", str(folder), str(MONTH), "--year", "2024").code == 0
    return str(folder)


def test_parquet_days_at_a_url_are_written_and_read_as_a_folder(month_days, tmp_path):
    from pathlib import Path

    url = Path(month_days).resolve().as_uri()
    assert _report("--parquet", url, "--by", "week") == _report("--parquet", month_days, "--by", "week")
    # ingest writes to a URL as well (here a file:// one; an object store is written alike)
    written = (tmp_path / "written").as_uri()
    run = tlslog("ingest", "--db", str(tmp_path / "h.db"), "--parquet", written, str(MONTH), "--year", "2024")
    assert run.code == 0 and f"tlslog: {written}: 29 day(s) written, 3,642 sessions\n" in run.stderr
    assert sorted(p.name for p in (tmp_path / "written").iterdir()) == sorted(p.name for p in Path(month_days).iterdir())
    assert not list((tmp_path / "written").rglob(".*.tmp"))
    assert _report("--parquet", written) == _report("--parquet", month_days)
    unknown = tlslog("report", "--parquet", "nosuchfs://bucket/days")
    assert unknown.code == 1 and unknown.stderr.startswith("tlslog: nosuchfs://bucket/days: ")
    assert unknown.stderr.count("\n") == 1


@pytest.mark.slow
def test_the_days_read_on_a_dask_cluster_give_the_same_report(month_days):
    import_or_skip("distributed", "TLSLOG_DASK_REQUIRED", "Dask is not installed here (pip install 'tlslog[dask]')")
    week = ["--since", "2024-12-02", "--until", "2024-12-16", "--by", "day"]
    for extra in ([], week):
        here = _report("--parquet", month_days, *extra)
        run = tlslog("report", "--parquet", month_days, *extra, "--format", "json", "--engine", "dask", "--jobs", "2")
        assert (run.code, run.stdout) == (0, here)


@pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index")  # Dask's own, on pandas 3.1
def test_dask_dataframe_reads_the_days_into_the_weekly_report(month_days):
    """The README's Dask-side example: weekly inbound verdicts from the Parquet days, as the report
    counts them (``--internal none``: every row is mail on the wire)."""
    dd = import_or_skip("dask.dataframe", "TLSLOG_DASK_REQUIRED", "Dask is not installed here")
    days = dd.read_parquet(month_days, columns=["kind", "encryption", "date"])
    inbound = days[days["kind"] == "inbound"]
    week = dd.to_datetime(inbound["date"].astype(str)).dt.strftime("%G-W%V")
    counts = inbound.assign(week=week).groupby(["week", "encryption"]).size().compute()
    report = json.loads(_report("--parquet", month_days, "--by", "week", "--internal", "none"))
    expected = {(p["period"], verdict.replace("_", "-")): p["inbound"][verdict] for p in report["periods"]
                for verdict in ("tls", "plaintext", "tls_failed", "unknown") if p["inbound"][verdict]}
    assert {key: int(n) for key, n in counts.items()} == expected
    assert sum(expected.values()) == report["inbound"]["total"] == 2639


def test_a_folder_that_cannot_be_written_is_one_line(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")
    run = tlslog("ingest", "--db", str(tmp_path / "h.db"), "--parquet", str(blocked / "days"), str(MONTH),
                 "--year", "2024")
    assert run.code == 1
    assert run.stderr.startswith(f"tlslog: {blocked / 'days'}: ") and run.stderr.count("\n") == 1
