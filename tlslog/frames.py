"""Sessions as a pandas DataFrame: one row per inbound session or outbound delivery.

This is where the last part of the verdict is decided, because it needs the whole input:
a row without any TLS evidence (``nolog``) is ``plaintext`` when its (host, service) wrote TLS
summary lines somewhere in the input (so TLS logging was on and would have shown TLS), and
``unknown`` otherwise (``*_tls_loglevel = 0``: absence of a TLS line proves nothing).
Repeated text columns become categoricals, which keeps big frames small and group-bys fast.
"""

from __future__ import annotations

import pandas as pd

from .fold import COLUMNS
from .pipeline import Analysis

__all__ = ["ENCRYPTIONS", "session_frame"]

ENCRYPTIONS = ["tls", "plaintext", "tls-failed", "unknown"]
_CATEGORICAL = (
    "kind", "host", "service", "encryption", "evidence", "trust", "protocol", "cipher",
    "key_exchange", "status", "dsn", "tls_feature", "sasl_method",
)  # fmt: skip


def session_frame(analysis: Analysis) -> pd.DataFrame:
    """All rows in log order (by first line), with final verdicts."""
    columns = analysis.sessions.columns
    frame = pd.DataFrame({name: pd.Series(columns[name], dtype=object) for name in COLUMNS})
    if len(frame):
        frame = frame.sort_values("line", kind="stable").reset_index(drop=True)
        nolog = frame["encryption"] == "nolog"
        if nolog.any():
            logged = pd.Series(
                [(h, s) in analysis.tls_logging for h, s in zip(frame["host"][nolog], frame["service"][nolog])],
                index=frame.index[nolog],
                dtype=bool,
            )
            frame.loc[nolog, "encryption"] = logged.map({True: "plaintext", False: "unknown"})
            frame.loc[nolog, "evidence"] = logged.map({True: "no-tls-line", False: "no-tls-logging"})
    for name in _CATEGORICAL:
        frame[name] = frame[name].astype("category")
    frame["encryption"] = frame["encryption"].cat.set_categories(ENCRYPTIONS)
    for name in ("line", "pid_number"):
        if name in frame:
            frame[name] = frame[name].astype("int64")
    for name in ("peer_port", "ip_version", "cipher_bits", "conn_use"):
        frame[name] = frame[name].astype("Int64")
    for name in ("start", "end"):
        frame[name] = frame[name].astype("Float64")
    return frame
