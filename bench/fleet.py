#!/usr/bin/env python3
"""A simulated fleet on the Dask engine: scaling and overhead against the local engine.

    python bench/fleet.py [--hosts 20] [--lines 100000] [--runs 1] [--gz] [--genlog ../shared/tools/genlog.py]

Generates ``--hosts`` logs of different hosts and seeds (``genlog.py --hostname mxN --seed N``)
into a temporary directory, then times, alternating, ``tlslog report FILES`` with the local
engine (``--jobs 1`` and the default) and with ``--engine dask`` on a LocalCluster of 1 and 2
worker processes (the cluster's start included), checks that every variant printed the same
report, and prints wall times, the ratio to the local engine and the speed-up from 1 to 2
workers. ``--gz`` compresses every log first (rotated logs as a fleet keeps them: the local
engine decompresses them in this process, a cluster's workers each read whole files). Standard
library only; tlslog runs with this script's interpreter.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--lines", type=int, default=100_000, help="lines per host")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--gz", action="store_true", help="compress each log (gzip) first")
    parser.add_argument("--genlog", type=Path, default=ROOT.parent / "shared" / "tools" / "genlog.py")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tlslog-fleet-") as tmp:
        files = []
        for n in range(1, args.hosts + 1):
            path = Path(tmp) / f"mx{n}.log"
            with path.open("wb") as out:
                subprocess.run([sys.executable, str(args.genlog), "--lines", str(args.lines), "--seed", str(n),
                                "--hostname", f"mx{n}"], stdout=out, stderr=subprocess.DEVNULL, check=True)
            if args.gz:
                subprocess.run(["gzip", "-6", str(path)], check=True)
                path = path.with_name(path.name + ".gz")
            files.append(str(path))
        base = [sys.executable, "-m", "tlslog", "report", *files, "--format", "json", "--year", "2024"]
        variants = {
            "local --jobs 1": base + ["--jobs", "1"],
            "local (one worker per core)": base,
            "dask LocalCluster, 1 worker": base + ["--engine", "dask", "--jobs", "1"],
            "dask LocalCluster, 2 workers": base + ["--engine", "dask", "--jobs", "2"],
        }
        walls: dict[str, list[float]] = {name: [] for name in variants}
        outputs: set[bytes] = set()
        for _ in range(args.runs):
            for name, argv in variants.items():
                start = time.perf_counter()
                done = subprocess.run(argv, capture_output=True, check=True, cwd=tmp)
                walls[name].append(time.perf_counter() - start)
                outputs.add(done.stdout)
        if len(outputs) != 1:
            raise SystemExit("the engines printed different reports")
    total = args.hosts * args.lines
    local = statistics.median(walls["local (one worker per core)"])
    print(f"{args.hosts} hosts x {args.lines:,} lines = {total:,} lines{' (gzip)' if args.gz else ''}, median of {args.runs} run(s); "
          "every variant printed the same report")
    print(f"{'variant':32} {'wall s':>8} {'lines/s':>11} {'vs local':>9}")
    for name, values in walls.items():
        wall = statistics.median(values)
        print(f"{name:32} {wall:8.2f} {total / wall:11,.0f} {wall / local:9.2f}")
    one, two = (statistics.median(walls[f"dask LocalCluster, {n} worker{'s' if n > 1 else ''}"]) for n in (1, 2))
    print(f"dask speed-up from 1 to 2 workers: {one / two:.2f}x")


if __name__ == "__main__":
    main()
