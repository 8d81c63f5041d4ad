"""The history store: one SQLite file that keeps the session table after the logs rotate away.

What is kept is what the fold gives (`tlslog.fold.ROW`, before settlement), the evidence table
of `tlslog.settle`, the inputs seen and their line accounting, the Postfix versions, and the
open edge (sessions still open when an ingest ended). Roles, hops and final verdicts are
derived again when a report reads the store, with that report's options, exactly as from
files (`tlslog.history`).

Rows are stored the way pandas holds them: per *partition* (one ingest's rows of one calendar
day) one compressed block per column: category codes with their values, numbers as arrays.
A report reads only the columns and days it needs, in a fraction of a second per million
rows; row-per-record tables would take ten times longer to write and to read back. The
file is self-describing: ``PRAGMA application_id`` says it is a tlslog store,
``PRAGMA user_version`` its schema version (`MIGRATIONS` upgrades older ones in place).

Every write is one transaction (``BEGIN IMMEDIATE``: two ingests run one after the other,
never interleaved), in WAL mode so reports read while an ingest writes. An error (a full
disk, a read-only file) rolls the transaction back: what was stored before stays.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import schema
from .errors import StoreError
from .fold import ROW

__all__ = ["APPLICATION_ID", "MIGRATIONS", "SCHEMA_VERSION", "STORED", "Store", "default_path"]

#: ``PRAGMA application_id`` of a tlslog store: "tlsl" in ASCII.
APPLICATION_ID = 0x746C736C
#: The columns a partition keeps: the fold's and the peer digest, in table order (roles, hops
#: and final verdicts depend on a report's options: they are derived on reading).
STORED: tuple[str, ...] = tuple(name for name in schema.names() if name in ROW or name == "peer_key")
#: Columns of a partition that are not session-table columns: who the row is, how complete,
#: whether a later ingest replaced it, and the input (evidence of its stretch) it came from.
IDENTITY, RANK, ALIVE, INPUT = "_identity", "_rank", "_alive", "_input"

#: Schema version -> the SQL that upgrades the version before it to it. Version 1 is the first.
MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value NOT NULL);
    CREATE TABLE ingests (
        id INTEGER PRIMARY KEY, started TEXT NOT NULL, finished TEXT, version TEXT NOT NULL,
        inputs TEXT NOT NULL, rows_new INTEGER, rows_replaced INTEGER, rows_duplicate INTEGER,
        lines INTEGER);
    CREATE TABLE inputs (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL, digest TEXT UNIQUE, first_ingest INTEGER NOT NULL,
        last_ingest INTEGER NOT NULL, read INTEGER NOT NULL, lines TEXT NOT NULL);
    CREATE TABLE partitions (
        id INTEGER PRIMARY KEY, ingest INTEGER NOT NULL REFERENCES ingests(id), day INTEGER NOT NULL,
        rows INTEGER NOT NULL, alive INTEGER NOT NULL, first REAL, last REAL);
    CREATE INDEX partitions_day ON partitions(day);
    CREATE TABLE blocks (
        partition INTEGER NOT NULL REFERENCES partitions(id) ON DELETE CASCADE, name TEXT NOT NULL,
        data BLOB NOT NULL, extra BLOB, PRIMARY KEY (partition, name)) WITHOUT ROWID;
    CREATE TABLE evidence (
        input INTEGER NOT NULL, host TEXT NOT NULL, service TEXT NOT NULL, epoch INTEGER NOT NULL,
        day INTEGER NOT NULL, tls_lines INTEGER NOT NULL, starttls INTEGER NOT NULL, implicit INTEGER NOT NULL,
        PRIMARY KEY (input, host, service, epoch, day)) WITHOUT ROWID;
    CREATE TABLE edge (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL);
    CREATE TABLE versions (host TEXT NOT NULL, version TEXT NOT NULL, PRIMARY KEY (host, version));
    """,
}
SCHEMA_VERSION = max(MIGRATIONS)

_BUSY_TIMEOUT_MS = 600_000  # another ingest holds the write lock: wait for it (up to 10 minutes)


