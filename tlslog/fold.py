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

State is bounded: a session idle longer than ``timeout`` seconds is closed (counted, never
kept), and `Fold.sweep` drops state idle for twice that.

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

__all__ = ["COLUMNS", "ChunkFold", "Fold", "ServiceEvidence", "Sessions"]

Key = tuple  # (host, process name, pid)
Event = tuple  # (role, kind, wall, offset, line, key, fields)

DEFAULT_TIMEOUT = 3600.0

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
    """Finished rows, stored column by column (cheap to pickle, cheap to turn into pandas)."""

    def __init__(self) -> None:
        self.columns: dict[str, list] = {name: [] for name in COLUMNS}

    def __len__(self) -> int:
        return len(self.columns["line"])

    def append(self, row: dict) -> None:
        for name, values in self.columns.items():
            values.append(row.get(name))

    def extend(self, other: Sessions, line_base: int = 0) -> None:
        for name, values in self.columns.items():
            if name == "line" and line_base:
                values.extend(n + line_base for n in other.columns[name])
            else:
                values.extend(other.columns[name])


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


class _Inbound:
    """An smtpd session being assembled."""

    __slots__ = (
        "line", "start", "last", "offset", "host", "service", "pid", "peer_name", "peer_ip", "peer_port",
        "tls", "trust", "protocol", "cipher", "bits", "key_exchange", "sni", "counters_seen", "starttls",
        "commands_ok", "failure", "queue_ids", "sasl_method", "sasl_username", "start_cut",
    )  # fmt: skip

    def __init__(self, key: Key, wall: float | None, offset: int | None, line: int, peer: str | None) -> None:
        self.line = line
        self.start = self.last = wall
        self.offset = offset
        self.host, self.service, self.pid = key
        self.peer_name, self.peer_ip, self.peer_port = split_peer(peer)
        self.tls = False
        self.trust = self.protocol = self.cipher = self.bits = self.key_exchange = self.sni = None
        self.counters_seen = False
        self.starttls: tuple[int, int] | None = None
        self.commands_ok = False
        self.failure: str | None = None
        self.queue_ids: list[str] = []
        self.sasl_method = self.sasl_username = None
        self.start_cut = False

    def verdict(self, closed: bool) -> tuple[str, str]:
        if self.tls:
            return "tls", "tls-line"
        if self.starttls is not None and self.starttls[0] > 0:
            return "tls", "starttls-counter"
        if self.starttls is not None:
            return "tls-failed", "starttls-counter"
        if self.failure is not None:
            return "tls-failed", self.failure
        if closed:
            if self.counters_seen:
                return "nostarttls", "no-starttls-counter" if self.commands_ok else "no-commands"
            return "nolog", "no-tls-line"
        return "unknown", "cut-off"


@dataclass
class _Conn:
    """What the last TLS-relevant line of an smtp process said about its connection."""

    kind: str  # "tls", "failed" (handshake), "unverified" (certificate check failed)
    relay: str
    wall: float | None
    fields: dict = field(repr=False)
    queue_id: str | None = None


def _tls_columns(f: dict) -> dict:
    bits = f.get("usebits")
    return {
        "trust": f.get("trust"),
        "protocol": f.get("protocol"),
        "cipher": f.get("cipher"),
        "cipher_bits": int(bits) if bits else None,
        "key_exchange": f.get("key_exchange"),
    }


def _same_relay(tls_peer: str, relay: str) -> bool:
    if tls_peer == relay:
        return True
    name_a, addr_a, port_a = split_peer(tls_peer)
    name_b, addr_b, port_b = split_peer(relay)
    if addr_a is None:  # 2.2-2.4 clients logged the host name only
        return name_a is not None and name_a == name_b
    return addr_a == addr_b and (port_a is None or port_b is None or port_a == port_b)


