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

Repeated text columns become categoricals, which keeps big frames small and group-bys fast.
"""

from __future__ import annotations

import pandas as pd

from .fold import COLUMNS, ServiceEvidence
from .pipeline import Analysis

__all__ = ["ENCRYPTIONS", "implicit_tls_service", "resolve_verdict", "session_frame"]

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


def session_frame(analysis: Analysis) -> pd.DataFrame:
    """All rows in log order (by first line), with final verdicts."""
    columns = analysis.sessions.columns
    frame = pd.DataFrame({name: pd.Series(columns[name], dtype=object) for name in COLUMNS})
    if len(frame):
        frame = frame.sort_values("line", kind="stable").reset_index(drop=True)
        pending = frame["encryption"].isin(("nolog", "nostarttls"))
        if pending.any():
            todo = frame.loc[pending, ["encryption", "evidence", "host", "service"]]
            resolved = [resolve_verdict(e, v, h, s, analysis.services) for e, v, h, s in todo.itertuples(index=False)]
            frame.loc[pending, "encryption"] = [r[0] for r in resolved]
            frame.loc[pending, "evidence"] = [r[1] for r in resolved]
    for name in _CATEGORICAL:
        frame[name] = frame[name].astype("category")
    frame["encryption"] = frame["encryption"].cat.set_categories(ENCRYPTIONS)
    frame["line"] = frame["line"].astype("int64")
    for name in ("peer_port", "ip_version", "cipher_bits", "conn_use"):
        frame[name] = frame[name].astype("Int64")
    for name in ("start", "end"):
        frame[name] = frame[name].astype("Float64")
    return frame
