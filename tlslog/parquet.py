"""The history store's session table as Parquet, one file per day, for tools that read Parquet
(Dask, pandas, DuckDB, Spark) and for ``tlslog report --parquet DIR``.

``tlslog ingest --parquet DIR`` writes, after each ingest, the days it touched as the store now
has them: ``DIR/date=YYYY-MM-DD/sessions.parquet`` (settled rows of that day, replaced whole, so
that ingesting a file twice or completing a session later never doubles a row; rows without a
date go to ``date=unknown``) and ``DIR/_tlslog.json`` (the line accounting and the Postfix versions
of everything the store has read). Roles and hops are derived again when the table is read, with
the reading command's ``--internal`` options, as from the store. Needs pyarrow (the ``parquet``
extra).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd

from . import schema, table
from .accounting import LineStats
from .classify import Classifier
from .errors import InputError
from .sources import is_url

__all__ = ["export_days", "read", "read_day"]

_UNKNOWN = "unknown"
#: The line accounting beside the days (a leading underscore: Parquet readers skip it).
_META = "_tlslog.json"


def _folder(day: int) -> str:
    if day < 0:
        return f"date={_UNKNOWN}"
    return "date=" + (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


def _day(folder: str) -> int | None:
    """The day of a ``date=YYYY-MM-DD`` folder (-1: ``date=unknown``; None: not ours)."""
    if not folder.startswith("date="):
        return None
    text = folder[5:]
    if text == _UNKNOWN:
        return -1
    try:
        return (dt.date.fromisoformat(text) - dt.date(1970, 1, 1)).days
    except ValueError:
        return None


def _pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise InputError("--parquet", "Parquet needs pyarrow: pip install 'tlslog[parquet]'") from None


def _arrow_schema(names: list[str]) -> object:
    import pyarrow as pa

    types = {"category": pa.string(), "text": pa.string(), "float64": pa.float64(), "bool": pa.bool_(),
             "int8": pa.int8(), "int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64()}
    return pa.schema([(name, types[schema.column(name).kind]) for name in names])


def export_days(store: object, days: set[int], location: str) -> int:
    """Write the days (``-1``: rows without a date) as the store has them now; the rows written.
    ``location``: a folder, or a URL pyarrow writes to (an object store, where a written object
    replaces the old one whole; a local file is written aside and renamed over it)."""
    from pyarrow import fs

    from .analysis import Options
    from .history import load

    _pyarrow()
    filesystem, root = _filesystem(location)
    local = isinstance(filesystem, fs.LocalFileSystem)

    def put(path: str, write: Callable[[Any], None]) -> None:
        folder, name = path.rsplit("/", 1)
        target = f"{folder}/.{name}.tmp" if local else path
        with filesystem.open_output_stream(target) as out:
            write(out)
        if local:
            os.replace(target, path)

    try:
        filesystem.create_dir(root, recursive=True)
        written = 0
        analysis = None
        for day in sorted(days):
            if day < 0:
                analysis = load(store, Options())  # type: ignore[arg-type]
                frame = analysis.sessions.loc[(analysis.sessions["day"] == -1).to_numpy()]
            else:
                analysis = load(store, Options(), since=day * 86400.0, until=(day + 1) * 86400.0)  # type: ignore[arg-type]
                frame = analysis.sessions
            filesystem.create_dir(f"{root}/{_folder(day)}", recursive=True)
            # one Arrow schema for every day, categoricals as plain text (Parquet dictionary-encodes
            # it anyway): the days then read as one dataset in any Parquet reader
            plain = {name: object for name in frame.columns if isinstance(frame[name].dtype, pd.CategoricalDtype)}
            rows = frame.reset_index(drop=True).astype(plain)
            put(f"{root}/{_folder(day)}/sessions.parquet",
                lambda out: rows.to_parquet(out, index=False, schema=_arrow_schema(list(rows.columns))))
            written += len(frame)
        if analysis is not None:
            meta = {"lines": analysis.stats.as_dict(), "postfix_versions": analysis.postfix_versions,
                    "inputs": analysis.sources}
            put(f"{root}/{_META}", lambda out: out.write((json.dumps(meta, indent=2) + "\n").encode()))
    except OSError as exc:
        raise InputError(location, str(exc).split("\n")[0]) from None
    return written


def _conform(frame: pd.DataFrame) -> pd.DataFrame:
    """The schema's types again where Parquet lost them: a column of nulls only comes back as
    objects, text as pandas' string type."""
    for name in frame.columns:
        try:
            kind = schema.column(name).kind
        except KeyError:
            continue
        if kind == "category" and not isinstance(frame[name].dtype, pd.CategoricalDtype):
            frame[name] = pd.Categorical(frame[name].astype(object).where(frame[name].notna(), None))
        elif kind == "text" and frame[name].dtype != object:
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


