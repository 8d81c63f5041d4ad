"""Run scan tasks on this machine: in this process, or in a pool of worker processes.

Results come back in task order with only a few chunks in flight, so memory stays bounded
whatever the input size. A cluster runner (Dask) can sit beside this one: it needs nothing
but `tlslog.engine.scan.scan` and picklable tasks and results.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import signal
from collections.abc import Iterator

from .plan import Task
from .scan import ChunkResult, prepare, scan

__all__ = ["default_jobs", "run_local"]


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def default_jobs() -> int:
    """One worker per core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_local(tasks: Iterator[Task], jobs: int) -> Iterator[tuple[Task, ChunkResult]]:
    """(task, result) in task order; in this process when there is one task or one job."""
    first = next(tasks, None)
    if first is None:
        return
    second = next(tasks, None)
    if second is None or jobs <= 1:
        yield first, scan(first)
        if second is not None:
            yield second, scan(second)
            for task in tasks:
                yield task, scan(task)
        return
    prepare()  # compiled once here, shared by the forked workers
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    pool = context.Pool(jobs, initializer=_ignore_sigint)
    try:
        window: collections.deque = collections.deque()
        for task in _chain([first, second], tasks):
            window.append((task, pool.apply_async(scan, (task,))))
            if len(window) >= 2 * jobs:
                done, pending = window.popleft()
                yield done, pending.get()
        while window:
            done, pending = window.popleft()
            yield done, pending.get()
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def _chain(head: list[Task], rest: Iterator[Task]) -> Iterator[Task]:
    yield from head
    yield from rest
