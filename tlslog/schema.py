"""The session table: the one contract between the engine and everything downstream.

One row per inbound SMTP session (``kind = inbound``) and per outbound delivery to one
recipient (``kind = outbound``). Every consumer derives its field list from `SESSION`: the
JSONL/CSV writers (the exported columns, in this order), the pandas partitions the workers
return (`tlslog.table`), the reports (which declare the columns they read), and later the
SQLite store and Parquet export. This module imports nothing heavy on purpose.

Types are logical; `tlslog.table` maps them to pandas dtypes:

``category``  repeated text (a pandas categorical: small and fast to group)
``text``      mostly distinct text (object)
``int8`` .. ``int64``  integers; ``nullable`` ones may be missing
``float64``   wall-clock seconds (missing: NaN)
``bool``      true/false
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ENCRYPTIONS",
    "PROTOCOLS",
    "TRUSTS",
    "Projection",
    "EXPORT_COLUMNS",
    "FOLD_VERDICTS",
    "SESSION",
    "SETTLE_COLUMNS",
    "Column",
    "column",
    "names",
]

Kind = Literal["category", "text", "int8", "int16", "int32", "int64", "float64", "bool"]

#: Final verdicts, in report order.
ENCRYPTIONS = ("tls", "plaintext", "tls-failed", "unknown")
#: TLS protocols newest first, trust levels best first: the order every list of them follows.
PROTOCOLS = ("TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1", "SSLv3", "SSLv2")
TRUSTS = ("Verified", "Trusted", "Untrusted", "Anonymous")
#: Verdicts the fold can give; ``pending`` rows are decided by `tlslog.settle` from the
#: evidence of their stretch of log (see README, "How the verdict is decided").
FOLD_VERDICTS = (*ENCRYPTIONS, "pending")


@dataclass(frozen=True)
class Column:
    """One column of the session table."""

    name: str
    kind: Kind
    #: part of the ``tlslog sessions`` export contract (JSONL/CSV), in `SESSION` order
    export: bool
    nullable: bool
    doc: str


def _c(name: str, kind: Kind, doc: str, *, export: bool = True, nullable: bool = True) -> Column:
    return Column(name, kind, export, nullable, doc)


#: Every column, in export order. The first 30 exported ones are the contract of the first
#: release (their order and meaning never change); new ones are appended.
SESSION: tuple[Column, ...] = (
    _c("kind", "category", "inbound (an smtpd session) or outbound (one smtp delivery to one recipient)",
       nullable=False),
    _c("start", "float64", "wall-clock seconds of the first line (exported as ISO 8601)"),
    _c("end", "float64", "wall-clock seconds of the last line (exported as ISO 8601; may be null)"),
    _c("host", "category", "logging host"),
    _c("service", "category", "process name as logged, e.g. postfix/submission/smtpd", nullable=False),
    _c("pid", "category", "process id as logged (exported as a number when it is one)"),
    _c("peer_name", "category", "remote host name (null for [addr] only)"),
    _c("peer_ip", "category", "remote address"),
    _c("peer_port", "int32", "remote port, when logged"),
    _c("ip_version", "int8", "4 or 6"),
    _c("encryption", "category", "final verdict: tls, plaintext, tls-failed, unknown", nullable=False),
    _c("trust", "category", "Anonymous, Untrusted, Trusted, Verified"),
    _c("protocol", "category", "e.g. TLSv1.3; null when no TLS line named it"),
    _c("cipher", "category", "e.g. TLS_AES_256_GCM_SHA384"),
    _c("cipher_bits", "int16", "bits of the cipher actually used"),
    _c("queue_ids", "text", "inbound: ids of QUEUEID: client= lines; outbound: the queue id (space-separated; "
                            "exported as a list)"),
    _c("recipient", "category", "outbound: the recipient address"),
    _c("recipient_domain", "category", "outbound: its domain, lower case"),
    _c("relay", "category", "outbound: relay= as logged (none, private/..., host[addr]:port)"),
    _c("status", "category", "outbound: sent, deferred, bounced, ..."),
    _c("dsn", "category", "outbound: the DSN code"),
    _c("evidence", "category", "why the final verdict (see README)", nullable=False),
    _c("key_exchange", "category", "TLS 1.3 key exchange"),
    _c("sni", "category", "server name the client asked for"),
    _c("conn_use", "int16", "outbound: conn_use= (the connection's n-th delivery)"),
    _c("tls_feature", "category", "outbound: Postfix 3.11 tls= field"),
    _c("sasl_method", "category", "inbound: SASL method"),
    _c("sasl_username", "category", "inbound: SASL user name"),
    _c("complete", "bool", "false when the session was cut off at either end", nullable=False),
    _c("line", "int64", "line number (1-based, over all inputs in reading order) of the row's first line",
       nullable=False),
    # -- added with the session table (issue 8) ------------------------------------------------
    _c("failure_reason", "category", "what Postfix said went wrong with TLS: the TLS library error, "
                                     "SSL_accept/SSL_connect error, Cannot start TLS..., certificate check"),
    _c("fold_encryption", "category", "the verdict from the row's own lines; pending: decided by the "
                                      "evidence of its stretch of log", nullable=False),
    _c("fold_evidence", "category", "why the fold verdict", nullable=False),
    _c("messages", "int32", "inbound: messages handed over (QUEUEID: client= lines); outbound: 1 if sent",
       nullable=False),
    _c("source", "category", "the input the row's first line came from (file name, or <stdin>)"),
    # -- added with the reports of mail (issue 9): what a row is, by `tlslog.classify` ------------
    _c("role", "category", "mx, submission (inbound, by service) or outbound", nullable=False),
    _c("hop", "category", "external (mail on the wire) or internal (loopback, a local transport, a configured "
                          "network or service: a content filter's round trip)", nullable=False),
    # -- internal: how rows are placed for settlement, never exported --------------------------
    _c("peer_key", "int64", "a 64-bit digest of (peer_name, peer_ip): who the row's peer is where a "
                            "`Projection` leaves the peer's name and address out", export=False, nullable=False),
    _c("offset", "int16", "UTC offset of the stamps in minutes, when the log had one", export=False),
    _c("epoch", "int32", "Postfix (re)starts and reloads of this host before the row (a new configuration)",
       export=False, nullable=False),
    _c("day", "int32", "local calendar day of the row's first line (days since 1970-01-01; -1 unknown)",
       export=False, nullable=False),
)

_BY_NAME = {c.name: c for c in SESSION}
#: The exported columns, in order (``tlslog sessions`` JSONL keys and CSV header).
EXPORT_COLUMNS: tuple[str, ...] = tuple(c.name for c in SESSION if c.export)
#: What `tlslog.settle` reads of every row: its stretch of log and its fold verdict.
SETTLE_COLUMNS: tuple[str, ...] = ("source", "host", "service", "epoch", "day", "fold_encryption", "fold_evidence")


@dataclass(frozen=True)
class Projection:
    """What one consumer reads of the session table: its columns and, optionally, the rows whose
    peer (``peer_name``, ``peer_ip``) it reads: rows whose fold verdict is in ``peer_verdicts``
    or whose protocol is in ``peer_protocols``; elsewhere those two stay empty. A report that
    lists plaintext and old-TLS peers needs no address of every TLS session, and a table of
    millions of rows is then far smaller (the distinct addresses are most of its text)."""

    columns: tuple[str, ...]
    peer_verdicts: frozenset[str] | None = None  # None: peers on every row
    peer_protocols: frozenset[str] = frozenset()
    #: also on TLS rows whose protocol and cipher are weak (`tlslog.strength`)
    peer_weak: bool = False


def column(name: str) -> Column:
    """The column called ``name`` (KeyError if there is none)."""
    return _BY_NAME[name]


def names(wanted: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """Column names in table order: all, or those of ``wanted`` plus what settlement needs."""
    if wanted is None:
        return tuple(_BY_NAME)
    unknown = set(wanted) - set(_BY_NAME)
    if unknown:
        raise KeyError(f"no such session column: {', '.join(sorted(unknown))}")
    keep = set(wanted) | set(SETTLE_COLUMNS) | {"encryption", "evidence", "line"}
    return tuple(name for name in _BY_NAME if name in keep)