class Fold:
    """The sequential state machine. Feed events in log order; call `finish` at the end."""

    def __init__(self, sink: Sessions | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.sink = sink if sink is not None else Sessions()
        self.timeout = timeout
        self.inbound: dict[Key, _Inbound] = {}
        self.outbound: dict[Key, _Conn] = {}
        self.services = ServiceEvidence()
        self.latest: float | None = None
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
             key: Key, f: dict) -> None:
        """Apply one event. ``role`` is ``in`` (smtpd) or ``out`` (smtp)."""
        if wall is not None and (self.latest is None or wall > self.latest):
            self.latest = wall
        handler = self._handlers.get((role, kind))
        if handler is not None:
            handler(wall, offset, line, key, f)
        elif role == "in":
            self._session(key, wall, offset, line, None, create=False)

    def sweep(self) -> None:
        """Close sessions and forget connections idle for more than twice the timeout."""
        if self.latest is None:
            return
        horizon = self.latest - 2 * self.timeout
        for key in [k for k, s in self.inbound.items() if s.last is not None and s.last < horizon]:
            self._close(key, closed=False)
        for key in [k for k, c in self.outbound.items() if c.wall is not None and c.wall < horizon]:
            del self.outbound[key]

    def finish(self) -> Sessions:
        """Close everything still open (the log ended) and return all rows."""
        for key in list(self.inbound):
            self._close(key, closed=False)
        self.outbound.clear()
        return self.sink

    def merge(self, chunk: ChunkFold, line_base: int) -> None:
        """Continue this fold with a chunk folded on its own (see the module docstring)."""
        self.sink.extend(chunk.sink, line_base)
        self.services.update(chunk.services)
        for events in chunk.heads.values():
            for role, kind, wall, offset, line, key, f in events:
                self.feed(role, kind, wall, offset, line + line_base, key, f)
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
        if chunk.latest is not None and (self.latest is None or chunk.latest > self.latest):
            self.latest = chunk.latest

    # -- inbound ----------------------------------------------------------------------------

    def _session(self, key: Key, wall: float | None, offset: int | None, line: int, peer: str | None,
                 *, create: bool) -> _Inbound | None:
        s = self.inbound.get(key)
        if s is not None:
            stale = wall is not None and s.last is not None and wall - s.last > self.timeout
            if not stale and peer is not None and s.peer_ip is not None:
                stale = split_peer(peer)[1] not in (None, s.peer_ip)  # pid reused, lines lost
            if stale:
                self._close(key, closed=False)
                s = None
        if s is None:
            if not create:
                return None
            s = self.inbound[key] = _Inbound(key, wall, offset, line, peer)
            s.start_cut = True
        elif wall is not None:
            s.last = wall
        return s

    def _connect(self, wall, offset, line, key, f):  # noqa: ANN001 - handler signature
        if key in self.inbound:
            self._close(key, closed=False)
        self.inbound[key] = _Inbound(key, wall, offset, line, f["peer"])

    def _in_tls(self, wall, offset, line, key, f):  # noqa: ANN001
        s = self._session(key, wall, offset, line, f["peer"], create=True)
        s.tls = True
        s.trust, s.protocol, s.cipher = f["trust"], f["protocol"], f["cipher"]
        s.bits = int(f["usebits"])
        s.key_exchange, s.sni = f["key_exchange"], f["sni"]
        self.services.tls_logging.add((key[0], key[1]))

    def _disconnect(self, wall, offset, line, key, f):  # noqa: ANN001
        s = self._session(key, wall, offset, line, f["peer"], create=True)
        counters = f["counters"]
        if counters:
            s.counters_seen = True
            s.starttls = starttls_counter(counters)
            s.commands_ok = commands_succeeded(counters)
        self._close(key, closed=True)

    def _client(self, wall, offset, line, key, f):  # noqa: ANN001
        s = self._session(key, wall, offset, line, f["peer"], create=True)
        s.queue_ids.append(f["queue_id"])
        if f["sasl_method"] is not None:
            s.sasl_method, s.sasl_username = f["sasl_method"], f["sasl_username"]

    def _lost(self, wall, offset, line, key, f):  # noqa: ANN001
        s = self._session(key, wall, offset, line, f["peer"], create=True)
        if f["after"] == "STARTTLS" and s.failure is None:
            s.failure = "lost-after-starttls"

    def _in_ssl_error(self, wall, offset, line, key, f):  # noqa: ANN001
        s = self._session(key, wall, offset, line, f["peer"], create=True)
        s.failure = "ssl-accept-error"

    def _close(self, key: Key, *, closed: bool) -> None:
        s = self.inbound.pop(key)
        encryption, evidence = s.verdict(closed)
        if s.starttls is not None:
            self.services.starttls.add((s.host, s.service))
        elif s.tls and s.counters_seen:
            self.services.implicit_tls.add((s.host, s.service))
        tls = s.tls
        self.sink.append({
            "line": s.line, "kind": "inbound", "start": s.start, "end": s.last, "offset": s.offset,
            "host": s.host, "service": s.service, "pid": s.pid,
            "peer_name": s.peer_name, "peer_ip": s.peer_ip, "peer_port": s.peer_port,
            "ip_version": ip_version(s.peer_ip),
            "encryption": encryption, "evidence": evidence,
            "trust": s.trust if tls else None, "protocol": s.protocol, "cipher": s.cipher,
            "cipher_bits": s.bits, "key_exchange": s.key_exchange, "sni": s.sni,
            "queue_ids": tuple(s.queue_ids), "sasl_method": s.sasl_method, "sasl_username": s.sasl_username,
            "complete": closed and not s.start_cut,
        })  # fmt: skip

    # -- outbound ---------------------------------------------------------------------------

    def _out_tls(self, wall, offset, line, key, f):  # noqa: ANN001
        self.outbound[key] = _Conn("tls", f["peer"], wall, f)
        self.services.tls_logging.add((key[0], key[1]))

    def _out_ssl_error(self, wall, offset, line, key, f):  # noqa: ANN001
        self.outbound[key] = _Conn("failed", f["peer"], wall, f)

    def _out_unverified(self, wall, offset, line, key, f):  # noqa: ANN001
        self.outbound[key] = _Conn("unverified", f["peer"], wall, f)

    def _status(self, wall, offset, line, key, f):  # noqa: ANN001
        relay = f["relay"] or "none"
        queue_id = f["queue_id"]
        conn = self.outbound.get(key)
        used: _Conn | None = None
        if conn is not None:
            if wall is not None and conn.wall is not None and wall - conn.wall > self.timeout:
                del self.outbound[key]
            elif _same_relay(conn.relay, relay):
                if conn.queue_id is None or conn.queue_id == queue_id:
                    conn.queue_id = queue_id
                    used = conn
                else:
                    del self.outbound[key]  # a later delivery: that connection is gone
        status = f["status"]
        encryption, evidence = _outbound_verdict(used, relay, status, f)
        conn_use = f["conn_use"]
        # relay=none: no session, but the reason names the server that was tried last
        name, addr, port = split_peer(relay if relay != "none" else attempted_peer(f["reason"]))
        recipient = f["recipient"]
        domain = recipient.rpartition("@")[2].lower() if "@" in recipient else None
        row = {
            "line": line, "kind": "outbound", "start": used.wall if used and used.wall is not None else wall,
            "end": wall, "offset": offset, "host": key[0], "service": key[1], "pid": key[2],
            "peer_name": name, "peer_ip": addr, "peer_port": port, "ip_version": ip_version(addr),
            "encryption": encryption, "evidence": evidence,
            "queue_ids": (queue_id,), "recipient": recipient, "recipient_domain": domain, "relay": relay,
            "status": status, "dsn": f["dsn"], "conn_use": int(conn_use) if conn_use and conn_use.isdigit() else None,
            "tls_feature": f["tls_feature"], "complete": True,
        }  # fmt: skip
        if encryption == "tls":
            if used is not None and used.kind == "tls":
                row.update(_tls_columns(used.fields))
            elif evidence == "certificate-not-verified":
                row["trust"] = "Untrusted"
        self.sink.append(row)


