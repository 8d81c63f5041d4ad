"""The history store's two directions: an analysis into the store (`ingest`), and the store back
into an `Analysis` (`load`), settled exactly as if every input were read again.

**Session identity.** A row is the same session when its identity is: inbound, (host,
service, pid, second of the first line); outbound, (host, service, pid, queue id, recipient,
second of the status line, status, relay). A digest of it is kept per row. Ingesting a row
whose identity is stored keeps the more complete of the two (a closed session over one cut
off; then the one with more evidence; then the later end), so the same file twice, a
rotated file that overlaps one ingested before, or the same day from two sources count
each session once.

**Inputs.** A file is known by a digest of its first line: ``maillog`` ingested yesterday
and ``maillog.1`` today (the same file, rotated and grown) are one input. Standard input and
the journal are a new input each time. The evidence of a stretch (`tlslog.settle`: input,
host, service, epoch, day) is kept per input, its epochs counted from the input's start,
and merged by maximum, so a stretch read twice or grown shows what its longest reading showed.

**The open edge.** Sessions still open when an ingest ends are stored cut off (so nothing is
lost if the log never continues them) and their fold state is kept; the next ingest resumes
from it, so a session continued there closes with its first line's identity and replaces the
cut-off row. State older than the timeout is dropped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__, schema, table
from .accounting import LineStats
from .analysis import Analysis, Options, analyze
from .engine.scan import ChunkResult
from .errors import InputError
from .fold import INBOUND_STATE, OpenState
from .settle import Evidence, Flags
from .sources import Source, read_blocks, resolve
from .store import ALIVE, IDENTITY, INPUT, RANK, STORED, Store

__all__ = ["Cursor", "IngestResult", "identities", "info", "ingest", "load", "processes", "prune", "rank"]

#: The `source` of a resumed session: the stored input it began in.
_MARKER = "\x00input:"


@dataclass
class IngestResult:
    """What one ingest did: rows added (new), replacing a less complete stored one, or already
    stored; the inputs (name, new to the store?); sessions left open for the next ingest."""

    ingest: int
    added: int = 0
    replaced: int = 0
    duplicate: int = 0
    inputs: list[tuple[str, bool]] = field(default_factory=list)
    open_sessions: int = 0
    lines: int = 0
    seconds: float = 0.0


def input_digest(source: Source) -> str | None:
    """A file's identity: the digest of its first line (None for streams: always a new input)."""
    if source.path is None or not source.regular or source.command is not None:
        return None
    try:
        with contextlib.closing(read_blocks(source)) as blocks:
            head = next(blocks, b"")
    except InputError:
        return None
    return hashlib.blake2b(head.split(b"\n", 1)[0], digest_size=16).hexdigest()


@dataclass(frozen=True)
class Cursor:
    """Where a journal read goes on from: the store keeps journalctl's cursor under ``key``
    and hands it over in the file ``path`` (``--cursor-file``), in the ingest's transaction."""

    key: str
    path: Path


