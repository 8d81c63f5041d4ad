"""Run scan tasks on a Dask cluster (``pip install 'tlslog[dask]'``): the same tasks and results
as `tlslog.engine.run.run_local`, so the stitch, the settlement and every report are the local
ones, and the output is identical.

`Cluster` connects to a scheduler (``tcp://HOST:8786``) or starts a ``LocalCluster`` on this
machine. Each task becomes one Dask task: a byte range of a plain file or URL runs
`tlslog.engine.scan.scan`, a compressed file or URL (one task per file, planned with
``whole_files``) `tlslog.engine.wholefile.scan_source`; a few per worker are in flight, and
results come back in task order. A worker lost mid-run is Dask's to handle: its tasks are run
again elsewhere (``distributed.scheduler.allowed-failures``). Workers read the files and URLs
themselves, so paths must be the same on every worker (a shared file system) and URLs readable
there; only standard input and the journal travel inside the tasks, in blocks.
"""

from __future__ import annotations

import collections
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from ..errors import EngineError
from .plan import Task
from .scan import ChunkResult, scan
from .wholefile import SourceResult, scan_source

__all__ = ["Cluster", "check_workers"]

T = TypeVar("T")

#: Tasks in flight per worker thread: enough to keep them busy, few enough to bound memory.
WINDOW_PER_WORKER = 2
#: Seconds to wait for a scheduler before giving up.
CONNECT_TIMEOUT = 10.0


def installed_version() -> str | None:
    """The tlslog version installed where this runs (a worker: `check_workers`), None if none."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tlslog")
    except PackageNotFoundError:
        return None


def check_workers(client: Any, expected: str | None = None) -> None:
    """Every worker must have this tlslog (the tasks run its code): else a one-line error,
    rather than each task failing on the worker."""
    expected = expected or installed_version()
    found = client.run(installed_version, on_error="return")
    for worker, version in sorted(found.items()):
        if isinstance(version, BaseException) or version is None:
            raise EngineError(f"Dask worker {worker} has no tlslog: pip install 'tlslog[dask]=={expected}' on "
                              "every worker")
        if version != expected:
            raise EngineError(f"Dask worker {worker} runs tlslog {version}, this is {expected}: install the same "
                              "version on every worker")


class Cluster:
    """A Dask client for the run (``with Cluster(...) as cluster: analyze(..., runner=cluster.run)``)."""

    def __init__(self, scheduler: str | None = None, *, workers: int = 0, timeout: float | None = None) -> None:
        self.scheduler = scheduler
        self.workers = workers
        self.timeout = CONNECT_TIMEOUT if timeout is None else timeout
        self.client: Any = None
        self._local: Any = None

    def __enter__(self) -> Cluster:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise EngineError("the dask engine needs Dask: pip install 'tlslog[dask]'") from None
        try:
            if self.scheduler is None:
                from .run import default_jobs

                self._local = LocalCluster(n_workers=self.workers or default_jobs(), threads_per_worker=1,
                                           processes=True, dashboard_address=":0")
                self.client = Client(self._local)
            else:
                self.client = Client(self.scheduler, timeout=self.timeout)
        except (OSError, TimeoutError) as exc:
            self.close()
            raise EngineError(f"cannot reach the Dask scheduler {self.scheduler}: {exc}") from None
        try:
            check_workers(self.client)
        except EngineError:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self._local is not None:
            self._local.close()
            self._local = None

    @property
    def dashboard(self) -> str | None:
        """The dashboard's address, when the scheduler serves one."""
        return getattr(self.client, "dashboard_link", None) if self.client is not None else None

    def threads(self) -> int:
        """Worker threads of the cluster now (at least 1)."""
        info = self.client.scheduler_info()
        return max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))

    def run(self, tasks: Iterator[Task], jobs: int = 0) -> Iterator[tuple[Task, ChunkResult | SourceResult]]:
        """(task, result) in task order, like `tlslog.engine.run.run_local` (``jobs`` is the
        cluster's business: its workers are what it has)."""
        return self._in_order("scan", ((scan if task.whole is None else scan_source, (task,)) for task in tasks))

    def map(self, function: Callable[..., T], items: Iterable[tuple]) -> Iterator[T]:
        """``function(*item)`` for each item, run on the workers, in order: `tlslog.parquet.read`
        reads the days of a Parquet folder so."""
        return (result for _, result in self._in_order("read", ((function, item) for item in items)))

    def _in_order(self, name: str, calls: Iterable[tuple[Callable[..., Any], tuple]]) -> Iterator[tuple[Any, Any]]:
        """(first argument, result) of each call, run on the workers, in order, with a few in
        flight per worker thread (enough to keep them busy, few enough to bound memory)."""
        window: collections.deque = collections.deque()
        limit = WINDOW_PER_WORKER * self.threads()
        run = uuid.uuid4().hex[:8]  # keys unique to this run (the dashboard shows them)
        for n, (function, args) in enumerate(calls):
            window.append((args[0], self.client.submit(function, *args, pure=False, key=f"tlslog-{name}-{run}-{n}")))
            if len(window) >= limit:
                first, future = window.popleft()
                yield first, future.result()
        while window:
            first, future = window.popleft()
            yield first, future.result()

