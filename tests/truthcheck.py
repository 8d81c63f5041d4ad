"""Compare tlslog's per-session export with the ground truth of a real Postfix run.

Stdlib only, no I/O: callers load the rows themselves. Two inputs:

* truth rows (``truth.jsonl`` of the realpostfix harness or of ``tests/e2e``): one row per SMTP session the
  driver made (``direction == "in"``) and one per recipient of every message relayed out
  (``direction == "out"``), with the expectations and the join keys ``log_queue_id`` / ``log_sink_queue_id``;
* exported sessions (``tlslog sessions FILE --format jsonl``, one dict per line).

Items (what is checked)
  1. every ``in`` row: a session on one of the driver's listeners;
  2. every ``out`` row whose message was queued (``log_queue_id``): the delivery ``(queue id, rcpt)``;
  3. sink items: the loopback sinks that receive relayed mail are inbound sessions too. An ``out`` row that
     names the sink's queue id (``log_sink_queue_id``) gives one item per distinct sink queue id
     (id ``<out id>:sink``). A *failed* delivery leaves no sink queue id; it still gives a sink item when the
     driver observed the delivery attempt inside the row's ``start``..``end`` (``delivery_observed``), so the
     item can be matched by time (rows of the older realpostfix samples lack that and are not covered).

Matching (never by verdict, so a wrong verdict cannot hide a session)
  * item with a queue id: the inbound session whose ``queue_ids`` contains it; outbound: the record with
    ``queue_ids[0] == log_queue_id`` and ``recipient == rcpt`` (the earliest if retried). No time fallback.
  * item without one: among inbound sessions not yet claimed, same service and peer IP, start inside
    [start - 2 s, end + 3 s] (syslog stamps have whole seconds and no year), the earliest. Items are taken
    in start order, so sessions that follow one another from one address pair up in order.

Expected values (truth -> export), one tuple of accepted values per field
  encryption, inbound: ``tls_expected`` -> tls; STARTTLS (or implicit TLS) without it -> tls-failed;
    otherwise plaintext. Outbound: ``tls_expected`` -> tls (a certificate that fails verification happens
    after the handshake: still tls, trust Untrusted); handshake failure -> tls-failed; TLS required but not
    offered -> plaintext or tls-failed; connection refused -> unknown; otherwise plaintext.
  trust, protocol: the expected values when the session is tls, else null. Sink items: the sink's view
    (``sink_expected_trust``). cipher: ``expected_cipher``, or any string when the truth leaves it to the
    library. cipher_bits: 256/128 read off the cipher name, else any int; null without TLS.
  ``tls_loglevel`` is read per row (the level in effect for that session: a log may change it with a
    reload; a row without one is level 1, as in the older realpostfix samples). Levels 1 to 4 are checked
    alike: they all log the same summary lines (2 to 4 only add OpenSSL state, certificate and hex-dump
    lines). Any other value is an error (ValueError), never a silent default.
  ``tls_loglevel == 0``: no "TLS connection established" lines exist, so trust/protocol/cipher/bits may be
    null; inbound encryption stays strict (the ``disconnect ... starttls=`` counter shows it) except
    implicit TLS (no counter: unknown accepted); outbound encryption may be unknown (a successful client
    STARTTLS leaves no trace at loglevel 0). Rows at level >= 1 accept none of these, also when other
    parts of the same log are at level 0.
  kind, service (from ``listener`` / ``sink``), peer_ip, peer_name (inbound; "unknown" or null),
  peer_port (outbound), ip_version, queue_ids (inbound: contains the queue id, or empty when no message
  was sent), recipient, recipient_domain, status (sent/deferred), dsn, relay, start (inside the window).
  Not compared: host, pid, end, inbound peer_port.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ANY_INT", "ANY_STR", "CheckResult", "Mismatch", "Totals", "check", "compare_totals",
           "expected_totals", "export_totals", "format_mismatches", "report_totals"]

SERVICE_OF_LISTENER = {"smtpd": "postfix/smtpd", "ccert": "postfix/ccert/smtpd",
                       "submission": "postfix/submission/smtpd", "msa": "postfix/msa/smtpd",
                       "smtps": "postfix/smtps/smtpd"}
DSN_OF_OUTCOME = {"sent": "2.0.0", "deferred_cert_not_trusted": "4.7.5",
                  "deferred_tls_handshake_failure": "4.7.5", "deferred_tls_not_offered": "4.7.4",
                  "deferred_connection_refused": "4.4.1"}
# What the sink itself saw when the delivery failed: TLS up then QUIT, failed handshake, no STARTTLS offered.
SINK_ENCRYPTION_OF_FAILED = {"deferred_cert_not_trusted": "tls",
                             "deferred_tls_handshake_failure": "tls-failed",
                             "deferred_tls_not_offered": "plaintext"}
TLS_DETAIL_FIELDS = ("trust", "protocol", "cipher", "cipher_bits")
CATEGORIES = ("tls", "plaintext", "tls_failed", "unknown")
EARLY, LATE = dt.timedelta(seconds=2), dt.timedelta(seconds=3)


class _Wildcard:
    """An accepted value that matches any non-empty value of one type."""

    def __init__(self, label: str, kind: type) -> None:
        self.label, self.kind = label, kind

    def accepts(self, got: Any) -> bool:
        if not isinstance(got, self.kind) or isinstance(got, bool):
            return False
        return bool(got != "")

    def __repr__(self) -> str:
        return self.label


ANY_STR = _Wildcard("<any string>", str)
ANY_INT = _Wildcard("<any int>", int)
Accepted = tuple[Any, ...]


@dataclass(frozen=True)
class Mismatch:
    """One disagreement: which truth item (or report section), which field, what was expected and got."""

    id: str
    field: str
    expected: str
    got: str


@dataclass
class _Item:
    id: str
    type: str  # "in", "out" or "sink"
    expected: dict[str, Accepted]
    queue_id: str | None = None
    delivery_key: tuple[str, str] | None = None
    service: str | None = None
    peer_ip: str | None = None
    window: tuple[dt.datetime, dt.datetime] | None = None
    had_message: bool = True


@dataclass
class CheckResult:
    """Outcome of :func:`check`; ``ok`` when every item was found and agreed on every field."""

    matched: int = 0
    mismatched: int = 0
    missing: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    items: dict[str, int] = field(default_factory=dict)  # item type -> count
    uncovered: dict[str, int] = field(default_factory=dict)  # "kind:service" -> exported sessions no item claimed

    @property
    def ok(self) -> bool:
        return not self.mismatched and not self.missing

    def summary(self) -> str:
        return f"sessions: {self.matched} matched, {self.mismatched} mismatched, {self.missing} missing"

    def format(self, max_rows: int = 200) -> str:
        """The mismatch table (up to ``max_rows``; 0 leaves it out), item counts, uncovered sessions, summary."""
        items = ", ".join(f"{n} {t}" for t, n in sorted(self.items.items())) or "none"
        uncovered = ", ".join(f"{k}={n}" for k, n in sorted(self.uncovered.items())) or "none"
        parts = [format_mismatches(self.mismatches, max_rows)] if self.mismatches and max_rows > 0 else []
        parts += [f"truth items: {items}", f"not covered by truth (informational): {uncovered}", self.summary()]
        return "\n".join(parts)


def format_mismatches(mismatches: Sequence[Mismatch], max_rows: int = 200) -> str:
    """Render mismatches as an aligned table: id, field, expected, got."""
    head = Mismatch("id", "field", "expected", "got")
    shown = list(mismatches[:max_rows])
    widths = [min(40, max(len(getattr(m, f)) for m in [head, *shown])) for f in ("id", "field", "expected")]
    lines = [f"{m.id:<{widths[0]}}  {m.field:<{widths[1]}}  {m.expected:<{widths[2]}}  {m.got}"
             for m in [head, *shown]]
    if len(mismatches) > max_rows:
        lines.append(f"... {len(mismatches) - max_rows} more rows")
    return "\n".join(lines)


# ---------------------------------------------------------------- small value helpers

def _timestamp(value: Any) -> dt.datetime | None:
    """Parse ISO 8601, dropping the zone: truth and log are both local time of one machine."""
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        return None


def _in_year_of(stamp: dt.datetime, ref: dt.datetime) -> dt.datetime:
    """Syslog lines carry no year, so the exporter's guess is replaced by the truth's year."""
    try:
        return stamp.replace(year=ref.year)
    except ValueError:  # 29 February
        return stamp


def _ip(value: Any) -> Any:
    try:
        return str(ipaddress.ip_address(str(value).strip("[]")))
    except ValueError:
        return value


def _bits_of(cipher: str | None) -> int | None:
    name = (cipher or "").upper()
    if any(s in name for s in ("AES256", "AES_256", "CHACHA20")):
        return 256
    if any(s in name for s in ("AES128", "AES_128")):
        return 128
    return None


def _render(accepted: Any) -> str:
    if isinstance(accepted, tuple) and len(accepted) == 1:
        accepted = accepted[0]
    if isinstance(accepted, tuple):
        return " | ".join(_render(a) for a in accepted)
    return repr(accepted) if isinstance(accepted, _Wildcard) else json.dumps(accepted)


def _accepts(accepted: Accepted, got: Any, name: str) -> bool:
    for want in accepted:
        if isinstance(want, _Wildcard):
            if want.accepts(got):
                return True
        elif name == "peer_ip" and want is not None and got is not None:
            if _ip(got) == want:
                return True
        elif name == "peer_name" and isinstance(want, str) and isinstance(got, str):
            if got.lower() == want:
                return True
        elif want == got and type(want) is type(got):
            return True
    return False


def _window(row: Mapping[str, Any]) -> tuple[dt.datetime, dt.datetime] | None:
    start = _timestamp(row.get("start"))
    if start is None:
        return None
    return start, _timestamp(row.get("end")) or start


# ---------------------------------------------------------------- expectations

def _tls_details(tls: bool, trust: str | None, protocol: str | None, cipher: str | None,
                 loglevel0: bool) -> dict[str, Accepted]:
    if not tls:
        return {f: (None,) for f in TLS_DETAIL_FIELDS}
    bits = _bits_of(cipher)
    details: dict[str, Accepted] = {"trust": (trust,), "protocol": (protocol,),
                                    "cipher": (cipher,) if cipher else (ANY_STR,),
                                    "cipher_bits": (bits,) if bits else (ANY_INT,)}
    if loglevel0:  # no TLS summary line at loglevel 0: these details may be absent
        details = {f: (*v, None) for f, v in details.items()}
    return details


TLS_LOGLEVELS = (0, 1, 2, 3, 4)  # smtpd_tls_loglevel / smtp_tls_loglevel values Postfix documents


def _loglevel(row: Mapping[str, Any]) -> int:
    """The TLS log level in effect for this row's session (1 when the row does not say)."""
    level = row.get("tls_loglevel", 1)
    if not isinstance(level, int) or isinstance(level, bool) or level not in TLS_LOGLEVELS:
        raise ValueError(f"truth row {row.get('id')!r}: tls_loglevel {level!r} is not one of {TLS_LOGLEVELS}")
    return int(level)


