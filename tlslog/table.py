"""The session table in pandas: typed columns from `tlslog.schema`, built, joined, settled.

`partition` turns the fold's rows into a compact DataFrame (categoricals for repeated text,
nullable integers) with the columns a consumer asked for; workers return these. An
`Accumulator` joins partitions in order as they arrive (one dictionary of values per
categorical column, never widened to objects), and `settle`
applies `tlslog.settle`'s decisions to the ``pending`` rows, giving the final ``encryption``
and ``evidence`` columns. Nothing here decides a verdict.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any
from functools import lru_cache
from operator import itemgetter

import numpy as np
import pandas as pd

from . import schema, strength
from .classify import Classifier
from .fold import ROW
from .settle import PENDING, Evidence, decisions

__all__ = ["DERIVE_FROM", "Accumulator", "derive", "fix_categories", "join", "prune_peers", "empty", "partition",
           "per_value", "settle"]

_INDEX = {name: i for i, name in enumerate(ROW)}
_NULLABLE_INT = {"int8": "Int8", "int16": "Int16", "int32": "Int32", "int64": "Int64"}


def _object_array(values: Sequence[object]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _categorical(values: Sequence[object], dtype: pd.CategoricalDtype | None = None) -> pd.Categorical:
    """A categorical with object categories (pandas would otherwise convert every repeated
    string to its string dtype first, several times slower). None becomes missing."""
    if dtype is not None:
        codes = dtype.categories.get_indexer(_object_array(values))
        return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)
    codes, found = pd.factorize(_object_array(values), use_na_sentinel=True)
    return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(pd.Index(found, dtype=object)),
                                     validate=False)


def _fixed(values: Sequence[str]) -> pd.CategoricalDtype:
    return pd.CategoricalDtype(pd.Index(list(values), dtype=object))


DEFAULT_CLASSIFIER = Classifier()

#: Categoricals with a fixed set of values, so that every partition agrees on their order.
_FIXED: dict[str, pd.CategoricalDtype] = {
    "kind": _fixed(("inbound", "outbound")),
    "role": _fixed(("mx", "submission", "outbound")),
    "hop": _fixed(("external", "internal")),
    "encryption": _fixed(schema.ENCRYPTIONS),
    "fold_encryption": _fixed(schema.FOLD_VERDICTS),
}


def fix_categories(frame: pd.DataFrame) -> None:
    """Give the columns with a fixed set of values their declared category order (a table
    read back from elsewhere, e.g. the history store, may list them in another order)."""
    for name, dtype in _FIXED.items():
        if name in frame.columns and not frame[name].dtype == dtype:
            frame[name] = frame[name].astype(object).astype(dtype)


def _nullable_int(values: Sequence[object], kind: str) -> pd.api.extensions.ExtensionArray:
    floats = np.array(values, dtype=np.float64)  # None -> NaN, in C
    missing = np.isnan(floats)
    return pd.arrays.IntegerArray(np.where(missing, 0, floats).astype(kind), missing)


def _column(name: str, values: Sequence[object]) -> object:
    column = schema.column(name)
    kind = column.kind
    if kind == "category":
        return _categorical(values, _FIXED.get(name))
    if kind == "text":
        return pd.Series(_object_array(values), dtype=object)
    if kind == "float64":
        return np.array(values, dtype=np.float64)
    if kind == "bool":
        return np.array(values, dtype=bool)
    if column.nullable:
        return _nullable_int(values, kind)
    return np.array(values, dtype=kind)


#: Columns a partition derives from the fold's (see `tlslog.classify`).
DERIVED = ("role", "hop", "peer_key")


def _wanted(columns: tuple[str, ...] | None) -> tuple[str, ...]:
    return tuple(name for name in schema.names(columns) if name in _INDEX or name in DERIVED)


Wanted = tuple[str, ...] | schema.Projection | None


#: The columns `derive` and `prune_peers` read.
DERIVE_FROM = ("kind", "service", "peer_name", "peer_ip", "relay")


def partition(rows: list[tuple], wanted: Wanted = None, classifier: Classifier = DEFAULT_CLASSIFIER) -> pd.DataFrame:
    """Rows of the fold (`tlslog.fold.ROW` tuples) as a typed DataFrame of the columns asked
    for (None: all) plus what settlement needs; ``line`` stays as the fold counted it."""
    projection = wanted if isinstance(wanted, schema.Projection) else None
    names = _wanted(projection.columns if projection else wanted)  # type: ignore[arg-type]
    if not rows:
        return empty(names)
    read = set(names)
    if any(name in names for name in DERIVED):
        read.update(DERIVE_FROM)
    if projection is not None and projection.peer_verdicts is not None:
        read.update(("fold_encryption", "protocol") + (("cipher", "cipher_bits") if projection.peer_weak else ()))
    frame = pd.DataFrame({name: _column(name, list(map(itemgetter(i), rows))) for name, i in _INDEX.items()
                          if name in read}, copy=False)
    if any(name in names for name in DERIVED):
        derive(frame, classifier, [name for name in DERIVED if name in names])
    if projection is not None:
        prune_peers(frame, projection)
    order = [name for name in names if name in _INDEX] + [name for name in DERIVED if name in names]
    return frame if list(frame.columns) == order else pd.DataFrame({name: frame[name] for name in order}, copy=False)


def derive(frame: pd.DataFrame, classifier: Classifier = DEFAULT_CLASSIFIER, names: Sequence[str] = DERIVED) -> None:
    """Add the `DERIVED` columns ``names`` (``peer_key`` only where it is missing) from the
    columns they come from: each rule applied once per category of each column (per distinct
    pair for the peer digest), then combined on codes. For the fold's rows and the history
    store's alike."""
    kinds = frame["kind"].to_numpy() == "outbound" if len(frame) else np.zeros(0, dtype=bool)
    services = frame["service"].array
    order = list(_FIXED["role"].categories)
    roles = np.array([[order.index(classifier.role(kind, v)) for v in services.categories] + [0]
                      for kind in ("inbound", "outbound")], dtype=np.int8)  # (service is never missing)
    frame["role"] = pd.Categorical.from_codes(roles[kinds.astype(np.int8), services.codes], dtype=_FIXED["role"],
                                              validate=False)
    if classifier.hops:
        inside = (per_value(frame["service"], classifier.internal_service)
                  | per_value(frame["peer_ip"], classifier.internal_peer)
                  | (kinds & per_value(frame["relay"], classifier.internal_relay)))
    else:
        inside = np.zeros(len(frame), dtype=bool)
    frame["hop"] = pd.Categorical.from_codes(inside.astype(np.int8), dtype=_FIXED["hop"], validate=False)
    if "peer_key" in names and "peer_key" not in frame.columns:
        peers, addresses = frame["peer_name"].array, frame["peer_ip"].array
        pairs = (peers.codes.astype(np.int64) + 1) * (len(addresses.categories) + 1) + addresses.codes + 1
        _, first, inverse = np.unique(pairs, return_index=True, return_inverse=True)
        keys = [peer_key(n if isinstance(n, str) else None, a if isinstance(a, str) else None)
                for n, a in zip(frame["peer_name"].iloc[first].astype(object), frame["peer_ip"].iloc[first].astype(object))]
        frame["peer_key"] = np.array(keys, dtype=np.int64)[inverse.reshape(-1)]