def ingest(store: Store, args: list[str], options: Options | None = None,
           progress: Callable[[ChunkResult], None] | None = None, *,
           sources: list[Source] | None = None, cursor: Cursor | None = None) -> tuple[IngestResult, Analysis]:
    """Read the inputs and add their sessions to the store, in one transaction (with
    ``cursor``, journalctl's cursor is taken from the store and kept in it again)."""
    began = time.perf_counter()
    errors: list[InputError] = []
    if sources is None:
        sources, errors = resolve(args)
    options = options or Options()
    with store.transaction():
        base = int(store.meta("next_line", 0))
        edge = store.db.execute("SELECT state FROM edge").fetchone()
        stored_edge = json.loads(edge[0]) if edge else {}
        resume = _shift(stored_edge, -base - 1) if edge else None
        resumed = {entry[1][0]: entry[2] for entry in stored_edge.get("in", []) if len(entry) > 2}
        options = dataclasses.replace(options, columns=None, ordered=True, resume=resume, keep_open=True)
        if cursor is not None:
            cursor.path.write_text(store.meta(cursor.key, ""))
        analysis = analyze([], options, progress, sources=sources)
        if cursor is not None and cursor.path.exists() and cursor.path.read_text().strip():
            store.set_meta(cursor.key, cursor.path.read_text().strip())
        analysis.errors[:0] = errors
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        ingest_id = store.db.execute("INSERT INTO ingests (started, version, inputs) VALUES (?, ?, ?)",
                                     (now, __version__, json.dumps(analysis.sources))).lastrowid
        assert ingest_id is not None
        result = IngestResult(ingest_id, lines=analysis.stats.read)
        ids = _inputs(store, ingest_id, sources, analysis, result)
        names = dict(store.db.execute("SELECT id, name FROM inputs"))
        rows, boundary = _prepare(analysis.sessions, base, ids, names, analysis.source_epochs, resumed,
                                  stored_edge.get("boundary"))
        _add_rows(store, ingest_id, rows, result)
        _add_evidence(store, analysis.evidence, ids, analysis.source_epochs)
        state = _edge(analysis.open_state or {}, base, ids, analysis.source_epochs, rows, options.timeout)
        state["boundary"] = boundary
        result.open_sessions = len(state["in"])
        store.db.execute("INSERT INTO edge (id, state) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET state = "
                         "excluded.state", (json.dumps(state),))
        store.db.executemany("INSERT OR IGNORE INTO versions (host, version) VALUES (?, ?)",
                             [(host, v) for host, versions in analysis.postfix_versions.items() for v in versions])
        store.set_meta("next_line", base + analysis.stats.read)
        store.db.execute("UPDATE ingests SET finished = ?, rows_new = ?, rows_replaced = ?, rows_duplicate = ?, "
                         "lines = ? WHERE id = ?",
                         (dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), result.added,
                          result.replaced, result.duplicate, result.lines, ingest_id))
    result.seconds = time.perf_counter() - began
    return result, analysis


def _shift(state: OpenState, lines: int) -> OpenState:
    """The open edge with its sessions' line numbers moved."""
    return {"in": [[key, [values[0] + lines, *values[1:]]] for key, values, *_ in state.get("in", [])],
            "out": state.get("out", [])}


def _inputs(store: Store, ingest_id: int, sources: Sequence[Source], analysis: Analysis,
            result: IngestResult) -> dict[str, int]:
    """The store's id of every input read (new ones added), with its line accounting."""
    ids: dict[str, int] = {}
    by_name = {s.name: s for s in sources}
    for name in analysis.sources:
        source = by_name.get(name)
        digest = input_digest(source) if source is not None else None
        stats = analysis.source_stats.get(name, LineStats())
        found = store.db.execute("SELECT id, read FROM inputs WHERE digest = ?", (digest,)).fetchone() \
            if digest is not None else None
        lines = json.dumps(stats.as_dict())
        if found is None:
            ids[name] = store.db.execute(
                "INSERT INTO inputs (name, digest, first_ingest, last_ingest, read, lines) VALUES (?, ?, ?, ?, ?, ?)",
                (name, digest, ingest_id, ingest_id, stats.read, lines)).lastrowid or 0
            result.inputs.append((name, True))
        else:
            ids[name] = found[0]
            if stats.read >= found[1]:  # the same input again, grown (or not): its latest reading counts
                store.db.execute("UPDATE inputs SET name = ?, last_ingest = ?, read = ?, lines = ? WHERE id = ?",
                                 (name, ingest_id, stats.read, lines, found[0]))
            result.inputs.append((name, False))
    return ids


def _input_of(source: object, ids: dict[str, int]) -> int:
    if isinstance(source, str) and source.startswith(_MARKER):
        return int(source[len(_MARKER):])
    return ids.get(source, 0) if isinstance(source, str) else 0


def _epoch_shift(source: object, host: object, epochs: dict[str, dict[str | None, int]]) -> int:
    """What to subtract from an epoch of the whole reading to count it from its input's start."""
    if not isinstance(source, str) or source.startswith(_MARKER):
        return 0
    return epochs.get(source, {}).get(host if isinstance(host, str) else None, 0)