def _loglevel0(row: Mapping[str, Any]) -> bool:
    return _loglevel(row) == 0


def _inbound_encryption(row: Mapping[str, Any]) -> Accepted:
    implicit = bool(row.get("implicit_tls"))
    verdict = ("tls" if row["tls_expected"]
               else "tls-failed" if row.get("starttls") or implicit else "plaintext")
    return (verdict, "unknown") if implicit and _loglevel0(row) else (verdict,)


def _outbound_encryption(row: Mapping[str, Any]) -> Accepted:
    outcome = row["outcome"]
    if row["tls_expected"]:
        verdicts: Accepted = ("tls",)
    elif outcome == "deferred_tls_handshake_failure":
        verdicts = ("tls-failed",)
    elif outcome == "deferred_tls_not_offered":
        verdicts = ("plaintext", "tls-failed")
    elif outcome == "deferred_connection_refused":
        verdicts = ("unknown",)
    else:
        verdicts = ("plaintext",)
    return (*verdicts, "unknown") if _loglevel0(row) and "unknown" not in verdicts else verdicts


def _sink_encryption(row: Mapping[str, Any]) -> str | None:
    """The sink's verdict for the connection of this delivery; None when no SMTP session reached it."""
    if not row.get("sink") or row["outcome"] == "deferred_connection_refused":
        return None
    if row["outcome"] in SINK_ENCRYPTION_OF_FAILED:
        return SINK_ENCRYPTION_OF_FAILED[row["outcome"]]
    return "tls" if row["tls_expected"] else "plaintext"