def per_value(column: pd.Series, rule: Callable[[Any], bool]) -> np.ndarray:
    """``rule`` of each row's value as booleans, applied once per distinct value (per category of
    a categorical; missing values get ``rule(None)``)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        array = column.array
        values = np.array([bool(rule(v)) for v in array.categories], dtype=bool)
        return np.append(values, bool(rule(None)))[array.codes]  # code -1 (missing) picks the appended value
    values = column.astype(object)
    codes, uniques = pd.factorize(values.to_numpy(), use_na_sentinel=True)
    return np.append(np.array([bool(rule(v)) for v in uniques], dtype=bool), bool(rule(None)))[codes]


def prune_peers(frame: pd.DataFrame, projection: schema.Projection) -> None:
    """Drop the peer names and addresses a `Projection` does not read (as `partition` does for
    the fold's rows), so that a table read back (the history store's) is as small."""
    if projection.peer_verdicts is None or "peer_name" not in frame.columns or not len(frame):
        return
    keep = (frame["fold_encryption"].isin(list(projection.peer_verdicts))
            | frame["protocol"].isin(list(projection.peer_protocols))).to_numpy().copy()
    if projection.peer_weak:
        tls = np.flatnonzero((frame["fold_encryption"] == "tls").to_numpy() & ~keep)
        if len(tls):
            protocol, cipher = frame["protocol"].array, frame["cipher"].array
            bits = frame["cipher_bits"].to_numpy(dtype=float, na_value=np.nan)[tls]
            bits_code = np.clip(np.nan_to_num(bits, nan=-1), -1, 1 << 20).astype(np.int64) + 1
            combos = ((protocol.codes[tls].astype(np.int64) + 1) * (len(cipher.categories) + 1)
                      + cipher.codes[tls] + 1) * ((1 << 20) + 2) + bits_code  # one number per combination
            _, first, inverse = np.unique(combos, return_index=True, return_inverse=True)
            weak = strength.Weakness()
            rows = tls[first]
            flags = np.array([bool(weak(_none(p), _none(c), _none(b))) for p, c, b in zip(
                frame["protocol"].iloc[rows].astype(object), frame["cipher"].iloc[rows].astype(object),
                frame["cipher_bits"].iloc[rows].astype(object))], dtype=bool)
            keep[tls[flags[inverse.reshape(-1)]]] = True
    for name in ("peer_name", "peer_ip"):
        array = frame[name].array
        codes = np.where(keep, array.codes, -1)
        frame[name] = pd.Categorical.from_codes(codes, dtype=array.dtype, validate=False).remove_unused_categories()


def peer_key(name: str | None, address: str | None) -> int:
    """A stable 64-bit digest of a peer (the same in every worker process, unlike `hash`)."""
    digest = hashlib.blake2b(f"{name or ''}\0{address or ''}".encode("utf-8", "surrogateescape"), digest_size=8)
    return int.from_bytes(digest.digest(), "little", signed=True)


def empty(names: Sequence[str]) -> pd.DataFrame:
    """A table without rows, with the dtypes of those columns (a copy of a cached one)."""
    return _empty(tuple(names)).copy(deep=False)


@lru_cache(maxsize=16)
def _empty(names: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({name: _column(name, []) for name in names})


def _union(columns: list[pd.Categorical]) -> pd.Categorical:
    """Categoricals one after another: the categories in order of first appearance, each
    part's codes mapped onto them (vectorised; `union_categoricals` is slower on many parts)."""
    first = columns[0]
    categories = first.categories
    if all(c.categories is categories or c.categories.equals(categories) for c in columns[1:]):
        codes = np.concatenate([c.codes for c in columns])
        return pd.Categorical.from_codes(codes, dtype=first.dtype, validate=False)
    union = pd.Index(pd.unique(np.concatenate([c.categories.to_numpy(dtype=object) for c in columns])), dtype=object)
    parts = []
    for column in columns:
        mapping = np.append(union.get_indexer(column.categories), -1).astype(np.int32)
        parts.append(mapping[column.codes])  # code -1 (missing) picks the appended -1
    return pd.Categorical.from_codes(np.concatenate(parts), dtype=pd.CategoricalDtype(union), validate=False)


def concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Partitions one after another, each column keeping its dtype (categories unioned).

    The list is consumed: each column of the parts is dropped as soon as it is joined, so the
    peak memory is the result plus one column, not twice the table.
    """
    parts[:] = [p for p in parts if len(p)] or parts[:1]
    if not parts:
        return empty(_wanted(None))
    if len(parts) == 1:
        return parts.pop().reset_index(drop=True)
    data: dict[str, object] = {}
    for name in list(parts[0].columns):
        data[name] = join(name, [p.pop(name).array for p in parts])
    parts.clear()
    return pd.DataFrame(data, copy=False)


_TEXT = frozenset(c.name for c in schema.SESSION if c.kind == "text")


def join(name: str, columns: list[Any]) -> Any:
    """One column's parts (arrays of one dtype) one after another; categories unioned."""
    first = columns[0]
    if isinstance(first, pd.Categorical):
        return _union(columns)
    if name in _TEXT:
        return pd.Series(np.concatenate([np.asarray(c, dtype=object) for c in columns]), dtype=object)
    if isinstance(first, pd.api.extensions.ExtensionArray) and not isinstance(first, pd.arrays.NumpyExtensionArray):
        return type(first)._concat_same_type(columns)
    return np.concatenate([np.asarray(c) for c in columns])


