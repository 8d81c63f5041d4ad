"""``tlslog report --format prometheus``: the report as Prometheus text exposition (0.0.4).

Written for node_exporter's textfile collector (``tlslog report --format prometheus LOG >
/var/lib/node_exporter/tlslog.prom.tmp && mv ...``), so alerts can watch TLS coverage.
Every value comes from the `tlslog.report.build_report` dict, so the metrics always agree
with ``--format json``. Only bounded labels: direction, verdict, protocol, trust, IP version,
weakness and failure reason (the report's top reasons, as many as ``--peers``); never a peer,
whose name or address would make one series per client.

Counts describe the analysed log: they behave as counters while the log only grows, and
read as a reset when it rotates. The ``inbound`` direction is ``mx`` plus ``submission``:
sum over ``direction!="inbound"`` to add up the wire.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from . import __version__
from .escape import terminal
from .strength import REASONS

__all__ = ["FAMILIES", "Family", "label_value", "report_prometheus", "unix_time"]

#: One series: its labels (name -> value, unescaped) and its value; None: no value, left out.
Sample = tuple[dict[str, str], float | None]
Samples = Callable[[dict[str, Any]], Iterable[Sample]]

#: The report's blocks of mail on the wire, and of the hops inside the mail system.
WIRE = ("inbound", "mx", "submission", "outbound")
INTERNAL = ("inbound", "outbound")
#: Verdict keys of a block (`tlslog.report`'s ``_verdicts``), as they are in the JSON.
VERDICTS = ("tls", "plaintext", "tls_failed", "unknown")


@dataclass(frozen=True)
class Family:
    """One metric family: written once with its HELP and TYPE, then its series."""

    name: str
    type: Literal["counter", "gauge"]
    help: str
    samples: Samples


def label_value(text: str) -> str:
    """A label value as the format writes it: backslash, double quote and line feed escaped.

    Log text is attacker-controlled (`tlslog.escape`): other control characters are shown as
    ``\\x1b``-style text too, so no CR or terminal escape reaches a dashboard."""
    return "\\n".join(terminal(part).replace("\\", "\\\\").replace('"', '\\"') for part in text.split("\n"))


def _help_text(text: str) -> str:
    """HELP text escapes backslash and line feed only (the format's rule)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    """Counts as integers, ratios and times as Python's shortest exact float text."""
    return str(value) if isinstance(value, int) else repr(float(value))


def _series(name: str, labels: dict[str, str], value: float) -> str:
    inside = ",".join(f'{key}="{label_value(text)}"' for key, text in labels.items())
    return f"{name}{{{inside}}} {_number(value)}" if inside else f"{name} {_number(value)}"


def _lines(family: Family, data: dict[str, Any]) -> list[str]:
    """The family's HELP, TYPE and series; nothing when it has no series (no NaN, no empty family)."""
    series = [_series(family.name, labels, value) for labels, value in family.samples(data) if value is not None]
    if not series:
        return []
    return [f"# HELP {family.name} {_help_text(family.help)}", f"# TYPE {family.name} {family.type}", *series]


def report_prometheus(data: dict[str, Any]) -> str:
    """The report (`tlslog.report.build_report`) as one text exposition, families in `FAMILIES` order."""
    lines = [line for family in FAMILIES for line in _lines(family, data)]
    return "\n".join(lines) + "\n" if lines else ""


# -- what each family reads of the report -------------------------------------------------


def _per_direction(read: Callable[[dict[str, Any]], Iterable[Sample]], directions: Sequence[str] = WIRE,
                   within: str | None = None) -> Samples:
    """``read`` of each direction's block (of ``data[within]`` if given), labelled ``direction``
    first; a block the report lacks is skipped."""
    def samples(data: dict[str, Any]) -> Iterator[Sample]:
        blocks = (data.get(within) or {}) if within else data
        for direction in directions:
            if isinstance(blocks.get(direction), dict):
                for labels, value in read(blocks[direction]):
                    yield {"direction": direction, **labels}, value
    return samples


def _at(block: dict[str, Any], path: Sequence[str]) -> Any:
    for key in path:
        block = block[key]
    return block


def _value(*path: str) -> Callable[[dict[str, Any]], Iterable[Sample]]:
    """The one number at ``path`` in a block."""
    return lambda block: [({}, _at(block, path))]


def _verdicts(*path: str) -> Callable[[dict[str, Any]], Iterable[Sample]]:
    """The verdict counts (at ``path`` in a block), zeros included: an absent series is not 0."""
    return lambda block: [({"encryption": verdict}, _at(block, path)[verdict]) for verdict in VERDICTS]


def _breakdown(key: str, label: str) -> Callable[[dict[str, Any]], Iterable[Sample]]:
    """A block's ``{value: count}`` (``by_protocol``, ``by_trust`` ...) as one series per value."""
    return lambda block: [({label: str(name)}, count) for name, count in block.get(key, {}).items()]


def _weak_reasons(block: dict[str, Any]) -> Iterable[Sample]:
    """Weak TLS per `tlslog.strength` reason (JSON keys: ``old_protocol`` ...); a row may have several."""
    weak = block["weak_tls"]
    return [({"reason": key}, weak[key]) for key in (r.replace("-", "_") for r in REASONS) if key in weak]


def _failures(data: dict[str, Any]) -> Iterator[Sample]:
    """The report's failure reasons per direction (its top ``--peers``), counted exactly."""
    for direction, rows in (data.get("failures") or {}).items():
        for row in rows:
            yield {"direction": str(direction), "reason": str(row["reason"])}, row["count"]


def _lines_read(data: dict[str, Any]) -> Iterator[Sample]:
    for kind, count in (data.get("lines") or {}).items():
        yield {"kind": str(kind)}, count


def _inputs(data: dict[str, Any]) -> Iterator[Sample]:
    inputs = data.get("inputs")
    if inputs:
        for state in ("read", "skipped", "damaged"):
            yield {"state": state}, inputs[state]


def unix_time(text: str | None) -> float | None:
    """ISO 8601 text of the report as unix time; a time without a zone (classic syslog) is
    read as UTC, as Prometheus needs one number and the log gives nothing better."""
    if not text:
        return None
    stamp = dt.datetime.fromisoformat(text)
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)).timestamp()