def _prepare(frame: pd.DataFrame, base: int, ids: dict[str, int], names: dict[int, str],
             epochs: dict[str, dict[str | None, int]], resumed: dict[int, int],
             boundary: Boundary | None) -> tuple[pd.DataFrame, Boundary]:
    """The rows as the store keeps them: `STORED` columns (lines counted over the store, epochs
    from each input's start, resumed rows' source named), identity, rank and input.
    ``resumed``: the identity of each session of the open edge (by its first line);
    ``boundary``: where the last ingest ended (`identities`)."""
    rows = pd.DataFrame({name: frame[name] for name in STORED}, copy=False)
    rows["line"] = rows["line"].to_numpy() + base
    sources = rows["source"].astype(object).to_numpy()
    hosts = rows["host"].astype(object).to_numpy()
    pairs = {(s, h) for s, h in zip(sources, hosts)}
    shift = {pair: _epoch_shift(*pair, epochs) for pair in pairs}
    if any(shift.values()):
        rows["epoch"] = (rows["epoch"].to_numpy() - np.array([shift[p] for p in zip(sources, hosts)])).astype(np.int32)
    inputs = np.array([_input_of(s, ids) for s in sources], dtype=np.int32)
    rows[INPUT] = inputs
    if any(isinstance(s, str) and s.startswith(_MARKER) for s in rows["source"].cat.categories):
        rows["source"] = pd.Categorical([names.get(int(i), s) if isinstance(s, str) and s.startswith(_MARKER) else s
                                         for i, s in zip(inputs, sources)])
    rows[IDENTITY], boundary = identities(rows, resumed, boundary)
    rows[RANK] = rank(rows)
    rows[ALIVE] = np.ones(len(rows), dtype=bool)
    return rows, boundary


def _second(value: float) -> str:
    return "" if value is None or math.isnan(value) else str(math.floor(value))


def _digest(text: str) -> int:
    digest = hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def _texts(rows: pd.DataFrame, name: str) -> list[str]:
    """A column as text ("" for missing): per category for a categorical column."""
    column = rows[name]
    if isinstance(column.dtype, pd.CategoricalDtype):
        texts = np.array([str(v) for v in column.cat.categories] + [""], dtype=object)
        return texts[column.cat.codes.to_numpy()].tolist()
    return ["" if v is None or v is pd.NA or v != v else str(v) for v in column.astype(object)]


#: Per host, the last second an ingest had rows in and how many rows of each identity key it
#: had then (`identities`): {host: [second, {key digest: count}]}.
Boundary = dict[str, list]


def identities(rows: pd.DataFrame, resumed: dict[int, int] | None = None,
               boundary: Boundary | None = None) -> tuple[np.ndarray, Boundary]:
    """The 64-bit digest of every row's identity (see the module docstring), and the new boundary.

    Rows with equal keys (sessions of one process in one second) get their ordinal, in line
    order. A read that begins in the last second the store has of its host (the ``boundary``)
    continues that second: its ordinals count on from the stored ones; a read that begins
    earlier, or that holds a session of that second the store has by a key with a queue id
    (which no other session has), reads that second again, and counts from 0. A session
    resumed from the open edge (its first line in ``resumed``) keeps its identity.
    """
    resumed, boundary = resumed or {}, boundary or {}
    lines = rows["line"].to_numpy()
    kinds, hosts, services, pids = (_texts(rows, n) for n in ("kind", "host", "service", "pid"))
    peers, queue_ids, recipients, statuses, relays = (_texts(rows, n) for n in (
        "peer_ip", "queue_ids", "recipient", "status", "relay"))
    seconds = [_second(s if k == "inbound" else e) for k, s, e in zip(kinds, rows["start"].to_numpy(),
                                                                       rows["end"].to_numpy())]
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for i, (host, second) in enumerate(zip(hosts, seconds)):
        if second and not (kinds[i] == "inbound" and int(lines[i]) in resumed):
            first[host] = min(first.get(host, int(second)), int(second))
            last[host] = max(last.get(host, int(second)), int(second))
    keys = [_key(i, kinds, hosts, services, pids, seconds, peers, queue_ids, recipients, statuses, relays)
            for i in range(len(rows))]
    again = {hosts[i] for i, key in enumerate(keys) if _unique(key) and hosts[i] in boundary
             and seconds[i] == str(boundary[hosts[i]][0]) and str(_digest(key)) in boundary[hosts[i]][1]}
    continued = {host: (int(b[0]), b[1]) for host, b in boundary.items()
                 if host in first and first[host] >= b[0] and host not in again}
    seen: dict[str, int] = {}
    places: dict[str, tuple[str, str]] = {}  # key -> (host, second)
    out = np.empty(len(rows), dtype=np.int64)
    for i in np.argsort(lines, kind="stable"):
        if kinds[i] == "inbound" and int(lines[i]) in resumed:
            out[i] = resumed[int(lines[i])]
            continue
        key = keys[i]
        n = seen.get(key)
        if n is None:
            n = 0
            places[key] = (hosts[i], seconds[i])
            stored = continued.get(hosts[i])
            if stored is not None and seconds[i] == str(stored[0]):
                n = stored[1].get(str(_digest(key)), 0)
        else:
            n += 1
        seen[key] = n
        out[i] = _digest(f"{key}\0{n}" if n else key)
    return out, _boundary(boundary, last, seen, places)


