"""Fold parsed events into inbound sessions and outbound deliveries, with a verdict each.

Inbound (smtpd): one session per ``connect from`` ... ``disconnect from`` of one process, keyed
by (host, process name, pid). Outbound (smtp): one row per delivery status line (one per
recipient); its TLS evidence is the last TLS line of the same process whose peer is the
delivery's relay and that no other queue id has used yet (pitfall 6, 7).

Verdict per row from its own lines (``fold_encryption``; the first that applies wins):

* inbound  ``tls``        a TLS summary line, or ``starttls=N`` (N > 0) in the disconnect counters
           ``tls-failed`` ``starttls=0/N``, ``SSL_accept error``, ``lost connection after STARTTLS``
           ``pending``    closed, counters without ``starttls=`` (plaintext unless implicit TLS), or
                          closed without counters (Postfix < 3.0): settled by `tlslog.settle`
           ``unknown``    cut off (log ends, timeout, pid reused; or it started before the log
                          and has no counters) with no evidence
* outbound ``tls``        TLS line (established or reused), or a TLS verification failure, or a
                          mandatory ``tls=`` level (3.11) on a sent delivery
           ``unknown``    ``relay=none``: no SMTP session was made
           ``tls-failed`` ``SSL_connect error`` or a STARTTLS failure reason
           ``plaintext``  TLS not offered; STARTTLS discarded by ``smtp_discard_ehlo_keywords``;
                          ``conn_use>=2`` (TLS connections are only cached through tlsproxy, which
                          always logs ``reused``); ``tls=...:none``
           ``pending``    no TLS line: settled by `tlslog.settle`

The fold also fills the evidence table of `tlslog.settle` (TLS lines, STARTTLS and
implicit-TLS sessions per stretch of log) and places every row in its stretch (source,
epoch, day).

A session whose next line comes more than ``timeout`` seconds after (or before) its last one
is closed (counted, never kept) and the line starts a new one; `Fold.sweep` bounds the number
of open sessions.

Chunks can be folded in parallel (`ChunkFold`): the events of a key that arrive before the
key's first *reset* event (``connect``; a client TLS line, handshake failure or EHLO keyword
note) are buffered instead of folded, because their meaning depends on the previous chunk.
`tlslog.stitch` replays them into the state carried over and adopts the chunk's `EdgeState`,
which gives exactly the result of one sequential pass.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import schema
from .events import (
    CertVerifyFailed,
    Client,
    Connect,
    Disconnect,
    EhloDiscard,
    Event,
    Key,
    Lost,
    SslError,
    Status,
    TlsAbort,
    TlsLibraryProblem,
    TlsSummary,
    Values,
)
from .fields import (
    attempted_peer,
    commands_succeeded,
    delivery_failure,
    ip_version,
    openssl_reason,
    split_peer,
    starttls_counter,
    tls_feature_verdict,
)
from .settle import PENDING, Evidence

__all__ = ["DEFAULT_TIMEOUT", "MAX_OPEN", "ROW", "ChunkFold", "EdgeState", "Fold", "INBOUND_STATE", "OpenState", "Places"]

DEFAULT_TIMEOUT = 3600.0
#: Open sessions (and smtp connection states) kept at most; only a pathological log (more
#: sessions open at once than any server allows) reaches it.
MAX_OPEN = 100_000

#: The session-table columns of a row as the fold emits it, in tuple order. The final
#: ``encryption``/``evidence`` come later, from `tlslog.settle`.
ROW = (
    "line", "kind", "start", "end", "offset", "host", "service", "pid",
    "peer_name", "peer_ip", "peer_port", "ip_version",
    "fold_encryption", "fold_evidence", "failure_reason",
    "trust", "protocol", "cipher", "cipher_bits", "key_exchange", "sni",
    "queue_ids", "messages", "recipient", "recipient_domain", "relay", "status", "dsn", "conn_use",
    "tls_feature", "sasl_method", "sasl_username", "complete", "source", "epoch", "day",
)  # fmt: skip
if not set(ROW) <= set(schema.names()):  # pragma: no cover - a schema/fold mismatch is a bug
    raise AssertionError(f"fold columns not in the schema: {set(ROW) - set(schema.names())}")

_RESETS = {"in": frozenset({"connect"}),
           "out": frozenset({"tls_summary", "ssl_error", "cert_verify_failed", "ehlo_discard"})}

_TLS_FAILURE_REASONS = (
    "Cannot start TLS",
    "refused to start TLS",
    "while receiving the STARTTLS response",
    "TLS is required, but unavailable",
)
_UNVERIFIED_REASONS = ("Server certificate not verified", "Server certificate not trusted")
_NO_TLS = (None, None, None, None, None, None)


class Places:
    """Where a line sits for settlement: the input it came from and its host's epoch (the
    number of that host's master starts and reloads at or before it).

    A worker knows its chunk (one source, restarts at chunk-local lines); `tlslog.stitch`
    keeps the global one, which learns every source and restart as chunks arrive in order.
    """

    __slots__ = ("restarts", "sources")

    def __init__(self, source: str | None = None) -> None:
        self.sources: list[tuple[int, str | None]] = [(0, source)]
        self.restarts: dict[str | None, list[int]] = {}

    def add_source(self, line: int, name: str | None) -> None:
        """Inputs from ``line`` on come from ``name``."""
        if self.sources[-1][1] != name or self.sources[-1][0] > line:
            if self.sources[-1][0] == line:
                self.sources[-1] = (line, name)
            else:
                self.sources.append((line, name))

    def add_restart(self, host: str | None, line: int) -> None:
        self.restarts.setdefault(host, []).append(line)

    def source(self, line: int) -> str | None:
        sources = self.sources
        if len(sources) == 1:
            return sources[0][1]
        return sources[bisect_right(sources, (line, "\uffff")) - 1][1]

    def epoch(self, host: str | None, line: int) -> int:
        lines = self.restarts.get(host)
        return bisect_right(lines, line) if lines else 0

    def stretch(self, host: str | None, line: int, wall: float | None) -> tuple[str | None, int, int]:
        """(source, epoch, day) of a line (the day: wall-clock days since 1970; -1 unknown)."""
        sources = self.sources
        source = sources[0][1] if len(sources) == 1 else sources[bisect_right(sources, (line, "\uffff")) - 1][1]
        lines = self.restarts.get(host)
        return source, bisect_right(lines, line) if lines else 0, int(wall // 86400) if wall is not None else -1


class _Inbound:
    """An smtpd session being assembled. ``tls`` holds the summary line's
    (trust, protocol, cipher, bits, key exchange, SNI) once it was seen."""

    __slots__ = (
        "line", "start", "last", "offset", "key", "peer", "peer_text", "tls", "counters", "failure", "reason",
        "queue_ids", "sasl", "start_cut", "source", "epoch", "day",
    )  # fmt: skip

    def __init__(self, key: Key, wall: float | None, offset: int | None, line: int, peer: str | None,
                 place: tuple[str | None, int, int], start_cut: bool = False) -> None:
        self.line = line
        self.start = self.last = wall
        self.offset = offset
        self.key = key
        self.peer_text = peer
        self.peer = split_peer(peer)
        self.tls: tuple | None = None
        self.counters: str | None = None
        self.failure: str | None = None  # the evidence name of a TLS failure
        self.reason: str | None = None  # what Postfix said about it
        self.queue_ids: tuple[str, ...] = ()
        self.sasl: tuple[str | None, str | None] = (None, None)
        self.start_cut = start_cut
        self.source, self.epoch, self.day = place

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
                return PENDING, "no-starttls-counter" if commands_succeeded(counters) else "no-commands"
            if not self.start_cut:  # Postfix < 3.0: no counters; a cut-off one may have lost its TLS line
                return PENDING, "no-tls-line"
        return "unknown", "cut-off"


#: The fields of an open session's state in `Fold.open_state`, in order.
INBOUND_STATE: tuple[str, ...] = tuple(_Inbound.__slots__)


class _Conn:
    """What the last TLS-relevant line of an smtp process said about its connection:
    ``kind`` is ``tls``, ``failed`` (handshake), ``unverified`` (certificate check failed)
    or ``discarded`` (STARTTLS dropped from the server's EHLO reply). ``relay`` None: the
    line named no peer, it is the process's next connection."""

    __slots__ = ("kind", "queue_id", "reason", "relay", "tls", "wall")

    def __init__(self, kind: str, relay: str | None, wall: float | None, tls: tuple | None = None,
                 reason: str | None = None) -> None:
        self.kind, self.relay, self.wall, self.tls, self.reason = kind, relay, wall, tls, reason
        self.queue_id: str | None = None

    def __getstate__(self) -> tuple:
        return self.kind, self.queue_id, self.reason, self.relay, self.tls, self.wall

    def __setstate__(self, state: tuple) -> None:
        self.kind, self.queue_id, self.reason, self.relay, self.tls, self.wall = state


#: `Fold.open_state`: {"in": [[key, session state]], "out": [[key, connection state]]}
OpenState = dict[str, Any]
_TUPLE_SLOTS = frozenset({"key", "peer", "tls", "queue_ids", "sasl"})


def _jsonable(state: tuple) -> list:
    return [list(v) if isinstance(v, tuple) else v for v in state]


def _tuples(value: object, slot: str) -> object:
    return tuple(value) if slot in _TUPLE_SLOTS and isinstance(value, list) else value


def _key(values: list) -> Key:
    return (values[0], values[1], values[2])


def _same_relay(tls_peer: str | None, relay: str) -> bool:
    if tls_peer is None or tls_peer == relay:
        return True
    name_a, addr_a, port_a = split_peer(tls_peer)
    name_b, addr_b, port_b = split_peer(relay)
    if addr_a is None:  # 2.2-2.4 clients logged the host name only
        return name_a is not None and name_a == name_b
    return addr_a == addr_b and (port_a is None or port_b is None or port_a == port_b)


Handler = Callable[[float | None, int | None, int, Key, Values], None]


class Fold:
    """The sequential state machine. Feed events in log order; call `finish` at the end.

    Rows go to ``rows`` as tuples in `ROW` order; evidence to ``evidence``.
    """

    def __init__(self, rows: list[tuple] | None = None, *, timeout: float = DEFAULT_TIMEOUT,
                 places: Places | None = None) -> None:
        self.rows: list[tuple] = rows if rows is not None else []
        self.timeout = timeout
        self.places = places or Places()
        self.inbound: dict[Key, _Inbound] = {}
        self.outbound: dict[Key, _Conn] = {}
        self.evidence = Evidence()
        self._handlers: dict[tuple[str, str], Handler] = {
            ("in", "connect"): self._connect,  # type: ignore[dict-item]
            ("in", "disconnect"): self._disconnect,  # type: ignore[dict-item]
            ("in", "tls_summary"): self._in_tls,  # type: ignore[dict-item]
            ("in", "client"): self._client,  # type: ignore[dict-item]
            ("in", "lost"): self._lost,  # type: ignore[dict-item]
            ("in", "tls_abort"): self._tls_abort,  # type: ignore[dict-item]
            ("in", "ssl_error"): self._in_ssl_error,  # type: ignore[dict-item]
            ("in", "tls_library_problem"): self._in_library_problem,  # type: ignore[dict-item]
            ("out", "tls_summary"): self._out_tls,  # type: ignore[dict-item]
            ("out", "ssl_error"): self._out_ssl_error,  # type: ignore[dict-item]
            ("out", "tls_library_problem"): self._out_library_problem,  # type: ignore[dict-item]
            ("out", "cert_verify_failed"): self._out_unverified,  # type: ignore[dict-item]
            ("out", "ehlo_discard"): self._out_ehlo_discard,  # type: ignore[dict-item]
            ("out", "status"): self._status,  # type: ignore[dict-item]
            ("out", "status_damaged"): self._status,  # type: ignore[dict-item]
        }

    # -- entry points ---------------------------------------------------------------------

    def handler(self, role: str, kind: str) -> Handler | None:
        """The handler of a (role, rule), None for a rule that carries no verdict evidence."""
        return self._handlers.get((role, kind))

    def feed(self, role: str, kind: str, wall: float | None, offset: int | None, line: int,
             key: Key, values: Values) -> None:
        """Apply one event: the rule ``kind`` matched a line of ``role`` ``in`` (smtpd) or
        ``out`` (smtp) with these fields."""
        handler = self._handlers.get((role, kind))
        if handler is not None:
            handler(wall, offset, line, key, values)

    def close(self, key: Key) -> None:
        """Close the open session of ``key`` as cut off (its end was not seen)."""
        self._close(key, closed=False)

    def restart(self, host: str | None, line: int) -> None:
        """The master of ``host`` started or reloaded at ``line``: a new epoch (see `tlslog.settle`)."""
        self.places.add_restart(host, line)

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

    def open_state(self) -> OpenState:
        """What is still open, as plain JSON-ready lists: the history store keeps it after an
        ingest (the open edge) and `resume`s the next ingest's fold from it."""
        return {"in": [[list(key), _jsonable(s.__getstate__())] for key, s in self.inbound.items()],
                "out": [[list(key), _jsonable(c.__getstate__())] for key, c in self.outbound.items()]}

    def resume(self, state: OpenState, line_shift: int = 0) -> None:
        """Continue from an `open_state` (its line numbers moved by ``line_shift``): a session
        cut off at the end of one ingest goes on with the next ingest's lines."""
        for key, values in state.get("in", []):
            session = _Inbound.__new__(_Inbound)
            session.__setstate__(tuple(_tuples(v, name) for v, name in zip(values, _Inbound.__slots__)))
            session.line += line_shift
            self.inbound[_key(key)] = session
        for key, values in state.get("out", []):
            conn = _Conn.__new__(_Conn)
            kind, queue_id, reason, relay, tls, wall = values
            conn.__setstate__((kind, queue_id, reason, relay, tuple(tls) if tls is not None else None, wall))
            self.outbound[_key(key)] = conn

    def finish(self) -> list[tuple]:
        """Close everything still open (the log ended) and return all rows."""
        for key in list(self.inbound):
            self._close(key, closed=False)
        self.outbound.clear()
        return self.rows

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
        s = self.inbound[key] = _Inbound(key, wall, offset, line, peer, self.places.stretch(key[0], line, wall),
                                         start_cut=True)
        return s

    def _connect(self, wall: float | None, offset: int | None, line: int, key: Key, values: Connect) -> None:
        if key in self.inbound:
            self._close(key, closed=False)
        self.inbound[key] = _Inbound(key, wall, offset, line, values[0], self.places.stretch(key[0], line, wall))

    def _in_tls(self, wall: float | None, offset: int | None, line: int, key: Key, values: TlsSummary) -> None:
        _, peer, trust, protocol, cipher, bits, key_exchange, sni = values
        s = self._session(key, wall, offset, line, peer)
        s.tls = (trust, protocol, cipher, int(bits), key_exchange, sni)
        self.evidence.flags((s.source, key[0], key[1], s.epoch, s.day)).tls_lines += 1

    def _disconnect(self, wall: float | None, offset: int | None, line: int, key: Key, values: Disconnect) -> None:
        peer, counters = values
        s = self._session(key, wall, offset, line, peer)
        s.counters = counters
        self._close(key, closed=True)

    def _client(self, wall: float | None, offset: int | None, line: int, key: Key, values: Client) -> None:
        queue_id, peer, sasl_method, sasl_username = values
        s = self._session(key, wall, offset, line, peer)
        if queue_id not in s.queue_ids:  # a line read twice (overlapping inputs of the store) is one message
            s.queue_ids += (queue_id,)
        if sasl_method is not None:
            s.sasl = (sasl_method, sasl_username)

    def _lost(self, wall: float | None, offset: int | None, line: int, key: Key, values: Lost) -> None:
        after, peer = values
        s = self._session(key, wall, offset, line, peer)
        if after == "STARTTLS" and s.failure is None:
            s.failure = "lost-after-starttls"
            if s.reason is None:
                s.reason = "lost connection after STARTTLS"

    def _tls_abort(self, wall: float | None, offset: int | None, line: int, key: Key, values: TlsAbort) -> None:
        peer, reason = values
        s = self._session(key, wall, offset, line, peer)
        s.reason = reason

    def _in_ssl_error(self, wall: float | None, offset: int | None, line: int, key: Key, values: SslError) -> None:
        _, peer, error = values
        s = self._session(key, wall, offset, line, peer)
        s.failure = "ssl-accept-error"
        s.reason = f"SSL_accept error: {error}"

    def _in_library_problem(self, wall: float | None, offset: int | None, line: int, key: Key,
                            values: TlsLibraryProblem) -> None:
        s = self.inbound.get(key)  # no peer on this line: only ever a detail of an open session
        if s is not None and (s.reason is None or s.reason.startswith(("SSL_accept error", "lost connection"))):
            s.reason = openssl_reason(values[0])

    def _close(self, key: Key, *, closed: bool) -> None:
        s = self.inbound.pop(key)
        encryption, evidence = s.verdict(closed)
        host, service, pid = key
        if s.counters:
            if " starttls=" in s.counters:
                self.evidence.flags((s.source, host, service, s.epoch, s.day)).starttls += 1
            elif s.tls is not None or s.failure == "ssl-accept-error":
                self.evidence.flags((s.source, host, service, s.epoch, s.day)).implicit += 1
        reason = s.reason
        if reason is None and encryption == "tls-failed" and evidence == "starttls-counter":
            reason = "STARTTLS failed"
        trust, protocol, cipher, bits, key_exchange, sni = s.tls or _NO_TLS
        peer_name, peer_ip, peer_port = s.peer
        self.rows.append((
            s.line, "inbound", s.start, s.last, s.offset, host, service, pid,
            peer_name, peer_ip, peer_port, ip_version(peer_ip),
            encryption, evidence, reason,
            trust, protocol, cipher, bits, key_exchange, sni,
            " ".join(s.queue_ids) or None, len(s.queue_ids), None, None, None, None, None, None,
            None, s.sasl[0], s.sasl[1], closed and not s.start_cut, s.source, s.epoch, s.day,
        ))  # fmt: skip

    # -- outbound ---------------------------------------------------------------------------

    def _out_tls(self, wall: float | None, offset: int | None, line: int, key: Key, values: TlsSummary) -> None:
        _, peer, trust, protocol, cipher, bits, key_exchange, _sni = values
        self.outbound[key] = _Conn("tls", peer, wall, (trust, protocol, cipher, int(bits), key_exchange))
        source, epoch, day = self.places.stretch(key[0], line, wall)
        self.evidence.flags((source, key[0], key[1], epoch, day)).tls_lines += 1

    def _out_ssl_error(self, wall: float | None, offset: int | None, line: int, key: Key, values: SslError) -> None:
        _, peer, error = values
        self.outbound[key] = _Conn("failed", peer, wall, reason=f"SSL_connect error: {error}")

    def _out_library_problem(self, wall: float | None, offset: int | None, line: int, key: Key,
                             values: TlsLibraryProblem) -> None:
        conn = self.outbound.get(key)
        if conn is not None and conn.kind == "failed" and (conn.reason or "").startswith("SSL_connect error"):
            conn.reason = openssl_reason(values[0])

    def _out_unverified(self, wall: float | None, offset: int | None, line: int, key: Key,
                        values: CertVerifyFailed) -> None:
        peer, reason = values
        self.outbound[key] = _Conn("unverified", peer, wall, reason=f"certificate verification failed: {reason}")

    def _out_ehlo_discard(self, wall: float | None, offset: int | None, line: int, key: Key,
                          values: EhloDiscard) -> None:
        if "STARTTLS" in values[0].upper().split():
            self.outbound[key] = _Conn("discarded", None, wall)
        else:
            self.outbound.pop(key, None)  # a new connection, and it says nothing about TLS

    def _status(self, wall: float | None, offset: int | None, line: int, key: Key, values: Status) -> None:
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
        text = reason or ""
        encryption, evidence = _outbound_verdict(used, relay, status, text, tls_feature, uses)
        # relay=none: no session, but the reason names the server that was tried last
        name, addr, port = split_peer(relay if relay != "none" else attempted_peer(reason))
        domain = recipient.rpartition("@")[2].lower() if "@" in recipient else None
        trust = protocol = cipher = bits = key_exchange = None
        if encryption == "tls":
            if used is not None and used.tls is not None:
                trust, protocol, cipher, bits, key_exchange = used.tls
            elif evidence == "certificate-not-verified":
                trust = "Untrusted"
        failure = None
        if used is not None and used.reason is not None:
            failure = used.reason
        elif evidence in ("tls-failure-reason", "starttls-not-offered", "certificate-not-verified"):
            failure = delivery_failure(text)
        start = used.wall if used is not None and used.wall is not None else wall
        source, epoch, day = self.places.stretch(key[0], line, wall)
        self.rows.append((
            line, "outbound", start, wall, offset, key[0], key[1], key[2],
            name, addr, port, ip_version(addr),
            encryption, evidence, failure,
            trust, protocol, cipher, bits, key_exchange, None,
            queue_id, 1 if status == "sent" else 0, recipient, domain, relay, status, dsn, uses,
            tls_feature, None, None, True, source, epoch, day,
        ))  # fmt: skip


def _outbound_verdict(used: _Conn | None, relay: str, status: str, reason: str, tls_feature: str | None,
                      conn_use: int | None) -> tuple[str, str]:
    if used is not None and used.kind == "tls":
        return "tls", "tls-line"
    if (used is not None and used.kind == "unverified") or reason.startswith(_UNVERIFIED_REASONS):
        return "tls", "certificate-not-verified"
    if relay == "none":
        return "unknown", "no-connection"
    if used is not None and used.kind == "discarded":
        return "plaintext", "starttls-discarded"
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
    return PENDING, "no-tls-line"


@dataclass
class EdgeState:
    """What a chunk folded on its own hands to `tlslog.stitch`: a plain, picklable value.

    ``heads``: per key, the events before the key's first reset (their meaning depends on
    the state before the chunk), in order. ``settled_in``/``settled_out``: keys whose state the
    chunk decided (a reset was seen): their state at the chunk's end is ``inbound``/
    ``outbound`` (absent: nothing open). ``restarts``: (chunk line, host) of master starts.
    """

    heads: dict[Key, list[Event]] = field(default_factory=dict)
    settled_in: set[Key] = field(default_factory=set)
    settled_out: set[Key] = field(default_factory=set)
    inbound: dict[Key, _Inbound] = field(default_factory=dict)
    outbound: dict[Key, _Conn] = field(default_factory=dict)
    restarts: list[tuple[int, str | None]] = field(default_factory=list)


class ChunkFold(Fold):
    """A `Fold` over one chunk of a longer log; `edge` is what it leaves to the stitcher."""

    def __init__(self, rows: list[tuple] | None = None, *, timeout: float = DEFAULT_TIMEOUT,
                 source: str | None = None) -> None:
        super().__init__(rows, timeout=timeout, places=Places(source))
        self.heads: dict[Key, list[Event]] = {}
        self.settled_in: set[Key] = set()
        self.settled_out: set[Key] = set()
        self._restarts: list[tuple[int, str | None]] = []

    def feed(self, role: str, kind: str, wall: float | None, offset: int | None, line: int,
             key: Key, values: Values) -> None:
        handler = self._handlers.get((role, kind))
        if handler is None:
            return
        self.feed_resolved(handler, kind in _RESETS[role], self.settled_in if role == "in" else self.settled_out,
                           role, kind, wall, offset, line, key, values)

    def restart(self, host: str | None, line: int) -> None:
        super().restart(host, line)
        self._restarts.append((line, host))

    @staticmethod
    def is_reset(role: str, kind: str) -> bool:
        """Whether the event fully decides its key's state (see the module docstring)."""
        return kind in _RESETS[role]

    def feed_resolved(self, handler: Handler, reset: bool, settled: set[Key], role: str, kind: str,
                      wall: float | None, offset: int | None, line: int, key: Key, values: Values) -> None:
        """`feed` with the handler, reset flag and settled set already looked up (hot path)."""
        if key not in settled:
            if not reset:
                self.heads.setdefault(key, []).append(Event(role, kind, wall, offset, line, key, values))
                return
            settled.add(key)
        handler(wall, offset, line, key, values)

    def edge(self) -> EdgeState:
        """The state at the chunk's edges (within the `sweep` bound). The fold is done then: its
        handler table (bound methods, a reference cycle) is dropped so that the chunk's rows and
        state are freed at once, not at the next full garbage collection."""
        self.sweep()
        self._handlers = {}
        return EdgeState(self.heads, self.settled_in, self.settled_out, self.inbound, self.outbound,
                         self._restarts)
