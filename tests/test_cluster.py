"""The Dask engine (`tlslog.engine.cluster`): the same output as the local engine, byte for byte.

On a ``LocalCluster`` of worker processes (started and stopped here), with small chunks so that
sessions cross task boundaries, on a rotated pair and on the mixed TLS log level pair; a worker
killed mid-run (by the PID of the process we started) is Dask's to retry. Skipped without Dask
(``pip install 'tlslog[dask]'``), except where ``TLSLOG_DASK_REQUIRED=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import json
import os
import signal
import sys

import pytest

from .conftest import SAMPLES, import_or_skip, maillogs, tlslog

import_or_skip("distributed", "TLSLOG_DASK_REQUIRED", "Dask is not installed here (pip install 'tlslog[dask]')")

from tlslog.analysis import Options, analyze
from tlslog.engine import cluster
from tlslog.engine.cluster import Cluster
from tlslog.report import COLUMNS, build_report

MONTH = SAMPLES / "synthetic" / "month.log.gz"
INPUTS = {
    "month": ([str(MONTH)], ["--year", "2024"]),
    "rotated": ([str(p) for p in maillogs(SAMPLES / "realpostfix" / "e2e-mixed-rotated")], ["--internal", "none"]),
    "mixed-loglevels": ([str(p) for p in maillogs(SAMPLES / "realpostfix" / "e2e-mixed")], ["--internal", "none"]),
}


def _json(*args: str, env: dict | None = None) -> str:
    run = tlslog("report", *args, "--format", "json", env=env)
    assert run.code == 0, run.stderr
    return run.stdout


@pytest.mark.slow
def test_one_worker_prints_the_local_report(monkeypatch):
    monkeypatch.setenv("TLSLOG_CHUNK_SIZE", str(1 << 16))
    paths, extra = INPUTS["month"]
    run = tlslog("report", *paths, *extra, "--format", "json", "--engine", "dask", "--jobs", "1")
    assert run.code == 0
    assert run.stdout == _json(*paths, *extra)
    assert run.stderr.startswith("tlslog: Dask dashboard: http://127.0.0.1:")


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("name", sorted(INPUTS))
def test_the_dask_engine_prints_the_local_report(name, workers, monkeypatch):
    monkeypatch.setenv("TLSLOG_CHUNK_SIZE", str(1 << 12 if name != "month" else 1 << 16))
    paths, extra = INPUTS[name]
    local = _json(*paths, *extra)
    assert _json(*paths, *extra, "--engine", "dask", "--jobs", str(workers)) == local
    for command in ("peers", "policy", "tlsrpt"):
        fmt = ["--format", "json"]
        here = tlslog(command, *paths, *extra, *fmt)
        there = tlslog(command, *paths, *extra, *fmt, "--engine", "dask", "--jobs", str(workers))
        assert (there.code, there.stdout) == (here.code, here.stdout), command


@pytest.mark.slow
def test_a_worker_lost_mid_run_is_retried():
    options = Options(year=2024, columns=COLUMNS, ordered=False, chunk_size=1 << 15)
    local = analyze([str(MONTH)], options)
    with Cluster(workers=2) as running:
        pids = running.client.run(os.getpid)
        killed: list[int] = []

        def kill_one(result: object) -> None:
            if not killed:
                victim = sorted(pids.values())[0]
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)

        spread = analyze([str(MONTH)], Options(year=2024, columns=COLUMNS, ordered=False, chunk_size=1 << 15,
                                               runner=running.run), progress=kill_one)
    assert killed and killed[0] in pids.values()
    assert json.dumps(build_report(spread.sessions, spread.stats)) == json.dumps(build_report(local.sessions,
                                                                                              local.stats))


def test_an_unreachable_scheduler_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 0.5)
    run = tlslog("report", str(MONTH), "--scheduler", "tcp://127.0.0.1:9")
    assert run.code == 9
    assert run.stderr.startswith("tlslog: cannot reach the Dask scheduler tcp://127.0.0.1:9: ")
    assert run.stderr.count("\n") == 1


def test_without_dask_the_engine_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    run = tlslog("report", str(MONTH), "--engine", "dask")
    assert (run.code, run.stderr) == (9, "tlslog: the dask engine needs Dask: pip install 'tlslog[dask]'\n")


@pytest.mark.slow
def test_ingest_on_the_dask_engine_stores_what_the_local_one_does(tmp_path, monkeypatch):
    monkeypatch.setenv("TLSLOG_CHUNK_SIZE", str(1 << 16))
    paths, extra = INPUTS["month"]
    local, spread = str(tmp_path / "local.db"), str(tmp_path / "dask.db")
    assert tlslog("ingest", "--db", local, *paths, *extra).code == 0
    assert tlslog("ingest", "--db", spread, *paths, *extra, "--engine", "dask", "--jobs", "2").code == 0
    assert _json("--db", spread) == _json("--db", local) == _json(*paths, *extra)


@pytest.mark.slow
def test_an_unreadable_input_fails_a_dask_run_unless_skipped(tmp_path):
    missing = str(tmp_path / "maillog.missing")
    paths, extra = INPUTS["month"]
    failed = tlslog("report", *paths, missing, *extra, "--format", "json", "--engine", "dask", "--jobs", "1")
    assert (failed.code, failed.stdout) == (1, "")
    assert f"tlslog: {missing}: No such file or directory\n" in failed.stderr
    assert failed.stderr.endswith("tlslog: nothing reported: an input could not be read (--skip-bad-files reports "
                                  "the others)\n")
    skipped = tlslog("report", *paths, missing, *extra, "--format", "json", "--engine", "dask", "--jobs", "1",
                     "--skip-bad-files")
    assert skipped.code == 1
    report, alone = json.loads(skipped.stdout), json.loads(_json(*paths, *extra))
    assert report.pop("inputs") == {"read": 1, "skipped": 1, "damaged": 0, "problems": [
        {"input": missing, "problem": "skipped", "reason": "No such file or directory"}]}
    assert report["notes"].pop() == (f"1 input could not be read ({missing}: No such file or directory): this "
                                     "report covers the 1 input read.")
    assert alone.pop("inputs") == {"read": 1, "skipped": 0, "damaged": 0, "problems": []}
    assert report == alone
    local = tlslog("report", *paths, missing, *extra, "--format", "json")  # the local engine always skips
    assert (local.code, local.stdout) == (1, skipped.stdout)


@pytest.mark.slow
def test_workers_read_urls_and_whole_compressed_files(tmp_path, monkeypatch):
    """file:// URLs (a plain file in ranges read by the workers), and rotated files read whole by
    the workers where each starts with the line the one before ended with (checked afterwards)."""
    import gzip

    from .test_wholefile import _log

    monkeypatch.setenv("TLSLOG_CHUNK_SIZE", str(1 << 12))
    rotated = SAMPLES / "realpostfix" / "e2e-mixed-rotated"
    pattern = rotated.resolve().as_uri() + "/maillog*"
    local = tlslog("sessions", pattern, "--format", "jsonl")
    spread = tlslog("sessions", pattern, "--format", "jsonl", "--engine", "dask", "--jobs", "2")
    assert (spread.code, spread.stdout) == (0, local.stdout)
    assert len(local.stdout.splitlines()) == 67
    # two compressed files for two workers: each is read whole by one of them
    oldest, older = _log([11] * 40, 100), _log([11] * 40, 200)
    ends = lambda data: data.rstrip(b"\n").rsplit(b"\n", 1)[1] + b"\n"  # noqa: E731
    (tmp_path / "maillog.2.gz").write_bytes(gzip.compress(oldest))
    (tmp_path / "maillog.1.gz").write_bytes(gzip.compress(ends(oldest) + older))
    (tmp_path / "maillog").write_bytes(ends(older) + _log([12] * 40, 300))
    files = [str(tmp_path / name) for name in ("maillog.2.gz", "maillog.1.gz", "maillog")]
    here = _json(*files, "--year", "2024")
    assert json.loads(here)["lines"]["duplicate"] == 2
    assert _json(*files, "--year", "2024", "--engine", "dask", "--jobs", "2") == here


@pytest.mark.slow
def test_workers_without_this_tlslog_are_a_clear_error():
    from tlslog.engine.cluster import check_workers, installed_version
    from tlslog.errors import EngineError

    with Cluster(workers=1) as running:  # its workers have this tlslog: the check passed
        worker = next(iter(running.client.scheduler_info()["workers"]))
        with pytest.raises(EngineError) as raised:
            check_workers(running.client, expected="0.0.0")
    assert str(raised.value) == (f"Dask worker {worker} runs tlslog {installed_version()}, this is 0.0.0: install "
                                 "the same version on every worker")


@pytest.mark.slow
def test_a_scheduler_and_workers_started_as_the_readme_says(tmp_path, monkeypatch):
    """``dask scheduler`` and ``dask worker`` processes on loopback (started and stopped here, by
    PID), ``--scheduler tcp://…`` pointed at them: the local report."""
    import shutil
    import subprocess
    import time
    import urllib.request

    dask = shutil.which("dask", path=os.path.dirname(sys.executable)) or shutil.which("dask")
    assert dask is not None, "the dask extra installs the dask command"
    info = tmp_path / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": tmp_path}
    scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address",
                                  "127.0.0.1:0", "--scheduler-file", str(info)], **quiet)
    started = [scheduler]
    try:
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        started.append(subprocess.Popen([dask, "worker", address, "--nworkers", "2", "--nthreads", "1",
                                         "--host", "127.0.0.1", "--no-dashboard"], **quiet))
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        monkeypatch.setenv("TLSLOG_CHUNK_SIZE", str(1 << 12))
        paths, extra = INPUTS["rotated"]
        run = tlslog("report", *paths, *extra, "--format", "json", "--scheduler", address)
        assert (run.code, run.stdout) == (0, _json(*paths, *extra))
        # the dashboard (bokeh comes with the dask extra) answers at the link printed
        link = run.stderr.removeprefix("tlslog: Dask dashboard: ").rstrip("\n")
        assert link.startswith("http://127.0.0.1:") and link.endswith("/status") and "\n" not in link
        assert urllib.request.urlopen(link, timeout=30).status == 200
    finally:
        for process in reversed(started):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