def _outbound_verdict(used: _Conn | None, relay: str, status: str, f: dict) -> tuple[str, str]:
    reason = f["reason"] or ""
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
    feature = tls_feature_verdict(f["tls_feature"], status)
    if feature is not None:
        return feature, "tls-feature"
    conn_use = f["conn_use"]
    if conn_use and conn_use.isdigit() and int(conn_use) >= 2:
        return "plaintext", "cached-connection"
    return "nolog", "no-tls-line"


class ChunkFold(Fold):
    """A `Fold` over one chunk of a longer log, to be merged in order by `Fold.merge`."""

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(timeout=timeout)
        self.heads: dict[Key, list[Event]] = {}
        self.settled_in: set[Key] = set()
        self.settled_out: set[Key] = set()

    def feed(self, role: str, kind: str, wall: float | None, offset: int | None, line: int,
             key: Key, f: dict) -> None:
        settled = self.settled_in if role == "in" else self.settled_out
        if key not in settled:
            if kind not in _RESETS[role]:
                self.heads.setdefault(key, []).append((role, kind, wall, offset, line, key, f))
                return
            settled.add(key)
        super().feed(role, kind, wall, offset, line, key, f)

    def close_chunk(self) -> None:
        """Keep open state for the merge; only drop what `sweep` would drop anyway."""
        self.sweep()