def default_path() -> Path:
    """``$XDG_DATA_HOME/tlslog/history.db`` (``~/.local/share/tlslog/history.db``)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "tlslog" / "history.db"


def _message(exc: sqlite3.Error) -> str:
    text = str(exc)
    if "disk is full" in text or "disk I/O" in text:
        return f"{text}: the ingest was rolled back, nothing stored before it is lost"
    if "readonly" in text:
        return "the store is read-only (attempt to write a readonly database)"
    return text


class Store:
    """An open store. ``write``: created (mode 0600) and migrated when needed; otherwise it
    must exist and is opened read-only."""

    def __init__(self, path: str | os.PathLike[str], *, write: bool = False) -> None:
        self.path = Path(path)
        self.write = write
        if write:
            self._create()
        elif not self.path.exists():
            raise StoreError(self.path, "no such store (create it with: tlslog ingest --db PATH FILES)")
        try:
            self.db = sqlite3.connect(self._uri(), uri=True, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000)
            self._check()
        except sqlite3.DatabaseError as exc:
            raise StoreError(self.path, _not_a_store(exc)) from None
        self.db.execute("PRAGMA foreign_keys = ON")

    def _uri(self) -> str:
        mode = "rwc" if self.write else "ro"
        return f"{self.path.absolute().as_uri()}?mode={mode}"

    def _create(self) -> None:
        """The file, readable by its owner only (it holds user names and addresses)."""
        if self.path.exists():
            mode = self.path.stat().st_mode
            if not stat.S_ISREG(mode):
                raise StoreError(self.path, "not a regular file")
            if not mode & stat.S_IWUSR:  # honoured even as root, who could write it anyway
                raise StoreError(self.path, "the store is read-only (its mode has no write permission)")
            return
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass  # another ingest created it just now
        except OSError as exc:
            raise StoreError(self.path, f"cannot create the store: {exc.strerror or exc}") from None

    def _check(self) -> None:
        """Refuse a database of another program or of a newer tlslog; migrate an older one."""
        application = self.db.execute("PRAGMA application_id").fetchone()[0]
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        empty = application == 0 and version == 0 and not self.db.execute(
            "SELECT count(*) FROM sqlite_schema").fetchone()[0]
        if not empty and application != APPLICATION_ID:
            raise StoreError(self.path, f"not a tlslog store (a SQLite database of another program, application_id "
                                        f"{application:#x}); choose another file with --db")
        if version > SCHEMA_VERSION:
            raise StoreError(self.path, f"made by a newer tlslog (schema {version}, this one knows up to "
                                        f"{SCHEMA_VERSION}); upgrade tlslog")
        if version < SCHEMA_VERSION:
            if not self.write:
                raise StoreError(self.path, f"schema {version} is older than {SCHEMA_VERSION}: run tlslog ingest "
                                            "(or tlslog db info) once to upgrade it")
            self._migrate()
        if self.write:
            self.db.execute("PRAGMA journal_mode = WAL")

    def _migrate(self) -> None:
        with self.transaction():
            version = self.db.execute("PRAGMA user_version").fetchone()[0]  # again, under the lock
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {target}")
            self.db.execute(f"PRAGMA application_id = {APPLICATION_ID}")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (``BEGIN IMMEDIATE``); rolled back on any error."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(self.path, _message(exc)) from None
        try:
            yield self.db
            self.db.execute("COMMIT")
        except BaseException as exc:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(self.path, _message(exc)) from None
            raise

    # -- meta --------------------------------------------------------------------------------

    def meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: object) -> None:
        self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = "
                        "excluded.value", (key, value))

    # -- partitions --------------------------------------------------------------------------

    def add_partition(self, ingest: int, day: int, frame: pd.DataFrame) -> None:
        """Keep one day's rows of an ingest: every column of ``frame`` as one block."""
        start = frame["start"].to_numpy()
        first = float(np.nanmin(start)) if len(start) and not np.isnan(start).all() else None
        last = float(np.nanmax(start)) if first is not None else None
        cursor = self.db.execute("INSERT INTO partitions (ingest, day, rows, alive, first, last) VALUES (?, ?, ?, ?, "
                                 "?, ?)", (ingest, day, len(frame), len(frame), first, last))
        partition = cursor.lastrowid
        self.db.executemany("INSERT INTO blocks (partition, name, data, extra) VALUES (?, ?, ?, ?)",
                            ((partition, name, *encode(frame[name])) for name in frame.columns))

    def partitions(self, first_day: int | None = None, last_day: int | None = None,
                   days: Sequence[int] | None = None) -> list[tuple[int, int, int]]:
        """(id, day, rows) of the partitions with alive rows on those days, in ingest order."""
        sql, args = "SELECT id, day, rows FROM partitions WHERE alive > 0", list[int]()
        if first_day is not None:
            sql, args = sql + " AND day >= ?", [*args, first_day]
        if last_day is not None:
            sql, args = sql + " AND day <= ?", [*args, last_day]
        if days is not None:
            sql += f" AND day IN ({','.join(str(int(d)) for d in days)})"
        return self.db.execute(sql + " ORDER BY id", args).fetchall()

    def read_partition(self, partition: int, names: Sequence[str]) -> dict[str, Any]:
        """Those columns of one partition as arrays (all of its rows, dead ones too)."""
        marks = ",".join("?" * len(names))
        found = {name: (data, extra) for name, data, extra in self.db.execute(
            f"SELECT name, data, extra FROM blocks WHERE partition = ? AND name IN ({marks})", (partition, *names))}
        missing = set(names) - set(found)
        if missing:
            raise StoreError(self.path, f"partition {partition} lacks {', '.join(sorted(missing))} (damaged store?)")
        return {name: decode(name, *found[name]) for name in names}

    def kill(self, partition: int, rows: np.ndarray) -> None:
        """Mark rows of a partition as replaced by a later ingest."""
        data, extra = self.db.execute("SELECT data, extra FROM blocks WHERE partition = ? AND name = ?",
                                      (partition, ALIVE)).fetchone()
        alive = decode(ALIVE, data, extra).copy()
        alive[rows] = False
        self.db.execute("UPDATE blocks SET data = ? WHERE partition = ? AND name = ?",
                        (encode(pd.Series(alive))[0], partition, ALIVE))
        self.db.execute("UPDATE partitions SET alive = ? WHERE id = ?", (int(alive.sum()), partition))


