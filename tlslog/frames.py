"""Sessions as a pandas DataFrame: one row per inbound session or outbound delivery.

This is where the last part of the verdict is decided, because it needs the whole input
(`tlslog.fold.ServiceEvidence`, collected over every chunk):

* ``nolog`` rows (no TLS evidence at all) are ``plaintext`` when their (host, service) wrote TLS
  summary lines somewhere in the input (TLS logging was on and would have shown TLS), and
  ``unknown`` otherwise (``*_tls_loglevel = 0``: a missing TLS line proves nothing).
* ``nostarttls`` rows (disconnect counters without ``starttls=``) are ``plaintext``, unless the
  service uses implicit TLS (wrapper mode, port 465): there the handshake comes before any SMTP
  command, so a session with a successful command was ``tls`` even though the log level hid the
  TLS line. A service counts as implicit-TLS when one of its sessions had a TLS line but no
  ``starttls=`` counter, or when it is named like the stock master.cf entries
  (``…/smtps/smtpd``, ``…/submissions/smtpd``); never when it ever counted a STARTTLS.

Two shapes, one set of report functions (`tlslog.report`): `session_frame` has one row per
session or delivery (``tlslog sessions``); `count_frame` has one row per distinct combination of
the report's columns with a ``count`` (``tlslog report``: its size grows with the number of
distinct peers, not of sessions). Repeated text columns become categoricals, which keeps big
frames small and group-bys fast.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .fold import COLUMNS, COUNT_KEY, Counts, ServiceEvidence, Sessions
from .pipeline import Analysis

__all__ = ["ENCRYPTIONS", "count_frame", "implicit_tls_service", "period", "resolve_verdict", "session_frame"]

ENCRYPTIONS = ["tls", "plaintext", "tls-failed", "unknown"]
_CATEGORICAL = (
    "kind", "host", "service", "encryption", "evidence", "trust", "protocol", "cipher",
    "key_exchange", "status", "dsn", "tls_feature", "sasl_method",
)  # fmt: skip
_IMPLICIT_TLS_NAMES = frozenset({"smtps", "submissions"})


def implicit_tls_service(host: str | None, service: str, evidence: ServiceEvidence) -> bool:
    """True if sessions of this service start with a TLS handshake (no STARTTLS)."""
    key = (host, service)
    if key in evidence.starttls:
        return False
    parts = service.split("/")
    return key in evidence.implicit_tls or (len(parts) >= 3 and parts[-2] in _IMPLICIT_TLS_NAMES)


def resolve_verdict(encryption: str, evidence: str, host: str | None, service: str,
                    services: ServiceEvidence) -> tuple[str, str]:
    """The final verdict of a row whose fold verdict needed the whole input."""
    if encryption == "nostarttls":
        if implicit_tls_service(host, service, services):
            return ("tls", "implicit-tls") if evidence == "no-starttls-counter" else ("unknown", "implicit-tls")
        return "plaintext", evidence
    if encryption == "nolog":
        if implicit_tls_service(host, service, services):
            return "unknown", "implicit-tls"
        if (host, service) in services.tls_logging:
            return "plaintext", "no-tls-line"
        return "unknown", "no-tls-logging"
    return encryption, evidence


_NULLABLE_INT = ("peer_port", "ip_version", "cipher_bits", "conn_use")
_FLOAT = ("start", "end")


def _resolve(data: dict[str, list], services: ServiceEvidence) -> None:
    encryption, evidence = data["encryption"], data["evidence"]
    for i, verdict in enumerate(encryption):
        if verdict == "nolog" or verdict == "nostarttls":
            encryption[i], evidence[i] = resolve_verdict(
                verdict, evidence[i], data["host"][i], data["service"][i], services
            )


def _row_columns(sessions: Sessions) -> dict[str, list]:
    """The rows of every block as columns, line numbers made global."""
    data: dict[str, list] = {name: [] for name in COLUMNS}
    names = list(COLUMNS)
    for base, rows in sessions.blocks:
        if not rows:
            continue
        for name, values in zip(names, zip(*rows)):
            if name == "line" and base:
                data[name].extend(n + base for n in values)
            else:
                data[name].extend(values)
    return data


def _object_array(values: list) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _categorical(values: list) -> pd.Categorical:
    """A categorical with object categories (pandas would otherwise convert every repeated
    string to its string dtype first, several times slower). None becomes missing."""
    codes, categories = pd.factorize(_object_array(values), use_na_sentinel=True)
    return pd.Categorical.from_codes(codes, categories=pd.Index(categories, dtype=object))


def _frame(data: dict[str, list]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            name: (
                _categorical(values) if name in _CATEGORICAL
                else pd.array(values, dtype="Int64") if name in _NULLABLE_INT
                else pd.array(values, dtype="Float64") if name in _FLOAT
                else np.array(values, dtype="int64") if name in ("line", "count")
                else _object_array(values)
            )
            for name, values in data.items()
        }
    )
    frame["encryption"] = frame["encryption"].cat.set_categories(ENCRYPTIONS)  # fixed order for reports
    return frame


def session_frame(analysis: Analysis) -> pd.DataFrame:
    """One row per session or delivery, in log order, with final verdicts and ``count`` 1."""
    if not isinstance(analysis.sessions, Sessions):
        raise TypeError("session_frame needs an analysis run with Options(rows=True)")
    data = _row_columns(analysis.sessions)
    _resolve(data, analysis.services)
    data["count"] = [1] * len(data["line"])
    frame = _frame(data)
    if len(frame) and not frame["line"].is_monotonic_increasing:
        frame = frame.sort_values("line", kind="stable").reset_index(drop=True)
    return frame


def count_frame(analysis: Analysis) -> pd.DataFrame:
    """One row per distinct `COUNT_KEY` combination, with final verdicts and a ``count``."""
    if isinstance(analysis.sessions, Sessions):
        return session_frame(analysis)
    counts = analysis.sessions.counts
    columns = list(zip(*counts)) if counts else [()] * len(COUNT_KEY)
    data = {name: list(values) for name, values in zip(COUNT_KEY, columns)}
    _resolve(data, analysis.services)
    data["count"] = list(counts.values())
    return _frame(data)


def period(analysis: Analysis, frame: pd.DataFrame) -> tuple[tuple[float, int | None], tuple[float, int | None]] | None:
    """(start, zone offset) of the first and the last session, or None if no row has a time."""
    sink = analysis.sessions
    if isinstance(sink, Counts):
        return (sink.first, sink.last) if sink.first and sink.last else None
    starts = frame["start"].dropna()
    if not len(starts):
        return None
    ends = []
    for index in (starts.idxmin(), starts.idxmax()):
        offset = frame.at[index, "offset"]
        ends.append((float(frame.at[index, "start"]), None if pd.isna(offset) else int(offset)))
    return ends[0], ends[1]