class Accumulator:
    """Partitions joined as they arrive, in order.

    Every `MERGE` partitions of one size are joined into one (a merge in levels, so each row is
    copied only a few times whatever the length of the input): categories are unioned there,
    so a text seen in every chunk (a peer address, a host) is soon held once.
    """

    MERGE = 16

    def __init__(self, wanted: Wanted = None) -> None:
        self.columns = wanted.columns if isinstance(wanted, schema.Projection) else wanted  # of a table without rows
        self.parts: list[pd.DataFrame] = []
        self.levels: list[int] = []  # of each part: how many merges it went through

    def add(self, part: pd.DataFrame) -> None:
        if not len(part):
            return
        self.parts.append(part)
        self.levels.append(0)
        merge = self.MERGE
        while len(self.levels) >= merge and len(set(self.levels[-merge:])) == 1:
            level = self.levels[-1]
            merged = concat(self.parts[-merge:])
            del self.parts[-merge:], self.levels[-merge:]
            self.parts.append(merged)
            self.levels.append(level + 1)

    def frame(self) -> pd.DataFrame:
        """The table of every partition added (the accumulator is emptied)."""
        if not self.parts:
            return empty(_wanted(self.columns))
        self.levels.clear()
        return concat(self.parts)


def _none(value: object) -> object:
    return None if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)) else value


_SETTLE_KEYS = ("source", "host", "service", "epoch", "day", "fold_evidence")


def settle(frame: pd.DataFrame, evidence: Evidence, *, ordered: bool = True) -> pd.DataFrame:
    """Add the final ``encryption`` and ``evidence`` columns and sort rows by ``line`` (unless not
    ``ordered``: a report does not need it). ``frame`` is consumed: its columns move into the result.

    Rows that are not pending keep their fold verdict; the pending ones take the decision of
    their (stretch, service, fold evidence), made once per distinct key (on codes, not text).
    """
    fold_codes = frame["fold_encryption"].cat.codes.to_numpy()
    enc_codes = fold_codes.astype(np.int8, copy=True)  # FOLD_VERDICTS extends ENCRYPTIONS
    fold_evidence = frame["fold_evidence"].array
    reasons = list(fold_evidence.categories)
    ev_codes = fold_evidence.codes.astype(np.int32, copy=True)
    pending = fold_codes == schema.FOLD_VERDICTS.index(PENDING)
    if pending.any():
        columns = [frame[name] for name in _SETTLE_KEYS]
        parts = []
        for column in columns:
            values = (column.cat.codes if isinstance(column.dtype, pd.CategoricalDtype) else column).to_numpy()[pending]
            values = values.astype(np.int64)
            parts.append(values - int(values.min()))
        radices = [int(p.max()) + 1 for p in parts]
        if np.prod(np.array(radices, dtype=object)) < 2**62:  # the key columns' codes as one number
            keys = np.zeros(len(parts[0]), dtype=np.int64)
            for values, radix in zip(parts, radices):
                keys = keys * radix + values
            _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        else:  # pragma: no cover - more distinct stretches than one integer can number
            _, first, inverse = np.unique(np.stack(parts, axis=1), axis=0, return_index=True, return_inverse=True)
        rows = np.flatnonzero(pending)[first]
        values = [[_none(v) for v in c.iloc[rows].astype(object)] for c in columns]
        decided = decisions(((s, h, str(svc), int(e), int(d), str(f)) for s, h, svc, e, d, f in zip(*values)),
                            evidence)
        index = {name: i for i, name in enumerate(reasons)}
        for _, reason in decided:
            index.setdefault(reason, len(index))
        reasons = list(index)
        inverse = inverse.reshape(-1)
        enc_codes[pending] = np.array([schema.ENCRYPTIONS.index(v) for v, _ in decided], dtype=np.int8)[inverse]
        ev_codes[pending] = np.array([index[r] for _, r in decided], dtype=np.int32)[inverse]
    frame["encryption"] = pd.Categorical.from_codes(enc_codes, dtype=_FIXED["encryption"], validate=False)
    frame["evidence"] = pd.Categorical.from_codes(ev_codes, dtype=pd.CategoricalDtype(pd.Index(reasons, dtype=object)),
                                                  validate=False)
    del enc_codes, ev_codes, pending
    names = [name for name in schema.names(tuple(frame.columns)) if name in frame.columns]
    line = frame["line"].to_numpy()
    order = None if not ordered or len(line) < 2 or bool((line[1:] >= line[:-1]).all()) else \
        np.argsort(line, kind="stable")
    data = {}
    for name in names:  # one column at a time, so that the table is never held twice
        column = frame.pop(name)
        data[name] = column if order is None else column.take(order).reset_index(drop=True)
    return pd.DataFrame(data, copy=False)