def _period(end: Literal["first", "last"]) -> Samples:
    """The report's ``period`` end as unix time (no series when the log had no time)."""
    return lambda data: [({}, unix_time((data.get("period") or {}).get(end)))]


_ROWS = "sessions (inbound) or deliveries (outbound)"

#: Every family, in output order: the one place a metric is declared.
FAMILIES: tuple[Family, ...] = (
    Family("tlslog_info", "gauge", "The tlslog that wrote these metrics (always 1).",
           lambda data: [({"version": __version__}, 1)]),
    Family("tlslog_mail_tls_coverage_ratio", "gauge",
           "Share of mail on the wire sent over TLS: tls / (total - unknown); absent without mail.",
           _per_direction(_value("messages", "coverage"))),
    Family("tlslog_session_tls_coverage_ratio", "gauge",
           f"Share of {_ROWS} on the wire with TLS: tls / (total - unknown); absent without any.",
           _per_direction(_value("coverage"))),
    Family("tlslog_sessions_total", "counter", f"{_ROWS.capitalize()} on the wire by TLS verdict.",
           _per_direction(_verdicts())),
    Family("tlslog_messages_total", "counter", "Messages on the wire by the TLS verdict of their session or delivery.",
           _per_direction(_verdicts("messages"))),
    Family("tlslog_sessions_by_protocol_total", "counter", f"TLS {_ROWS} on the wire by protocol version.",
           _per_direction(_breakdown("by_protocol", "protocol"))),
    Family("tlslog_sessions_by_trust_total", "counter", f"TLS {_ROWS} on the wire by certificate trust.",
           _per_direction(_breakdown("by_trust", "trust"))),
    Family("tlslog_sessions_by_ip_version_total", "counter", f"{_ROWS.capitalize()} on the wire by IP version.",
           _per_direction(_breakdown("by_ip_version", "ip_version"))),
    Family("tlslog_weak_tls_sessions_total", "counter", f"TLS {_ROWS} on the wire that are weak for any reason.",
           _per_direction(_value("weak_tls", "total"))),
    Family("tlslog_weak_tls_sessions_by_reason_total", "counter",
           f"Weak TLS {_ROWS} on the wire per reason (one may have several).",
           _per_direction(_weak_reasons)),
    Family("tlslog_unverified_tls_sessions_total", "counter",
           "TLS deliveries on the wire whose certificate was not verified (Untrusted or Anonymous).",
           _per_direction(_value("weak_tls", "unverified"), ("outbound",))),
    Family("tlslog_tls_failures_total", "counter",
           "Failed TLS handshakes and TLS-required deferrals on the wire, by reason "
           "(the report's top --peers reasons).",
           _failures),
    Family("tlslog_internal_sessions_total", "counter",
           f"{_ROWS.capitalize()} that are hops inside the mail system, by TLS verdict (not in the coverage).",
           _per_direction(_verdicts(), INTERNAL, within="internal")),
    Family("tlslog_internal_messages_total", "counter",
           "Messages of hops inside the mail system, by TLS verdict (not in the coverage).",
           _per_direction(_verdicts("messages"), INTERNAL, within="internal")),
    Family("tlslog_log_lines_total", "counter",
           "Log lines by what became of them (read = postfix + other + unrecognized; the kinds overlap).",
           _lines_read),
    Family("tlslog_inputs_total", "counter",
           "Inputs of the report by what became of them (skipped: could not be read; damaged: read in part); "
           "alert on skipped or damaged above 0: the report covers less than was asked.",
           _inputs),
    Family("tlslog_report_period_start_seconds", "gauge",
           "Start of the first session in the report, unix time (a log without a zone read as UTC).",
           _period("first")),
    Family("tlslog_report_period_end_seconds", "gauge",
           "Start of the last session in the report, unix time (a log without a zone read as UTC).",
           _period("last")),
)
