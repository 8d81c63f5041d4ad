#!/usr/bin/env python3
"""Benchmark tlslog against pflogsumm on the same maillog, in the same run.

    python bench/bench.py MAILLOG [MAILLOG ...] [--runs 3] [--gz] [--ingest] [--dask] [--before PYTHON] [--json out.json]

For each file it runs, alternating so that machine drift hits every command alike:
``pflogsumm FILE`` (Debian package ``pflogsumm``), ``tlslog report FILE --format json``,
``cat FILE | tlslog report --format json``, ``tlslog report FILE --jobs 1``, the same two with the compiled core switched off
(``TLSLOG_PURE_PYTHON=1``: what an install without a C compiler runs), and with ``--gz``
``tlslog report FILE.gz`` (compressed once into a temporary directory), and with ``--before
PYTHON`` the ``tlslog report FILE`` of another installation (the interpreter of its venv, e.g.
a checkout of the previous release), to measure a change before and after in the same run.
With ``--dask``, also ``tlslog report FILE --engine dask`` on a LocalCluster of 1 and of 2
worker processes (the cluster's start included: what a user waits for). With ``--ingest``, also ``tlslog ingest --db STORE FILE`` into a new store each run, and then
``tlslog report --db STORE`` (which must print the report of the file). It prints, per
command, the median wall time of ``--runs`` runs (min-max), lines per second, the peak resident
memory of the largest single process (``wait4`` rusage, as ``/usr/bin/time`` reports it), and
the ratio to pflogsumm. It also checks that every tlslog variant printed the same JSON.
Standard library only; tlslog is run with the Python interpreter that runs this script.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Command:
    label: str
    argv: list[str]
    stdin_from: Path | None = None  # feed this file through a `cat` pipe
    cwd: Path | None = None  # `python -m tlslog` puts the working directory first on sys.path
    walls: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)  # KiB
    outputs: set[str] = field(default_factory=set)
    same_output: bool = True  # must print what every other tlslog variant prints
    setup: Path | None = None  # a history store to remove before each run (an ingest into a new store)
    env: dict[str, str] = field(default_factory=dict)  # added to the environment


def run_once(cmd: Command) -> None:
    if cmd.setup is not None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{cmd.setup}{suffix}").unlink(missing_ok=True)
    start = time.perf_counter()
    cat = None
    if cmd.stdin_from is not None:
        cat = subprocess.Popen(["cat", str(cmd.stdin_from)], stdout=subprocess.PIPE)
        proc = subprocess.Popen(cmd.argv, stdin=cat.stdout, stdout=subprocess.PIPE, cwd=cmd.cwd,
                                env={**os.environ, **cmd.env})
        cat.stdout.close()  # type: ignore[union-attr]
    else:
        proc = subprocess.Popen(cmd.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, cwd=cmd.cwd,
                                env={**os.environ, **cmd.env})
    out = proc.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if cat is not None:
        cat.wait()
    cmd.walls.append(time.perf_counter() - start)
    cmd.rss.append(usage.ru_maxrss)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd.label} failed with exit code {proc.returncode}")
    if "tlslog" in cmd.label and cmd.same_output:
        cmd.outputs.add(out.decode())


def compiled_core() -> bool:
    """Whether the tlslog this interpreter runs has its compiled core (``tlslog._linescan``)."""
    probe = "import tlslog.engine.prefilter as p; print(p.compiled is not None)"
    env = {k: v for k, v in os.environ.items() if k != "TLSLOG_PURE_PYTHON"}
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env).stdout.strip() == "True"


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 24), b""))


def bench_file(path: Path, runs: int, with_gz: bool, tmp: Path, before: str | None = None,
               with_ingest: bool = False, with_dask: bool = False) -> dict:
    lines = count_lines(path)
    tlslog = [sys.executable, "-m", "tlslog", "report"]
    commands = []
    if shutil.which("pflogsumm"):
        commands.append(Command("pflogsumm FILE", ["pflogsumm", str(path)]))
    else:
        print("pflogsumm not found (apt-get install pflogsumm): no ratios", file=sys.stderr)
    commands += [
        Command("tlslog report FILE", [*tlslog, str(path), "--format", "json"]),
        Command("cat FILE | tlslog report", [*tlslog, "--format", "json"], stdin_from=path),
        Command("tlslog report FILE --jobs 1", [*tlslog, str(path), "--format", "json", "--jobs", "1"]),
    ]
    if compiled_core():
        pure = {"TLSLOG_PURE_PYTHON": "1"}
        commands += [
            Command("pure Python: tlslog report FILE", [*tlslog, str(path), "--format", "json"], env=pure),
            Command("pure Python: --jobs 1", [*tlslog, str(path), "--format", "json", "--jobs", "1"], env=pure),
        ]
    if with_dask:
        for workers in (1, 2):
            commands.append(Command(f"tlslog report FILE --engine dask -j{workers}",
                                    [*tlslog, str(path), "--format", "json", "--engine", "dask", "--jobs",
                                     str(workers)]))
    if before:
        commands.append(Command("before: tlslog report FILE", [before, "-m", "tlslog", "report", str(path),
                                                                "--format", "json"], same_output=False, cwd=tmp))
    if with_gz:
        gz = tmp / (path.name + ".gz")
        with path.open("rb") as src, gzip.open(gz, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 24)
        commands.append(Command("tlslog report FILE.gz", [*tlslog, str(gz), "--format", "json"]))
    if with_ingest:
        store = tmp / "history.db"
        commands.append(Command("tlslog ingest FILE (new store)", [sys.executable, "-m", "tlslog", "ingest", "--db",
                                                                  str(store), str(path)], same_output=False,
                                setup=store))
        commands.append(Command("tlslog report --db STORE", [*tlslog, "--db", str(store), "--format", "json"]))
    for _ in range(runs):
        for cmd in commands:
            run_once(cmd)
    outputs = set().union(*(c.outputs for c in commands if "tlslog" in c.label))
    if len(outputs) != 1:
        raise SystemExit(f"{path}: tlslog variants printed different reports")
    baseline = statistics.median(commands[0].walls) if commands[0].label.startswith("pflogsumm") else None
    earlier = next((statistics.median(c.walls) for c in commands if c.label.startswith("before:")), None)
    report = next(statistics.median(c.walls) for c in commands if c.label == "tlslog report FILE")
    rows = []
    for cmd in commands:
        wall = statistics.median(cmd.walls)
        rows.append({
            "command": cmd.label,
            "wall_s": round(wall, 3),
            "wall_min_s": round(min(cmd.walls), 3),
            "wall_max_s": round(max(cmd.walls), 3),
            "lines_per_s": round(lines / wall),
            "peak_rss_mib": round(max(cmd.rss) / 1024, 1),
            "ratio_to_pflogsumm": round(wall / baseline, 3) if baseline else None,
            "ratio_to_before": round(wall / earlier, 3) if earlier and cmd.label == "tlslog report FILE" else None,
            "ratio_to_report": round(wall / report, 3) if cmd.label.startswith("tlslog ingest") else None,
        })
    return {"file": str(path), "bytes": path.stat().st_size, "lines": lines, "runs": runs, "results": rows}


def print_table(result: dict) -> None:
    print(f"\n{result['file']}: {result['lines']:,} lines, {result['bytes'] / 2**20:,.0f} MiB, "
          f"median of {result['runs']} runs")
    print(f"{'command':34} {'wall s (min-max)':>22} {'lines/s':>11} {'peak RSS MiB':>13} {'vs pflogsumm':>13}"
          f" {'x faster':>9} {'vs before':>10}")
    for row in result["results"]:
        ratio = "" if row["ratio_to_pflogsumm"] is None else f"{row['ratio_to_pflogsumm']:.3f}"
        faster = "" if not row["ratio_to_pflogsumm"] else f"{1 / row['ratio_to_pflogsumm']:.2f}"
        versus = "" if row["ratio_to_before"] is None else f"{row['ratio_to_before']:.3f}"
        wall = f"{row['wall_s']:.2f} ({row['wall_min_s']:.2f}-{row['wall_max_s']:.2f})"
        print(f"{row['command']:34} {wall:>22} {row['lines_per_s']:>11,} {row['peak_rss_mib']:>13.1f} {ratio:>13}"
              f" {faster:>9} {versus:>10}")
        if row["ratio_to_report"] is not None:
            print(f"{'':34} {row['ratio_to_report']:.3f} x tlslog report FILE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="maillog files (plain text)")
    parser.add_argument("--runs", type=int, default=3, help="runs per command (default 3; the median is shown)")
    parser.add_argument("--gz", action="store_true", help="also time a gzip-compressed copy")
    parser.add_argument("--before", metavar="PYTHON",
                        help="also time `PYTHON -m tlslog report FILE` (another installation's interpreter)")
    parser.add_argument("--ingest", action="store_true", help="also time tlslog ingest (and report --db)")
    parser.add_argument("--dask", action="store_true", help="also time --engine dask (LocalCluster, 1 and 2 workers)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    core = "compiled core built" if compiled_core() else "no compiled core (pure Python only)"
    print(f"python {sys.version.split()[0]}, {cpus} CPUs available, {core}")
    results = []
    with tempfile.TemporaryDirectory(prefix="tlslog-bench-") as tmp:
        for path in args.files:
            result = bench_file(path.resolve(), args.runs, args.gz, Path(tmp), args.before, args.ingest, args.dask)
            print_table(result)
            results.append(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