def _peer_name(name: str | None) -> Accepted:
    name = (name or "unknown").lower()
    return (name, None) if name == "unknown" else (name,)


def _status(outcome: str) -> str:
    return "deferred" if outcome.startswith("deferred") else outcome


def _inbound_item(row: Mapping[str, Any]) -> _Item:
    service = SERVICE_OF_LISTENER.get(row["listener"], row["listener"])
    encryption = _inbound_encryption(row)
    expected = {"kind": ("inbound",), "service": (service,), "peer_ip": (_ip(row["client_ip"]),),
                "peer_name": _peer_name(row.get("client_name")), "ip_version": (row["ip_version"],),
                "encryption": encryption,
                **_tls_details(encryption[0] == "tls", row.get("expected_trust"), row.get("expected_protocol"),
                               row.get("expected_cipher"), _loglevel0(row))}
    return _Item(id=row["id"], type="in", expected=expected, queue_id=row.get("log_queue_id"),
                 service=service, peer_ip=_ip(row["client_ip"]), window=_window(row),
                 had_message=bool(row.get("message_id")))


def _outbound_item(row: Mapping[str, Any]) -> _Item:
    outcome, ip, port = row["outcome"], row["server_ip"], row["server_port"]
    refused = outcome == "deferred_connection_refused"
    relay = row.get("expected_relay") or ("none" if refused else f"{ip}[{ip}]:{port}")
    expected = {"kind": ("outbound",), "service": ("postfix/smtp",), "encryption": _outbound_encryption(row),
                "recipient": (row["rcpt"],), "recipient_domain": (row.get("dest_domain"),),
                "status": (_status(outcome),), "relay": (relay,),
                "peer_ip": (_ip(ip), None) if refused else (_ip(ip),),
                "peer_port": (port, None) if refused else (port,), "ip_version": (row["ip_version"],),
                **_tls_details(row["tls_expected"], row.get("expected_trust"), row.get("expected_protocol"),
                               row.get("expected_cipher"), _loglevel0(row))}
    if outcome in DSN_OF_OUTCOME:
        expected["dsn"] = (DSN_OF_OUTCOME[outcome],)
    window = _window(row) if row.get("delivery_observed") else None
    return _Item(id=row["id"], type="out", expected=expected, delivery_key=(row["log_queue_id"], row["rcpt"]),
                 window=window)


