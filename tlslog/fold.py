"""Fold parsed events into inbound sessions and outbound deliveries, with a verdict each.

Inbound (smtpd): one session per ``connect from`` ... ``disconnect from`` of one process, keyed
by (host, process name, pid). Outbound (smtp): one row per delivery status line (one per
recipient); its TLS evidence is the last TLS line of the same process whose peer is the
delivery's relay and that no other queue id has used yet (pitfall 6, 7).

Verdict per row (``../DESIGN.md``; the first that applies wins):

* inbound  ``tls``        a TLS summary line, or ``starttls=N`` (N > 0) in the disconnect counters
           ``tls-failed`` ``starttls=0/N``, ``SSL_accept error``, ``lost connection after STARTTLS``
           ``nostarttls`` closed, counters present, no ``starttls=``: plaintext, unless the
                          service is an implicit-TLS (wrapper mode, port 465) one, where there is
                          never a STARTTLS and any SMTP command proves TLS (decided in `tlslog.frames`)
           ``nolog``      closed without counters (Postfix < 3.0) and no TLS line: plaintext if the
                          service logs TLS lines at all, else unknown (decided in `tlslog.frames`)
           ``unknown``    cut off (log ends, timeout, pid reused) with no evidence
* outbound ``tls``        TLS line (established or reused), or a TLS verification failure, or a
                          mandatory ``tls=`` level (3.11) on a sent delivery
           ``unknown``    ``relay=none``: no SMTP session was made
           ``tls-failed`` ``SSL_connect error`` or a STARTTLS failure reason
           ``plaintext``  TLS not offered; ``conn_use>=2`` (TLS connections are only cached
                          through tlsproxy, which always logs ``reused``); ``tls=...:none``
           ``nolog``      no TLS line: as above

A session whose next line comes more than ``timeout`` seconds after (or before) its last one
is closed (counted, never kept) and the line starts a new one; `Fold.sweep` bounds the number
of open sessions.

Chunks can be folded in parallel: with ``buffer_heads=True`` the events of a key that arrive
before the key's first *reset* event (``connect``; a client TLS line or handshake failure) are
buffered instead of folded, because their meaning depends on the previous chunk. `Fold.merge`
replays them into the state carried over and adopts the chunk's own end state, which gives
exactly the result of one sequential pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .fields import (
    attempted_peer,
    commands_succeeded,
    ip_version,
    split_peer,
    starttls_counter,
    tls_feature_verdict,
)

__all__ = ["COLUMNS", "COUNT_KEY", "FIELDS", "LEGACY_PROTOCOLS", "ChunkFold", "Counts", "Fold", "ServiceEvidence", "Sessions"]

Key = tuple  # (host, process name, pid)
Event = tuple  # (role, kind, wall, offset, line, key, fields)

DEFAULT_TIMEOUT = 3600.0
#: Open sessions (and smtp connection states) kept at most; only a pathological log (more
#: sessions open at once than any server allows) reaches it.
MAX_OPEN = 100_000

#: Columns of the session table, in export order.
COLUMNS = (
    "line", "kind", "start", "end", "offset", "host", "service", "pid",
    "peer_name", "peer_ip", "peer_port", "ip_version",
    "encryption", "evidence", "trust", "protocol", "cipher", "cipher_bits", "key_exchange", "sni",
    "queue_ids", "recipient", "recipient_domain", "relay", "status", "dsn", "conn_use",
    "tls_feature", "sasl_method", "sasl_username", "complete",
)  # fmt: skip

_RESETS = {"in": frozenset({"connect"}), "out": frozenset({"tls_summary", "ssl_error", "cert_verify_failed"})}

_TLS_FAILURE_REASONS = (
    "Cannot start TLS",
    "refused to start TLS",
    "while receiving the STARTTLS response",
    "TLS is required, but unavailable",
)
_UNVERIFIED_REASONS = ("Server certificate not verified", "Server certificate not trusted")


class Sessions:
    """Finished rows as tuples in `COLUMNS` order, in blocks that share a line-number base
    (a chunk's rows keep their chunk-local line numbers until the frame is built)."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.blocks: list[tuple[int, list[tuple]]] = [(0, self.rows)]
        self.add = self.rows.append

    def __len__(self) -> int:
        return sum(len(rows) for _, rows in self.blocks)

    def extend(self, other: Sessions, line_base: int = 0) -> None:
        """Adopt another's rows, whose line numbers count from ``line_base``."""
        for base, rows in other.blocks:
            if rows:
                self.blocks.append((base + line_base, rows))


#: Columns `Counts` groups rows by: everything a report needs, nothing per session.
COUNT_KEY = (
    "kind", "host", "service", "encryption", "evidence", "trust", "protocol", "ip_version",
    "peer_name", "peer_ip",
)  # fmt: skip
#: Protocols a report lists the peers of; peers of other TLS rows are not kept by `Counts`.
LEGACY_PROTOCOLS = frozenset({"TLSv1.1", "TLSv1", "SSLv3", "SSLv2"})
_NO_PEER_VERDICTS = frozenset({"tls", "tls-failed", "unknown"})


class Counts:
    """Finished rows counted by `COUNT_KEY` instead of kept: all `tlslog report` needs. Peers
    are kept only where a report lists them (rows that may be plaintext, and TLS rows on a
    legacy protocol), so the size grows with the number of such peers, not of sessions."""

    def __init__(self) -> None:
        self.counts: dict[tuple, int] = {}
        self.first: tuple[float, int | None] | None = None  # (start, offset) of the earliest row
        self.last: tuple[float, int | None] | None = None

    def __len__(self) -> int:
        return sum(self.counts.values())

    def count(self, kind: str, host: str | None, service: str, encryption: str, evidence: str,
              trust: str | None, protocol: str | None, ip_version: int | None, peer_name: str | None,
              peer_ip: str | None, start: float | None, offset: int | None) -> None:
        """Count one row given by its `COUNT_KEY` columns, its start and zone offset."""
        if encryption in _NO_PEER_VERDICTS and protocol not in LEGACY_PROTOCOLS:
            peer_name = peer_ip = None
        key = (kind, host, service, encryption, evidence, trust, protocol, ip_version, peer_name, peer_ip)
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1
        if start is not None:
            if self.first is None or start < self.first[0]:
                self.first = (start, offset)
            if self.last is None or start > self.last[0]:
                self.last = (start, offset)

    def extend(self, other: Counts, line_base: int = 0) -> None:  # noqa: ARG002 - same interface as Sessions
        counts = self.counts
        for key, n in other.counts.items():
            counts[key] = counts.get(key, 0) + n
        if other.first is not None and (self.first is None or other.first[0] < self.first[0]):
            self.first = other.first
        if other.last is not None and (self.last is None or other.last[0] > self.last[0]):
            self.last = other.last


@dataclass
class ServiceEvidence:
    """What the whole input shows about each (host, service): needed to read rows without
    TLS evidence, so it is collected over all chunks before any such row gets its verdict."""

    #: wrote TLS summary lines: TLS logging is on, a missing TLS line means no TLS
    tls_logging: set[tuple[str | None, str]] = field(default_factory=set)
    #: had a ``starttls=`` counter: a STARTTLS service, not an implicit-TLS one
    starttls: set[tuple[str | None, str]] = field(default_factory=set)
    #: had a session with a TLS line but no ``starttls=`` counter: implicit TLS (wrapper mode)
    implicit_tls: set[tuple[str | None, str]] = field(default_factory=set)

    def update(self, other: ServiceEvidence) -> None:
        self.tls_logging |= other.tls_logging
        self.starttls |= other.starttls
        self.implicit_tls |= other.implicit_tls


#: The fields of each rule the fold reads, in this order (the hot path extracts exactly these,
#: as tuples: `tlslog.parse.RuleSet` ``select``). Rules not listed carry no verdict evidence.
FIELDS: dict[str, tuple[str, ...]] = {
    "connect": ("peer",),
    "disconnect": ("peer", "counters"),
    "tls_summary": ("direction", "peer", "trust", "protocol", "cipher", "usebits", "key_exchange", "sni"),
    "client": ("queue_id", "peer", "sasl_method", "sasl_username"),
    "lost": ("after", "peer"),
    "ssl_error": ("direction", "peer"),
    "cert_verify_failed": ("peer",),
    "status": ("queue_id", "recipient", "relay", "conn_use", "tls_feature", "dsn", "status", "reason"),
}
#: Rules whose ``direction`` field says the side; the others belong to one side only.
INBOUND_KINDS = frozenset({"connect", "disconnect", "client", "lost"})
OUTBOUND_KINDS = frozenset({"status", "cert_verify_failed"})


class _Inbound:
    """An smtpd session being assembled. ``tls`` holds the summary line's
    (trust, protocol, cipher, bits, key exchange, SNI) once it was seen."""

    __slots__ = (
        "line", "start", "last", "offset", "key", "peer", "peer_text", "tls", "counters", "failure", "queue_ids",
        "sasl", "start_cut",
    )  # fmt: skip

    def __init__(self, key: Key, wall: float | None, offset: int | None, line: int, peer: str | None,
                 start_cut: bool = False) -> None:
        self.line = line
        self.start = self.last = wall
        self.offset = offset
        self.key = key
        self.peer_text = peer
        self.peer = split_peer(peer)
        self.tls: tuple | None = None
        self.counters: str | None = None
        self.failure: str | None = None
        self.queue_ids: tuple[str, ...] = ()
        self.sasl: tuple[str | None, str | None] = (None, None)
        self.start_cut = start_cut

    def __getstate__(self) -> tuple:  # open sessions travel from workers to the merge: keep it cheap
        return tuple(getattr(self, name) for name in self.__slots__)

    def __setstate__(self, state: tuple) -> None:
        for name, value in zip(self.__slots__, state):
            setattr(self, name, value)

    def verdict(self, closed: bool) -> tuple[str, str]:
        if self.tls is not None:
            return "tls", "tls-line"
        counters = self.counters
        starttls = starttls_counter(counters) if counters else None
        if starttls is not None:
            return ("tls", "starttls-counter") if starttls[0] > 0 else ("tls-failed", "starttls-counter")
        if self.failure is not None:
            return "tls-failed", self.failure
        if closed:
            if counters:
                return "nostarttls", "no-starttls-counter" if commands_succeeded(counters) else "no-commands"
            return "nolog", "no-tls-line"
        return "unknown", "cut-off"


class _Conn:
    """What the last TLS-relevant line of an smtp process said about its connection:
    ``kind`` is ``tls``, ``failed`` (handshake) or ``unverified`` (certificate check failed)."""

    __slots__ = ("kind", "queue_id", "relay", "tls", "wall")

    def __init__(self, kind: str, relay: str, wall: float | None, tls: tuple | None = None) -> None:
        self.kind, self.relay, self.wall, self.tls = kind, relay, wall, tls
        self.queue_id: str | None = None


def _same_relay(tls_peer: str, relay: str) -> bool:
    if tls_peer == relay:
        return True
    name_a, addr_a, port_a = split_peer(tls_peer)
    name_b, addr_b, port_b = split_peer(relay)
    if addr_a is None:  # 2.2-2.4 clients logged the host name only
        return name_a is not None and name_a == name_b
    return addr_a == addr_b and (port_a is None or port_b is None or port_a == port_b)


class Fold:
    """The sequential state machine. Feed events in log order; call `finish` at the end.

    An event is ``(role, kind, wall, offset, line, key, values)``: ``role`` ``in`` (smtpd) or
    ``out`` (smtp), ``kind`` the rule name, ``values`` the rule's `FIELDS` as a tuple.
    """

    def __init__(self, sink: Sessions | Counts | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.sink = sink if sink is not None else Sessions()
        self._counting = isinstance(self.sink, Counts)
        self.timeout = timeout
        self.inbound: dict[Key, _Inbound] = {}
        self.outbound: dict[Key, _Conn] = {}
        self.services = ServiceEvidence()
        self._handlers = {
            ("in", "connect"): self._connect,
            ("in", "disconnect"): self._disconnect,
            ("in", "tls_summary"): self._in_tls,
            ("in", "client"): self._client,
            ("in", "lost"): self._lost,
            ("in", "ssl_error"): self._in_ssl_error,
            ("out", "tls_summary"): self._out_tls,
            ("out", "ssl_error"): self._out_ssl_error,
            ("out", "cert_verify_failed"): self._out_unverified,
            ("out", "status"): self._status,
        }

    # -- entry points ---------------------------------------------------------------------

    def feed(self, role: str, kind: str, wall: float | None, offset: int | None, line: int,
             key: Key, values: tuple) -> None:
        """Apply one event (see the class docstring)."""
        handler = self._handlers.get((role, kind))
        if handler is None:
            return  # a known line that carries no evidence for the verdict
        handler(wall, offset, line, key, values)

    def sweep(self) -> None:
        """Keep at most `MAX_OPEN` open sessions and connection states (the least recently
        active go first, counted with the evidence they have): memory stays bounded even for a
        log of connects that never end. Nothing closes a session merely because time passed
        elsewhere in the log, so folding in chunks gives the result of one pass; the only
        exception is this cap, applied at chunk ends, which no real server reaches."""
        if len(self.inbound) > MAX_OPEN:  # down to 3/4 of the cap, so this is rarely done
            by_age = sorted([(s.last or 0.0, s.line, key) for key, s in self.inbound.items()])
            for _, _, key in by_age[: len(self.inbound) - MAX_OPEN * 3 // 4]:
                self._close(key, closed=False)
        if len(self.outbound) > MAX_OPEN:
            for key in list(self.outbound)[: len(self.outbound) - MAX_OPEN]:
                del self.outbound[key]

    def finish(self) -> Sessions | Counts:
        """Close everything still open (the log ended) and return all rows."""
        for key in list(self.inbound):
            self._close(key, closed=False)
        self.outbound.clear()
        return self.sink

    def merge(self, chunk: ChunkFold, line_base: int) -> None:
        """Continue this fold with a chunk folded on its own (see the module docstring)."""
        self.sink.extend(chunk.sink, line_base)  # type: ignore[arg-type]
        self.services.update(chunk.services)
        for events in chunk.heads.values():
            for role, kind, wall, offset, line, key, values in events:
                self.feed(role, kind, wall, offset, line + line_base, key, values)
        for key in chunk.settled_in:
            if key in self.inbound:
                self._close(key, closed=False)  # what the chunk's first `connect` did
            tail = chunk.inbound.get(key)
            if tail is not None:
                tail.line += line_base
                self.inbound[key] = tail
        for key in chunk.settled_out:
            tail_conn = chunk.outbound.get(key)
            if tail_conn is None:
                self.outbound.pop(key, None)
            else:
                self.outbound[key] = tail_conn

    # -- inbound ----------------------------------------------------------------------------

    def _session(self, key: Key, wall: float | None, offset: int | None, line: int, peer: str | None) -> _Inbound:
        """The open session of ``key``, or a new one that started before the log did."""
        s = self.inbound.get(key)
        if s is not None:
            if wall is not None and s.last is not None and abs(wall - s.last) > self.timeout:
                self._close(key, closed=False)  # silent too long (or the log jumps in time)
                s = None
            elif (peer is not None and peer != s.peer_text and s.peer[1] is not None
                  and split_peer(peer)[1] not in (None, s.peer[1])):
                self._close(key, closed=False)  # another client: the pid was reused, lines were lost
                s = None
            else:
                if wall is not None:
                    s.last = wall
                return s
        s = self.inbound[key] = _Inbound(key, wall, offset, line, peer, start_cut=True)
        return s

    def _connect(self, wall, offset, line, key, values):  # noqa: ANN001 - handler signature
        if key in self.inbound:
            self._close(key, closed=False)
        self.inbound[key] = _Inbound(key, wall, offset, line, values[0])

    def _in_tls(self, wall, offset, line, key, values):  # noqa: ANN001
        _, peer, trust, protocol, cipher, bits, key_exchange, sni = values
        s = self._session(key, wall, offset, line, peer)
        s.tls = (trust, protocol, cipher, int(bits), key_exchange, sni)
        self.services.tls_logging.add((key[0], key[1]))

    def _disconnect(self, wall, offset, line, key, values):  # noqa: ANN001
        peer, counters = values
        s = self._session(key, wall, offset, line, peer)
        s.counters = counters
        self._close(key, closed=True)

    def _client(self, wall, offset, line, key, values):  # noqa: ANN001
        queue_id, peer, sasl_method, sasl_username = values
        s = self._session(key, wall, offset, line, peer)
        s.queue_ids += (queue_id,)
        if sasl_method is not None:
            s.sasl = (sasl_method, sasl_username)

    def _lost(self, wall, offset, line, key, values):  # noqa: ANN001
        after, peer = values
        s = self._session(key, wall, offset, line, peer)
        if after == "STARTTLS" and s.failure is None:
            s.failure = "lost-after-starttls"

    def _in_ssl_error(self, wall, offset, line, key, values):  # noqa: ANN001
        s = self._session(key, wall, offset, line, values[1])
        s.failure = "ssl-accept-error"

    def _close(self, key: Key, *, closed: bool) -> None:
        s = self.inbound.pop(key)
        encryption, evidence = s.verdict(closed)
        host, service, pid = key
        if s.counters:
            if " starttls=" in s.counters:
                self.services.starttls.add((host, service))
            elif s.tls is not None:
                self.services.implicit_tls.add((host, service))
        trust, protocol, cipher, bits, key_exchange, sni = s.tls or _NO_TLS
        peer_name, peer_ip, peer_port = s.peer
        if self._counting:
            self.sink.count("inbound", host, service, encryption, evidence, trust, protocol,  # type: ignore[union-attr]
                            ip_version(peer_ip), peer_name, peer_ip, s.start, s.offset)
            return
        self.sink.add((
            s.line, "inbound", s.start, s.last, s.offset, host, service, pid,
            peer_name, peer_ip, peer_port, ip_version(peer_ip),
            encryption, evidence, trust, protocol, cipher, bits, key_exchange, sni,
            s.queue_ids, None, None, None, None, None, None,
            None, s.sasl[0], s.sasl[1], closed and not s.start_cut,
        ))  # fmt: skip

    # -- outbound ---------------------------------------------------------------------------

    def _out_tls(self, wall, offset, line, key, values):  # noqa: ANN001
        _, peer, trust, protocol, cipher, bits, key_exchange, _sni = values
        self.outbound[key] = _Conn("tls", peer, wall, (trust, protocol, cipher, int(bits), key_exchange))
        self.services.tls_logging.add((key[0], key[1]))

    def _out_ssl_error(self, wall, offset, line, key, values):  # noqa: ANN001
        self.outbound[key] = _Conn("failed", values[1], wall)

    def _out_unverified(self, wall, offset, line, key, values):  # noqa: ANN001
        self.outbound[key] = _Conn("unverified", values[0], wall)

    def _status(self, wall, offset, line, key, values):  # noqa: ANN001
        queue_id, recipient, relay, conn_use, tls_feature, dsn, status, reason = values
        relay = relay or "none"
        conn = self.outbound.get(key)
        used: _Conn | None = None
        if conn is not None:
            if wall is not None and conn.wall is not None and abs(wall - conn.wall) > self.timeout:
                del self.outbound[key]
            elif _same_relay(conn.relay, relay):
                if conn.queue_id is None or conn.queue_id == queue_id:
                    conn.queue_id = queue_id
                    used = conn
                else:
                    del self.outbound[key]  # a later delivery: that connection is gone
        uses = int(conn_use) if conn_use and conn_use.isdigit() else None
        encryption, evidence = _outbound_verdict(used, relay, status, reason or "", tls_feature, uses)
        # relay=none: no session, but the reason names the server that was tried last
        name, addr, port = split_peer(relay if relay != "none" else attempted_peer(reason))
        domain = recipient.rpartition("@")[2].lower() if "@" in recipient else None
        trust = protocol = cipher = bits = key_exchange = None
        if encryption == "tls":
            if used is not None and used.tls is not None:
                trust, protocol, cipher, bits, key_exchange = used.tls
            elif evidence == "certificate-not-verified":
                trust = "Untrusted"
        start = used.wall if used is not None and used.wall is not None else wall
        if self._counting:
            self.sink.count("outbound", key[0], key[1], encryption, evidence, trust, protocol,  # type: ignore[union-attr]
                            ip_version(addr), name, addr, start, offset)
            return
        self.sink.add((
            line, "outbound", start, wall, offset, key[0], key[1], key[2],
            name, addr, port, ip_version(addr),
            encryption, evidence, trust, protocol, cipher, bits, key_exchange, None,
            (queue_id,), recipient, domain, relay, status, dsn, uses,
            tls_feature, None, None, True,
        ))  # fmt: skip


_NO_TLS = (None, None, None, None, None, None)


def _outbound_verdict(used: _Conn | None, relay: str, status: str, reason: str, tls_feature: str | None,
                      conn_use: int | None) -> tuple[str, str]:
    if used is not None and used.kind == "tls":
        return "tls", "tls-line"
    if (used is not None and used.kind == "unverified") or reason.startswith(_UNVERIFIED_REASONS):
        return "tls", "certificate-not-verified"
    if relay == "none":
        return "unknown", "no-connection"
    if used is not None and used.kind == "failed":
        if status == "sent":
            return "plaintext", "plaintext-after-tls-failure"
        return "tls-failed", "ssl-connect-error"
    if any(text in reason for text in _TLS_FAILURE_REASONS):
        return "tls-failed", "tls-failure-reason"
    if reason.startswith("TLS is required, but was not offered"):
        return "plaintext", "starttls-not-offered"
    feature = tls_feature_verdict(tls_feature, status)
    if feature is not None:
        return feature, "tls-feature"
    if conn_use is not None and conn_use >= 2:
        return "plaintext", "cached-connection"
    return "nolog", "no-tls-line"


class ChunkFold(Fold):
    """A `Fold` over one chunk of a longer log, to be merged in order by `Fold.merge`."""

    def __init__(self, sink: Sessions | Counts | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(sink, timeout=timeout)
        self.heads: dict[Key, list[Event]] = {}
        self.settled_in: set[Key] = set()
        self.settled_out: set[Key] = set()

    def feed(self, role: str, kind: str, wall: float | None, offset: int | None, line: int,
             key: Key, values: tuple) -> None:
        handler = self._handlers.get((role, kind))
        if handler is None:
            return
        settled = self.settled_in if role == "in" else self.settled_out
        if key not in settled:
            if kind not in _RESETS[role]:
                self.heads.setdefault(key, []).append((role, kind, wall, offset, line, key, values))
                return
            settled.add(key)
        handler(wall, offset, line, key, values)

    def handler(self, role: str, kind: str):  # noqa: ANN201 - a bound method or None
        """The handler for a (role, kind), resolved once per chunk by the hot loop."""
        return self._handlers.get((role, kind))

    @staticmethod
    def is_reset(role: str, kind: str) -> bool:
        """Whether the event fully decides its key's state (see the module docstring)."""
        return kind in _RESETS[role]

    def feed_resolved(self, handler, reset: bool, settled: set, kind: str,  # noqa: ANN001
                      wall: float | None, offset: int | None, line: int, key: Key, values: tuple) -> None:
        """`feed` with the handler, reset flag and settled set already looked up."""
        if key not in settled:
            if not reset:
                role = "in" if settled is self.settled_in else "out"
                self.heads.setdefault(key, []).append((role, kind, wall, offset, line, key, values))
                return
            settled.add(key)
        handler(wall, offset, line, key, values)

    def close_chunk(self) -> None:
        """Keep the open state for the merge, within the `sweep` bound."""
        self.sweep()