def _not_a_store(exc: sqlite3.DatabaseError) -> str:
    text = str(exc)
    if "not a database" in text:
        return "not a tlslog store (not a SQLite database); choose another file with --db"
    return _message(exc)


# -- column blocks -------------------------------------------------------------------------------
# A block is (data, extra), zlib-compressed: category codes (int32) with the values as a JSON list;
# text as a JSON list; numbers as the array's bytes, with the missing mask of a nullable integer.

_LEVEL = 1  # fast; the blocks are small and mostly codes


def _pack(raw: bytes) -> bytes:
    return zlib.compress(raw, _LEVEL)


def _json(values: Sequence[object]) -> bytes:
    return _pack(json.dumps(list(values), ensure_ascii=True, separators=(",", ":")).encode("ascii"))


def encode(column: pd.Series) -> tuple[bytes, bytes | None]:
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        array = column.array
        return _pack(array.codes.astype(np.int32).tobytes()), _json(array.categories.tolist())
    if dtype == object:
        return _json([None if v is None or v is pd.NA else v for v in column.tolist()]), None
    if isinstance(dtype, pd.api.extensions.ExtensionDtype):  # a nullable integer
        array = column.array
        return _pack(np.asarray(array._data).tobytes()), _pack(np.asarray(array._mask).astype(np.uint8).tobytes())
    return _pack(column.to_numpy().tobytes()), None


_SPECIAL: dict[str, tuple[str, bool]] = {IDENTITY: ("int64", False), RANK: ("int8", False), ALIVE: ("bool", False),
                                         INPUT: ("int32", False)}


def decode(name: str, data: bytes, extra: bytes | None) -> Any:
    if name in _SPECIAL:
        kind, nullable = _SPECIAL[name]
    else:
        column = schema.column(name)
        kind, nullable = column.kind, column.nullable
    raw = zlib.decompress(data)
    if kind == "category":
        categories = pd.Index(json.loads(zlib.decompress(extra or b"")), dtype=object)
        codes = np.frombuffer(raw, dtype=np.int32)
        return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(categories), validate=False)
    if kind == "text":
        values = json.loads(raw)
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array
    if kind == "float64":
        return np.frombuffer(raw, dtype=np.float64)
    if kind == "bool":
        return np.frombuffer(raw, dtype=bool)
    if nullable:
        mask = np.frombuffer(zlib.decompress(extra or b""), dtype=np.uint8).astype(bool)
        return pd.arrays.IntegerArray(np.frombuffer(raw, dtype=kind).copy(), mask)
    return np.frombuffer(raw, dtype=kind)