def _key(i: int, kinds: list[str], hosts: list[str], services: list[str], pids: list[str], seconds: list[str],
         peers: list[str], queue_ids: list[str], recipients: list[str], statuses: list[str], relays: list[str]) -> str:
    """A row's identity key, before its ordinal."""
    if kinds[i] == "inbound":
        first_queue_id = queue_ids[i].partition(" ")[0]
        return f"in\0{hosts[i]}\0{services[i]}\0{pids[i]}\0{seconds[i]}\0{peers[i]}\0{first_queue_id}"
    return (f"out\0{hosts[i]}\0{services[i]}\0{pids[i]}\0{queue_ids[i]}\0{recipients[i]}\0{seconds[i]}\0"
            f"{statuses[i]}\0{relays[i]}")


def _unique(key: str) -> bool:
    """Whether a key names one session whatever else happened in its second: it has a queue id."""
    return not key.endswith("\0") if key.startswith("in\0") else True


def _boundary(old: Boundary, last: dict[str, int], seen: dict[str, int],
              places: dict[str, tuple[str, str]]) -> Boundary:
    """Each host's last second (this ingest's if later) with the count of each key in it."""
    new: dict[str, list] = {host: [second, {}] for host, second in last.items()
                            if host not in old or second >= old[host][0]}
    for key, n in seen.items():
        host, second = places[key]
        entry = new.get(host)
        if entry is not None and second == str(entry[0]):
            entry[1][str(_digest(key))] = n + 1
    merged = {**old}
    for host, (second, counts) in new.items():
        if host in old and old[host][0] == second:
            counts = {k: max(old[host][1].get(k, 0), counts.get(k, 0)) for k in {*old[host][1], *counts}}
        merged[host] = [second, counts]
    return merged


def processes(rows: pd.DataFrame) -> np.ndarray:
    """A digest of each row's process (host, service, pid): one smtpd serves one session at a time."""
    keys: dict[tuple, int] = {}
    return np.array([keys.get(k) or keys.setdefault(k, _digest("\0".join(k))) for k in zip(
        *(_texts(rows, n) for n in ("host", "service", "pid")))], dtype=np.int64)


#: Rank of a fold verdict as evidence: a verdict beats pending, pending beats none.
_STRENGTH = {"tls": 2, "plaintext": 2, "tls-failed": 2, "pending": 1, "unknown": 0}


def rank(rows: pd.DataFrame) -> np.ndarray:
    """Which of two readings of a session to keep: closed over cut off, then more evidence."""
    strength = rows["fold_encryption"].astype(object).map(_STRENGTH).fillna(0).to_numpy(dtype=np.int8)
    return (rows["complete"].to_numpy().astype(np.int8) * 4 + strength).astype(np.int8)


_OLD = (IDENTITY, RANK, "start", "end", "kind", "complete", "host", "service", "pid", ALIVE)