def _sink_item(row: Mapping[str, Any], encryption: str) -> _Item:
    service = row["sink"] + "/smtpd"
    expected = {"kind": ("inbound",), "service": (service,), "peer_ip": (_ip(row["client_ip"]),),
                "ip_version": (row["ip_version"],), "encryption": (encryption,),
                "peer_name": _peer_name(row.get("sink_expected_client_name")),
                **_tls_details(encryption == "tls", row.get("sink_expected_trust"), row.get("expected_protocol"),
                               row.get("expected_cipher"), _loglevel0(row))}
    queue_id = row.get("log_sink_queue_id")
    window = None if queue_id else _window(row)
    return _Item(id=row["id"] + ":sink", type="sink", expected=expected, queue_id=queue_id,
                 service=service, peer_ip=_ip(row["client_ip"]), window=window, had_message=bool(queue_id))


def _items(rows: Iterable[Mapping[str, Any]]) -> list[_Item]:
    items: list[_Item] = []
    sinks_seen: set[tuple[str, ...]] = set()
    for row in rows:
        if row["direction"] == "in":
            items.append(_inbound_item(row))
            continue
        if not row.get("log_queue_id"):
            continue  # never queued: no delivery can exist
        items.append(_outbound_item(row))
        encryption = _sink_encryption(row)
        if encryption and _sink_matchable(row):
            # one item per sink message; a failed message (no sink queue id) is one attempt per sink
            key = (row["log_sink_queue_id"],) if row.get("log_sink_queue_id") else (row["log_queue_id"], row["sink"])
            if key not in sinks_seen:
                sinks_seen.add(key)
                items.append(_sink_item(row, encryption))
    return items


def _sink_matchable(row: Mapping[str, Any]) -> bool:
    """A sink session can be found by its queue id, or for a failed delivery by the observed time window."""
    if row.get("log_sink_queue_id"):
        return True
    return (bool(row.get("delivery_observed")) and _window(row) is not None
            and row["outcome"] in SINK_ENCRYPTION_OF_FAILED)


# ---------------------------------------------------------------- matching