def _filesystem(location: str) -> tuple[Any, str]:
    """A pyarrow file system and the folder's path in it: a local folder, or a URL pyarrow
    reads (``s3://bucket/days``, ``gs://…``, ``hdfs://…``, ``file:///…``)."""
    from pyarrow import fs

    if is_url(location):
        try:
            return fs.FileSystem.from_uri(location)
        except (ValueError, OSError) as exc:  # an unknown scheme, a missing file system package
            raise InputError(location, str(exc).split("\n")[0]) from None
    return fs.LocalFileSystem(), os.path.abspath(os.path.expanduser(location))


def read_day(location: str, name: str) -> pd.DataFrame:
    """One day's rows (``name``: its ``date=…`` folder), as the schema types them; runs where
    the reading happens (a Dask worker with ``--engine dask``), so it takes the folder's name,
    not an open file system."""
    filesystem, root = _filesystem(location)
    return _conform(pd.read_parquet(f"{root}/{name}/sessions.parquet", filesystem=filesystem))


def read(location: str, classifier: Classifier, since: float | None = None, until: float | None = None,
         mapper: Callable[[Callable[..., pd.DataFrame], list[tuple[str, str]]], Iterable[pd.DataFrame]] | None = None,
         ) -> tuple[pd.DataFrame, LineStats, dict[str, tuple[str, ...]], list[str]]:
    """The table of the days ``since``..``until`` (wall-clock seconds; all when None), roles and
    hops derived with ``classifier``; the line accounting, Postfix versions and inputs read (as
    the history store names them) of _tlslog.json. ``location``: a folder or a URL; ``mapper`` (a cluster's `tlslog.engine.cluster.Cluster.map`)
    reads the days, in order, elsewhere than here."""
    _pyarrow()
    from pyarrow import fs

    filesystem, root = _filesystem(location)
    try:
        info = filesystem.get_file_info(root)
        if info.type != fs.FileType.Directory:
            raise InputError(location, "no such directory (write one with: tlslog ingest --parquet DIR)")
        entries = filesystem.get_file_info(fs.FileSelector(root))
        folders = {e.base_name for e in entries if e.type == fs.FileType.Directory}
        present = {n for n in folders if filesystem.get_file_info(f"{root}/{n}/sessions.parquet").type == fs.FileType.File}
    except OSError as exc:
        raise InputError(location, str(exc).split("\n")[0]) from None
    first = int(since // 86400) if since is not None else None
    last = int((until - 1e-6) // 86400) if until is not None else None
    chosen = []
    for name in sorted(present):
        day = _day(name)
        if day is None:
            continue
        if day >= 0 and ((first is not None and day < first) or (last is not None and day > last)):
            continue
        if day < 0 and (first is not None or last is not None):
            continue
        chosen.append((location, name))
    parts = list((mapper or itertools.starmap)(read_day, chosen))
    frame = table.concat(parts) if parts else table.empty(schema.names())
    table.fix_categories(frame)
    if len(frame):
        table.derive(frame, classifier)
    stats, versions, names = LineStats(), {}, [location]
    if filesystem.get_file_info(f"{root}/{_META}").type == fs.FileType.File:
        with filesystem.open_input_stream(f"{root}/{_META}") as handle:
            meta = json.loads(handle.read())
        stats = LineStats(**meta.get("lines", {}))
        versions = {host: tuple(v) for host, v in meta.get("postfix_versions", {}).items()}
        names = list(meta.get("inputs", names))
    return frame, stats, versions, names
