#!/usr/bin/env python3
"""Build a year of a busy MX in a history store and time the reports a postmaster runs on it.

    python bench/year.py [--genlog ../shared/tools/genlog.py] [--lines-per-month 2000000] [--runs 3]

Twelve monthly logs of 2025 are generated (``genlog.py --days 30 --start <month>``, one seed
each, two at a time), each is ingested into one new store (timed, with the rows added), and then
these commands are run ``--runs`` times each, alternating, with the median wall time and peak
memory printed: the whole year, the year by week, a quarter by week, the plaintext peers of the
year, and ``db info``. Standard library only; tlslog is run with this interpreter.
"""

from __future__ import annotations

import argparse
import calendar
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(argv: list[str]) -> tuple[float, int, bytes]:
    """Wall seconds, peak RSS (KiB) and stderr of one run (which must succeed)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    err = proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {err.decode(errors='replace')}")
    return time.perf_counter() - start, usage.ru_maxrss, err


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--genlog", type=Path, default=ROOT.parent / "shared" / "tools" / "genlog.py")
    parser.add_argument("--lines-per-month", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="keep the store here (default: a temporary directory)")
    args = parser.parse_args()
    tlslog = [sys.executable, "-m", "tlslog"]
    with tempfile.TemporaryDirectory(prefix="tlslog-year-") as tmp:
        folder = Path(tmp)
        store = args.keep or folder / "history.db"

        def generate(month: int) -> Path:
            path = folder / f"maillog-2025-{month:02d}"
            start = calendar.timegm((2025, month, 1, 0, 0, 0))
            with path.open("wb") as out:
                subprocess.run([sys.executable, str(args.genlog), "--lines", str(args.lines_per_month), "--seed",
                                str(100 + month), "--days", "30", "--start", str(start)], stdout=out,
                               stderr=subprocess.DEVNULL, check=True)
            return path

        began = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            logs = list(pool.map(generate, range(1, 13)))
        print(f"generated 12 months x {args.lines_per_month:,} lines in {time.perf_counter() - began:.0f} s")
        total = 0.0
        for log in logs:
            wall, rss, err = timed([*tlslog, "ingest", "--db", str(store), "--year", "2025", str(log)])
            total += wall
            print(f"ingest {log.name}: {wall:6.2f} s, {rss / 1024:6.0f} MiB  {err.decode().strip()}")
            log.unlink()
        print(f"ingest of the year: {total:.1f} s; store {store.stat().st_size / 2**20:,.0f} MiB")
        commands = {
            "report --db (the year)": ["report", "--db", str(store), "--format", "json"],
            "report --db --by week": ["report", "--db", str(store), "--by", "week", "--format", "json"],
            "report --db --since 2025-10-01 --by week": ["report", "--db", str(store), "--since", "2025-10-01",
                                                         "--by", "week", "--format", "json"],
            "peers --db --plaintext": ["peers", "--db", str(store), "--plaintext", "--format", "json"],
            "db info": ["db", "info", "--db", str(store)],
        }
        walls: dict[str, list[float]] = {name: [] for name in commands}
        peaks: dict[str, int] = {name: 0 for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                wall, rss, _ = timed([*tlslog, *argv])
                walls[name].append(wall)
                peaks[name] = max(peaks[name], rss)
        print(f"\n{'command':44} {'median s':>9} {'min-max':>13} {'peak MiB':>9}")
        for name in commands:
            w = walls[name]
            print(f"{name:44} {statistics.median(w):9.2f} {min(w):6.2f}-{max(w):<6.2f} {peaks[name] / 1024:9.0f}")


if __name__ == "__main__":
    main()