def _pair(items: list[_Item], sessions: list[dict[str, Any]]) -> dict[str, int]:
    """Map item id -> index of its exported session (by queue id first, then by service, peer IP and time)."""
    by_queue_id: dict[str, int] = {}
    by_delivery: dict[tuple[Any, Any], int] = {}
    in_time_order = sorted(range(len(sessions)), key=lambda i: (str(sessions[i].get("start")), i))
    for i in in_time_order:
        s = sessions[i]
        if s.get("kind") == "inbound":
            for queue_id in s.get("queue_ids") or []:
                by_queue_id.setdefault(queue_id, i)
        elif s.get("kind") == "outbound":
            by_delivery.setdefault(((s.get("queue_ids") or [None])[0], s.get("recipient")), i)
    found: dict[str, int] = {}
    for it in items:
        if it.type == "out":
            index = by_delivery.get(it.delivery_key or (None, None))
        else:
            index = by_queue_id.get(it.queue_id or "")
        if index is not None:
            found[it.id] = index
    claimed = set(found.values())
    candidates: dict[tuple[Any, Any], list[int]] = {}
    for i in in_time_order:
        if sessions[i].get("kind") == "inbound":
            candidates.setdefault((sessions[i].get("service"), _ip(sessions[i].get("peer_ip"))), []).append(i)
    by_time = sorted(((it, it.window) for it in items if it.type != "out" and not it.queue_id and it.window),
                     key=lambda pair: pair[1][0])
    for it, window in by_time:
        for i in candidates.get((it.service, it.peer_ip), []):
            if i not in claimed and _starts_in(sessions[i], window):
                found[it.id] = i
                claimed.add(i)
                break
    return found


def _starts_in(session: Mapping[str, Any], window: tuple[dt.datetime, dt.datetime]) -> bool:
    start = _timestamp(session.get("start"))
    if start is None:
        return False
    return window[0] - EARLY <= _in_year_of(start, window[0]) <= window[1] + LATE


def _field_mismatches(it: _Item, session: Mapping[str, Any]) -> list[Mismatch]:
    bad = [Mismatch(it.id, name, _render(accepted), _render(session.get(name)))
           for name, accepted in it.expected.items() if not _accepts(accepted, session.get(name), name)]
    if it.type != "out":
        queue_ids = session.get("queue_ids") or []
        if it.queue_id and it.queue_id not in queue_ids:
            bad.append(Mismatch(it.id, "queue_ids", f"contains {it.queue_id}", _render(queue_ids)))
        elif not it.queue_id and not it.had_message and queue_ids:
            bad.append(Mismatch(it.id, "queue_ids", "[]", _render(queue_ids)))
    if it.window and not _starts_in(session, it.window):
        lo, hi = it.window[0] - EARLY, it.window[1] + LATE
        bad.append(Mismatch(it.id, "start", f"{lo:%Y-%m-%dT%H:%M:%S}..{hi:%Y-%m-%dT%H:%M:%S}",
                            _render(session.get("start"))))
    return bad


def check(rows: Sequence[Mapping[str, Any]], sessions: Sequence[Mapping[str, Any]]) -> CheckResult:
    """Match every truth item to an exported session and compare field by field (rules: module docstring)."""
    items = _items(rows)
    exported = [dict(s) for s in sessions]
    found = _pair(items, exported)
    result = CheckResult()
    for it in items:
        result.items[it.type] = result.items.get(it.type, 0) + 1
        if it.id not in found:
            result.missing += 1
            result.mismatches.append(Mismatch(it.id, "(session)", "present", "missing"))
            continue
        bad = _field_mismatches(it, exported[found[it.id]])
        result.mismatches += bad
        if bad:
            result.mismatched += 1
        else:
            result.matched += 1
    claimed = set(found.values())
    for i, s in enumerate(exported):
        if i not in claimed:
            key = f"{s.get('kind')}:{s.get('service')}"
            result.uncovered[key] = result.uncovered.get(key, 0) + 1
    return result


# ---------------------------------------------------------------- totals