def _add_rows(store: Store, ingest_id: int, rows: pd.DataFrame, result: IngestResult) -> None:
    """Add the rows the store does not hold yet, replace the stored ones they complete."""
    if not len(rows):
        return
    days = sorted(int(d) for d in np.unique(rows["day"].to_numpy()))
    olds = []
    for partition, _, _ in store.partitions(days=sorted({d + k for d in days for k in (-1, 0)})):
        part = pd.DataFrame(store.read_partition(partition, _OLD), copy=False)
        alive = part.pop(ALIVE).to_numpy()
        olds.append(_candidates(part.loc[alive], partition, np.flatnonzero(alive), old=True))
    new = _candidates(rows, -1, np.arange(len(rows)), old=False)
    both = pd.concat([*olds, new], ignore_index=True)
    both = both.sort_values(["identity", "rank", "end", "old"], ascending=[True, False, False, False], kind="stable")
    winner = ~both["identity"].duplicated().to_numpy()
    won, lost = both[winner], both[~winner]
    beaten = lost[lost["old"].to_numpy() & lost["identity"].isin(won.loc[~won["old"], "identity"]).to_numpy()]
    won_new, won_old = won[~won["old"].to_numpy()], won[won["old"].to_numpy()]
    inside_old, covered_new = _fragments(won_old, won_new)
    beaten = pd.concat([beaten, covered_new])
    for partition, group in beaten.groupby("partition"):
        store.kill(int(partition), group["row"].to_numpy())
    keep = np.sort(won_new.loc[~won_new["row"].isin(inside_old["row"]), "row"].to_numpy())
    result.replaced = len(beaten)
    result.added = len(keep) - result.replaced
    result.duplicate = len(rows) - len(keep)
    kept = rows.iloc[keep]
    for day, part in kept.groupby("day", sort=True, observed=True):
        part = part.reset_index(drop=True)
        for name in part.columns:
            if isinstance(part[name].dtype, pd.CategoricalDtype) and name not in _FIXED_CATEGORIES:
                part[name] = part[name].cat.remove_unused_categories()
        store.add_partition(ingest_id, int(day), part)


_FIXED_CATEGORIES = ("kind", "fold_encryption")


def _candidates(rows: pd.DataFrame, partition: int, index: np.ndarray, *, old: bool) -> pd.DataFrame:
    """What deciding between readings needs of rows (stored ones: ``old``)."""
    end = rows["end"].to_numpy()
    start = rows["start"].to_numpy()
    return pd.DataFrame({
        "identity": rows[IDENTITY].to_numpy(), "rank": rows[RANK].to_numpy(),
        "end": np.where(np.isnan(end), np.nan_to_num(start, nan=-np.inf), end), "start": start,
        "inbound": (rows["kind"] == "inbound").to_numpy(), "complete": rows["complete"].to_numpy(),
        "process": processes(rows), "old": old, "partition": partition, "row": index})


