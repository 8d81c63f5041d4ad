"""The session table in pandas: typed columns from `tlslog.schema`, built, joined, settled.

`partition` turns the fold's rows into a compact DataFrame (categoricals for repeated text,
nullable integers) with the columns a consumer asked for; workers return these. `concat`
joins partitions in order (categories are unioned, never widened to objects), and `settle`
applies `tlslog.settle`'s decisions to the ``pending`` rows, giving the final ``encryption``
and ``evidence`` columns. Nothing here decides a verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from operator import itemgetter

import numpy as np
import pandas as pd

from . import schema
from .fold import ROW
from .settle import PENDING, Evidence, decisions

__all__ = ["concat", "empty", "partition", "settle"]

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


#: Categoricals with a fixed set of values, so that every partition agrees on their order.
_FIXED: dict[str, pd.CategoricalDtype] = {
    "kind": _fixed(("inbound", "outbound")),
    "encryption": _fixed(schema.ENCRYPTIONS),
    "fold_encryption": _fixed(schema.FOLD_VERDICTS),
}


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


def _wanted(columns: tuple[str, ...] | None) -> tuple[str, ...]:
    return tuple(name for name in schema.names(columns) if name in _INDEX)


def partition(rows: list[tuple], columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Rows of the fold (`tlslog.fold.ROW` tuples) as a typed DataFrame of the ``columns``
    asked for (None: all) plus what settlement needs; ``line`` stays as the fold counted it."""
    names = _wanted(columns)
    if not rows:
        return empty(names)
    return pd.DataFrame({name: _column(name, list(map(itemgetter(_INDEX[name]), rows))) for name in names},
                        copy=False)


def empty(names: Sequence[str]) -> pd.DataFrame:
    """A table without rows, with the dtypes of those columns (shared: do not modify it)."""
    return _empty(tuple(names))


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


def concat(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Partitions one after another, each column keeping its dtype (categories unioned)."""
    parts = [p for p in parts if len(p)] or list(parts[:1])
    if not parts:
        return empty(_wanted(None))
    if len(parts) == 1:
        return parts[0].reset_index(drop=True)
    data: dict[str, object] = {}
    for name in parts[0].columns:
        first = parts[0][name]
        if isinstance(first.dtype, pd.CategoricalDtype):
            data[name] = _union([p[name].array for p in parts])
        elif isinstance(first.dtype, pd.api.extensions.ExtensionDtype):
            data[name] = pd.array(pd.concat([p[name] for p in parts], ignore_index=True), dtype=first.dtype)
        else:
            data[name] = np.concatenate([p[name].to_numpy() for p in parts])
    return pd.DataFrame(data, copy=False)


def _none(value: object) -> object:
    return None if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)) else value


_SETTLE_KEYS = ("source", "host", "service", "epoch", "day", "fold_evidence")


def settle(frame: pd.DataFrame, evidence: Evidence) -> pd.DataFrame:
    """Add the final ``encryption`` and ``evidence`` columns and sort rows by ``line``.

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
    frame = frame.assign(
        encryption=pd.Categorical.from_codes(enc_codes, dtype=_FIXED["encryption"], validate=False),
        evidence=pd.Categorical.from_codes(ev_codes, dtype=pd.CategoricalDtype(pd.Index(reasons, dtype=object)),
                                           validate=False),
    )
    order = schema.names(tuple(frame.columns))
    frame = frame[[name for name in order if name in frame.columns]]
    if len(frame) and not frame["line"].is_monotonic_increasing:
        frame = frame.sort_values("line", kind="stable").reset_index(drop=True)
    return frame