@dataclass
class Totals:
    """Expected counts of one direction: an exact total and, per category, the range [lo, hi].

    A session whose truth accepts a single verdict adds 1 to that category's lo and hi; one that accepts
    several (e.g. outbound at loglevel 0: tls or unknown) adds 1 only to the hi of each. A category is
    determined when lo == hi.
    """

    total: int = 0
    lo: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    hi: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))

    def add(self, accepted: Accepted) -> None:
        cats = {a.replace("-", "_") for a in accepted}
        self.total += 1
        for cat in cats:
            self.hi[cat] += 1
            if len(cats) == 1:
                self.lo[cat] += 1

    def accepts(self, category: str, count: int) -> bool:
        return self.lo[category] <= count <= self.hi[category]

    def describe(self, category: str) -> str:
        lo, hi = self.lo[category], self.hi[category]
        return str(lo) if lo == hi else f"{lo}..{hi}"


def expected_totals(rows: Sequence[Mapping[str, Any]]) -> dict[str, Totals]:
    """The inbound and outbound totals the truth implies for the *whole* log of a harness run.

    What "report totals equal truth totals" can soundly mean. The report counts every session in the log,
    the truth describes sessions, and the two views meet in three checks, each needed:

    1. consistency: ``report`` totals == the counts of the ``sessions`` export (:func:`export_totals`,
       :func:`report_totals`, :func:`compare_totals` with ranges of width 0); the report and the export are
       two outputs of one program and must agree exactly;
    2. per session: :func:`check` (every truth item found, with the right verdict);
    3. totals: the export's counts lie in the ranges computed here (:func:`compare_totals`). These count
       *sessions*, not rows: every ``in`` row is one driver session; every queued ``(queue id, rcpt)`` is one
       delivery; a sink session exists for every delivery that reached a sink on a new connection (not
       ``log_conn_use >= 2``; recipients of one message on one connection share it), including failed
       deliveries (a failed handshake, a refused certificate, TLS not offered), which :func:`check` may not
       be able to match but which are counted here all the same, with the verdict the sink must give.

    Assumptions, true of harness runs: the log holds exactly the harness's sessions (one Postfix instance,
    nothing else connecting), each queued delivery was attempted once (runs are shorter than Postfix's
    minimal backoff), and a delivery with ``log_conn_use`` unset opened its own connection.
    """
    totals = {"inbound": Totals(), "outbound": Totals()}
    sink_connections: set[tuple[str, str]] = set()
    for row in rows:
        if row["direction"] == "in":
            totals["inbound"].add(_inbound_encryption(row))
            continue
        if not row.get("log_queue_id"):
            continue
        totals["outbound"].add(_outbound_encryption(row))
        encryption = _sink_encryption(row)
        new_connection = (row.get("log_conn_use") or 1) < 2
        key = (row["log_queue_id"], row["sink"])
        if encryption and new_connection and key not in sink_connections:
            sink_connections.add(key)
            totals["inbound"].add((encryption,))
    return totals


def export_totals(sessions: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Count exported sessions per direction and encryption category (report keys: tls_failed)."""
    counts = {kind: dict.fromkeys(("total", *CATEGORIES), 0) for kind in ("inbound", "outbound")}
    for s in sessions:
        if s.get("kind") in counts:
            c = counts[s["kind"]]
            c["total"] += 1
            category = str(s.get("encryption")).replace("-", "_")
            if category in c:
                c[category] += 1
    return counts


def report_totals(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``total`` and category counts of ``tlslog report --format json``, per direction."""
    return {kind: {key: (report.get(kind) or {}).get(key) for key in ("total", *CATEGORIES)}
            for kind in ("inbound", "outbound")}


def compare_totals(label: str, expected: Mapping[str, Totals | Mapping[str, int]],
                   got: Mapping[str, Mapping[str, Any]]) -> list[Mismatch]:
    """Mismatches between expected totals (ranges, or exact counts) and counts, e.g. ``report:inbound``."""
    bad: list[Mismatch] = []
    for kind in ("inbound", "outbound"):
        want = expected[kind]
        if not isinstance(want, Totals):
            want = _exact(want)
        if got[kind].get("total") != want.total:
            bad.append(Mismatch(f"{label}:{kind}", "total", str(want.total), _render(got[kind].get("total"))))
        for category in CATEGORIES:
            count = got[kind].get(category)
            if not isinstance(count, int) or not want.accepts(category, count):
                bad.append(Mismatch(f"{label}:{kind}", category, want.describe(category), _render(count)))
    return bad


def _exact(counts: Mapping[str, int]) -> Totals:
    return Totals(total=counts["total"], lo={c: counts[c] for c in CATEGORIES},
                  hi={c: counts[c] for c in CATEGORIES})