def _fragments(old: pd.DataFrame, new: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cut-off inbound readings that lie within another reading of the same process: the new
    ones inside a stored session (an overlapping input began in its middle) are duplicates;
    the stored ones inside a new session are replaced by it."""
    def inside(parts: pd.DataFrame, wholes: pd.DataFrame) -> pd.DataFrame:
        parts = parts[parts["inbound"].to_numpy() & ~parts["complete"].to_numpy()]
        wholes = wholes[wholes["inbound"].to_numpy()]
        if not len(parts) or not len(wholes):
            return parts.iloc[:0]
        pairs = parts.merge(wholes[["process", "start", "end", "rank"]], on="process", suffixes=("", "_whole"))
        within = ((pairs["start_whole"] <= pairs["start"]) & (pairs["end"] <= pairs["end_whole"])
                  & (pairs["rank_whole"] >= pairs["rank"])).to_numpy()
        return parts[parts["row"].isin(pairs.loc[within, "row"]).to_numpy()] if within.any() else parts.iloc[:0]

    return inside(new, old), inside(old, new)


def _add_evidence(store: Store, evidence: Evidence, ids: dict[str, int],
                  epochs: dict[str, dict[str | None, int]]) -> None:
    rows = []
    for (source, host, service, epoch, day), flags in evidence:
        rows.append((_input_of(source, ids), host or "", service, epoch - _epoch_shift(source, host, epochs), day,
                     flags.tls_lines, flags.starttls, flags.implicit))
    store.db.executemany(
        "INSERT INTO evidence (input, host, service, epoch, day, tls_lines, starttls, implicit) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (input, host, service, epoch, day) DO UPDATE SET "
        "tls_lines = max(tls_lines, excluded.tls_lines), starttls = max(starttls, excluded.starttls), "
        "implicit = max(implicit, excluded.implicit)", rows)


def _edge(state: OpenState, base: int, ids: dict[str, int], epochs: dict[str, dict[str | None, int]],
          rows: pd.DataFrame, timeout: float) -> OpenState:
    """The open edge to keep: lines counted over the store, sources as stored inputs, epochs
    from the input's start; what fell silent for longer than the timeout is dropped."""
    latest: dict[object, float] = {}
    if len(rows):
        ends = rows["end"].fillna(rows["start"])
        latest = ends.groupby(rows["host"].astype(object), dropna=False).max().to_dict()
    slots = INBOUND_STATE
    open_rows = (rows["kind"] == "inbound").to_numpy() & ~rows["complete"].to_numpy() if len(rows) else []
    identity_of = dict(zip(rows["line"].to_numpy()[open_rows].tolist(), rows[IDENTITY].to_numpy()[open_rows].tolist())) \
        if len(rows) else {}
    sessions = []
    for key, values in state.get("in", []):
        record = dict(zip(slots, values))
        last = record["last"]
        if last is not None and last < latest.get(key[0], -math.inf) - timeout:
            continue
        source = record["source"]
        record["epoch"] -= _epoch_shift(source, key[0], epochs)
        record["source"] = f"{_MARKER}{_input_of(source, ids)}"
        record["line"] += base + 1
        sessions.append([key, [record[s] for s in slots], identity_of.get(record["line"])])
    conns = [[key, values] for key, values in state.get("out", [])
             if values[5] is None or values[5] >= latest.get(key[0], -math.inf) - timeout]
    return {"in": sessions, "out": conns}




# -- reading -------------------------------------------------------------------------------------

def load(store: Store, options: Options | None = None, *, since: float | None = None,
         until: float | None = None) -> Analysis:
    """The store as an `Analysis`: rows of the days ``since``..``until`` (wall-clock seconds;
    a filter still applies to rows), derived columns and verdicts made with ``options``."""
    options = options or Options()
    columns = options.columns.columns if isinstance(options.columns, schema.Projection) else options.columns
    wanted = {name for name in schema.names(columns) if name in STORED}
    wanted |= {*table.DERIVE_FROM, "host", "start", "end", "line"}  # (settlement, filters and order too)
    names = [name for name in STORED if name in wanted]
    first = math.floor(since / 86400) if since is not None else None
    last = math.floor((until - 1e-6) / 86400) if until is not None else None
    parts: list[dict[str, Any]] = []  # joined 32 at a time, so the days are never all held apart
    groups: list[dict[str, Any]] = []
    for partition, _, _ in store.partitions(first, last):
        part = store.read_partition(partition, (*names, INPUT, ALIVE))
        alive = part.pop(ALIVE)
        part = pd.DataFrame(part if alive.all() else {name: column[alive] for name, column in part.items()}, copy=False)
        table.fix_categories(part)
        table.derive(part, options.classifier)  # (hops need every address; a projection then drops most)
        if isinstance(options.columns, schema.Projection):
            table.prune_peers(part, options.columns)
        parts.append({name: part[name].array for name in part.columns})
        del part
        if len(parts) == _JOIN:
            groups.append(_join(parts))
    if parts:
        groups.append(_join(parts))
    if groups:
        frame = pd.DataFrame(_join(groups), copy=False)
    else:
        frame = table.empty(names)
        table.derive(frame, options.classifier)
        frame[INPUT] = np.zeros(0, dtype=np.int32)
    inputs = frame.pop(INPUT).to_numpy()
    frame["source"] = pd.Categorical(inputs.astype(str))  # the stretch's input, for settlement
    evidence = _evidence(store, first, last)
    frame = table.settle(frame, evidence, ordered=options.ordered)
    frame["source"] = _input_names(frame["source"].array, dict(store.db.execute("SELECT id, name FROM inputs")))
    stats = LineStats()
    sources = []
    for name, lines in store.db.execute("SELECT name, lines FROM inputs ORDER BY id"):
        stats.add(LineStats(**json.loads(lines)))
        sources.append(name)
    versions: dict[str, set[str]] = {}
    for host, version in store.db.execute("SELECT host, version FROM versions"):
        versions.setdefault(host, set()).add(version)
    return Analysis(frame, evidence, stats, sources,
                    postfix_versions={h: tuple(sorted(v)) for h, v in sorted(versions.items())})


_JOIN = 32


def _join(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Parts (column name -> array) one after another, column by column; the list is emptied
    and each column dropped from the parts once joined, so the table is never held twice."""
    joined = {name: table.join(name, [p.pop(name) for p in parts]) for name in list(parts[0])}
    parts.clear()
    return {name: getattr(column, "array", column) for name, column in joined.items()}


def _input_names(inputs: pd.Categorical, names: dict[int, str]) -> pd.Categorical:
    """The ``source`` of settled rows: from the input ids settlement used to each input's name."""
    by_category = np.array([names.get(int(c)) for c in inputs.categories], dtype=object)
    codes, distinct = pd.factorize(by_category)
    mapped = np.append(codes, -1)[inputs.codes]  # a missing input (code -1) stays missing
    return pd.Categorical.from_codes(mapped, dtype=pd.CategoricalDtype(pd.Index(distinct, dtype=object)),
                                     validate=False)


def _evidence(store: Store, first: int | None, last: int | None) -> Evidence:
    evidence = Evidence()
    sql, args = "SELECT input, host, service, epoch, day, tls_lines, starttls, implicit FROM evidence", []
    if first is not None or last is not None:
        sql += " WHERE day BETWEEN ? AND ?"
        args = [first if first is not None else -(2**31), last if last is not None else 2**31]
    for input_id, host, service, epoch, day, tls_lines, starttls, implicit in store.db.execute(sql, args):
        evidence.by_stretch[(str(input_id), host or None, service, epoch, day)] = Flags(tls_lines, starttls, implicit)
    return evidence


# -- looking after the store -------------------------------------------------------------------

def _day_text(day: int | None) -> str | None:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=int(day))).isoformat() if day is not None and day >= 0 else None


