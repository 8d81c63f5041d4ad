"""What the grammar hands the fold: one typed tuple per rule, holding the fields the fold reads.

The hot path (`tlslog.engine.scan`) extracts exactly these fields from a match, in this order,
and wraps them in the rule's class; a rule without a class here is recognised but carries no
evidence for the verdict. Values are the raw text of the line (None when absent):
conversions happen in the fold, through `tlslog.fields`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["FIELDS", "INBOUND_KINDS", "KINDS", "OUTBOUND_KINDS", "Event", "Key", "Values"]


class Connect(NamedTuple):
    peer: str


class Disconnect(NamedTuple):
    peer: str
    counters: str


class TlsSummary(NamedTuple):
    direction: str
    peer: str
    trust: str | None
    protocol: str
    cipher: str
    usebits: str
    key_exchange: str | None
    sni: str | None


class Client(NamedTuple):
    queue_id: str
    peer: str
    sasl_method: str | None
    sasl_username: str | None


class Lost(NamedTuple):
    after: str
    peer: str


class TlsAbort(NamedTuple):
    peer: str
    reason: str


class SslError(NamedTuple):
    direction: str
    peer: str
    error: str


class TlsLibraryProblem(NamedTuple):
    error: str


class CertVerifyFailed(NamedTuple):
    peer: str
    reason: str


class EhloDiscard(NamedTuple):
    keywords: str


class Status(NamedTuple):
    queue_id: str
    recipient: str
    relay: str | None
    conn_use: str | None
    tls_feature: str | None
    dsn: str | None
    status: str
    reason: str | None


class Tlsrpt(NamedTuple):
    """Postfix 3.10+ TLSRPT status of one new TLS connection: counted apart (`tlslog.tlsrpt`)."""

    status: str
    domain: str
    mx_name: str | None
    mx_addr: str
    failure_type: str | None
    failure_reason: str | None


Values = (Connect | Disconnect | TlsSummary | Client | Lost | TlsAbort | SslError | TlsLibraryProblem
          | CertVerifyFailed | EhloDiscard | Status)

#: Rule name -> the tuple class of its fields. A damaged delivery line reads like a delivery.
KINDS: dict[str, Any] = {
    "connect": Connect,
    "disconnect": Disconnect,
    "tls_summary": TlsSummary,
    "client": Client,
    "lost": Lost,
    "tls_abort": TlsAbort,
    "ssl_error": SslError,
    "tls_library_problem": TlsLibraryProblem,
    "cert_verify_failed": CertVerifyFailed,
    "ehlo_discard": EhloDiscard,
    "status": Status,
    "status_damaged": Status,
    "tlsrpt": Tlsrpt,
}
#: The fields of each rule the fold reads, in tuple order (`tlslog.parse.RuleSet` ``select``).
FIELDS: dict[str, tuple[str, ...]] = {kind: cls._fields for kind, cls in KINDS.items()}
#: Rules that belong to one side only; the others say it in their ``direction`` field, or
#: (library problems, EHLO keyword notes) take the side of the program that logged them.
INBOUND_KINDS = frozenset({"connect", "disconnect", "client", "lost", "tls_abort"})
OUTBOUND_KINDS = frozenset({"status", "status_damaged", "cert_verify_failed"})

#: (host, process name as logged, pid): one smtpd session or one smtp process at a time.
Key = tuple[str | None, str, str | None]


class Event(NamedTuple):
    """One folded line, as buffered at the head of a chunk (`tlslog.stitch`)."""

    role: str  # "in" (smtpd) or "out" (smtp)
    kind: str
    wall: float | None
    offset: int | None
    line: int
    key: Key
    values: Values