def info(store: Store) -> dict:
    """What the store holds: sessions, the days and ISO weeks they cover, ingests, inputs seen."""
    db = store.db
    sessions, days, first, last = db.execute(
        "SELECT coalesce(sum(alive), 0), count(DISTINCT day), min(day), max(day) FROM partitions WHERE alive > 0 "
        "AND day >= 0").fetchone()
    undated = db.execute("SELECT coalesce(sum(alive), 0) FROM partitions WHERE alive > 0 AND day < 0").fetchone()[0]
    weeks = sorted({"{}-W{:02d}".format(*(dt.date(1970, 1, 1) + dt.timedelta(days=d)).isocalendar()[:2])
                    for (d,) in db.execute("SELECT DISTINCT day FROM partitions WHERE alive > 0 AND day >= 0")})
    ingests = db.execute("SELECT count(*), max(finished) FROM ingests WHERE finished IS NOT NULL").fetchone()
    edge = db.execute("SELECT state FROM edge").fetchone()
    open_sessions = len(json.loads(edge[0]).get("in", [])) if edge else 0
    inputs = [{"name": name, "lines": read, "first_ingest": first_ingest, "last_ingest": last_ingest,
               "kind": "file" if digest else "stream"}
              for name, read, first_ingest, last_ingest, digest in db.execute(
                  "SELECT name, read, first_ingest, last_ingest, digest FROM inputs ORDER BY id")]
    return {
        "path": str(store.path),
        "schema": db.execute("PRAGMA user_version").fetchone()[0],
        "bytes": store.path.stat().st_size,
        "sessions": int(sessions) + int(undated),
        "undated_sessions": int(undated),
        "first_day": _day_text(first),
        "last_day": _day_text(last),
        "days": days,
        "weeks": weeks,
        "ingests": ingests[0],
        "last_ingest": ingests[1],
        "open_sessions": open_sessions,
        "inputs": inputs,
    }


def prune(store: Store, before: float) -> dict:
    """Forget the sessions and evidence of the days before ``before`` (wall-clock seconds)."""
    day = math.floor(before / 86400)
    with store.transaction() as db:
        sessions = db.execute("SELECT coalesce(sum(alive), 0) FROM partitions WHERE day >= 0 AND day < ?",
                              (day,)).fetchone()[0]
        partitions = db.execute("SELECT count(*) FROM partitions WHERE day >= 0 AND day < ?", (day,)).fetchone()[0]
        db.execute("DELETE FROM partitions WHERE day >= 0 AND day < ?", (day,))
        evidence = db.execute("DELETE FROM evidence WHERE day >= 0 AND day < ?", (day,)).rowcount
    return {"before": _day_text(day), "sessions": int(sessions), "partitions": partitions, "evidence": evidence}
