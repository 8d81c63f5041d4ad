"""The summary report: pure functions from the settled session table to plain dicts.

Shape of `build_report` (the stable ``tlslog report --format json`` contract, see README):
``inbound`` (every smtpd session on the wire), its split ``mx`` and ``submission``, and
``outbound`` (every smtp delivery on the wire), each ``{total, tls, plaintext, tls_failed,
unknown, coverage, messages, by_protocol, by_trust, by_ip_version}``, ``messages`` being the
same counts for mail (``{total, tls, plaintext, tls_failed, unknown, coverage}``);
``internal`` holds the same for the hops inside the mail system (``inbound``, ``outbound``),
counted apart; top-level ``by_protocol``, ``by_trust``, ``by_ip_version`` over both
directions on the wire; ``lines``; plus ``period``, ``plaintext_peers``, ``legacy_tls_peers``
and ``notes``. ``coverage = tls / (total - unknown)``, None when nothing was counted.
``by_ip_version`` always has ``"4"`` and ``"6"``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import numpy as np
import pandas as pd

from .accounting import LineStats
from .schema import Projection
from .timestamps import format_wall

__all__ = ["COLUMNS", "build_report", "direction_summary", "period", "peer_table"]

#: Protocols a report lists the peers of.
LEGACY_PROTOCOLS = frozenset({"TLSv1.1", "TLSv1", "SSLv3", "SSLv2"})
#: What these functions read of the session table (the engine returns only this): peers only
#: where a peer list can show them (plaintext rows, pending ones that may be, old TLS).
COLUMNS = Projection(
    ("kind", "start", "offset", "host", "service", "peer_name", "peer_ip", "ip_version", "encryption",
     "evidence", "trust", "protocol", "messages", "source", "day", "role", "hop"),
    peer_verdicts=frozenset({"plaintext", "pending"}),
    peer_protocols=LEGACY_PROTOCOLS,
)

#: Newest first; anything else (DTLS, future versions) follows in name order.
PROTOCOL_ORDER = ["TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1", "SSLv3", "SSLv2"]
TRUST_ORDER = ["Verified", "Trusted", "Untrusted", "Anonymous"]
Period = tuple[tuple[float, int | None], tuple[float, int | None]]


def _ordered(counts: Counter, order: list[str]) -> dict[str, int]:
    keys = [k for k in order if counts.get(k)]
    keys += sorted(k for k in counts if k not in order and k != "unknown" and counts[k])
    if counts.get("unknown"):
        keys.append("unknown")
    return {k: int(counts[k]) for k in keys}


def _counts(rows: pd.DataFrame, column: str, missing: str | None = None) -> Counter:
    """Rows per value of ``column`` (missing values under ``missing``, or dropped). Counted on
    the column's categories or integers directly: no conversion of every row to text."""
    sizes = rows[column].value_counts(dropna=missing is None, sort=False)
    counts: Counter = Counter()
    for value, n in sizes.items():
        if n:
            key = missing if value is None or value is pd.NA or value != value else str(value)
            if key is not None:
                counts[key] += int(n)
    return counts


def _ip_versions(counts: Counter) -> dict[str, int]:
    return {"4": counts.get("4", 0), "6": counts.get("6", 0), **({"unknown": counts["unknown"]} if counts.get("unknown") else {})}


def _verdicts(counts: Counter) -> dict:
    total = sum(counts.values())
    tls = counts.get("tls", 0)
    counted = total - counts.get("unknown", 0)
    return {
        "total": total,
        "tls": tls,
        "plaintext": counts.get("plaintext", 0),
        "tls_failed": counts.get("tls-failed", 0),
        "unknown": counts.get("unknown", 0),
        "coverage": tls / counted if counted else None,
    }


def message_counts(rows: pd.DataFrame) -> dict:
    """Mail rather than connections: the messages of the rows (an inbound session's
    ``QUEUEID: client=`` lines, an outbound delivery that was sent), by their row's verdict."""
    sums = rows["messages"].groupby(rows["encryption"], observed=False).sum()
    return _verdicts(Counter({str(k): int(v) for k, v in sums.items() if v}))


def direction_summary(rows: pd.DataFrame) -> dict:
    """Totals, verdict counts, coverage and breakdowns for one direction's rows."""
    tls_rows = rows[rows["encryption"] == "tls"]
    return {
        **_verdicts(_counts(rows, "encryption")),
        "messages": message_counts(rows),
        "by_protocol": _ordered(_counts(tls_rows, "protocol", missing="unknown"), PROTOCOL_ORDER),
        "by_trust": _ordered(_counts(tls_rows, "trust", missing="unknown"), TRUST_ORDER),
        "by_ip_version": _ip_versions(_counts(rows, "ip_version", missing="unknown")),
    }


def _merge(a: dict[str, int], b: dict[str, int], order: list[str]) -> dict[str, int]:
    return _ordered(Counter(a) + Counter(b), order)


def peer_table(rows: pd.DataFrame, limit: int = 10) -> list[dict]:
    """The peers with the most rows (ties by name and address), with their counts."""
    if rows.empty:
        return []
    sizes = rows.groupby(["peer_name", "peer_ip"], observed=True, dropna=False, sort=False).size()
    if limit < len(sizes):  # only the peers that can make the top (ties included) are sorted
        sizes = sizes[sizes >= np.partition(sizes.to_numpy(), len(sizes) - limit)[len(sizes) - limit]]
    top = sorted((-int(n), name if isinstance(name, str) else "", ip if isinstance(ip, str) else "")
                 for (name, ip), n in sizes.items() if n)[:limit]
    return [{"peer_name": name or None, "peer_ip": ip or None, "sessions": -n} for n, name, ip in top]


def _day_text(day: int) -> str:
    return format_wall(day * 86400.0, None)[:10] if day >= 0 else "an unknown day"  # type: ignore[index]


_BLIND_NOTES = 5  # blind stretches named one by one; more are summed up


def _blind_notes(label: str, noun: str, rows: pd.DataFrame) -> list[str]:
    """Where rows stayed unknown because their service logged no TLS lines: per input, host and
    service, how many and on which days."""
    blind = rows[rows["evidence"] == "no-tls-logging"]
    if blind.empty:
        return []
    keys = ["source", "host", "service"]
    groups = list(blind[keys + ["day"]].astype(object).fillna("").groupby(keys, sort=True))
    notes = []
    for (source, host, service), group in groups[:_BLIND_NOTES]:
        days = sorted(int(d) for d in group["day"].unique())
        when = _day_text(days[0]) if len(days) == 1 else f"{_day_text(days[0])} to {_day_text(days[-1])}"
        where = f"{service} on {host}" if host else service
        notes.append(f"{len(group):,} {label} {noun} show no TLS evidence either way: {where} logged no TLS "
                     f"lines in {source or 'the input'} on {when} (TLS log level 0 there?), so they count as "
                     "unknown, not plaintext.")
    if len(groups) > _BLIND_NOTES:
        rest = sum(len(group) for _, group in groups[_BLIND_NOTES:])
        notes.append(f"{rest:,} more {label} {noun} in {len(groups) - _BLIND_NOTES} other stretches of log "
                     "without TLS logging count as unknown too.")
    return notes


def _notes(inbound: pd.DataFrame, outbound: pd.DataFrame) -> list[str]:
    notes = []
    for label, noun, rows in (("inbound", "sessions", inbound), ("outbound", "deliveries", outbound)):
        blind = int(((rows["encryption"] == "tls") & rows["protocol"].isna()).sum())
        if blind:
            notes.append(
                f"{blind} {label} TLS {noun} have no TLS summary line (TLS log level 0?):"
                " protocol, cipher and trust are unknown for them."
            )
        notes.extend(_blind_notes(label, noun, rows))
    return notes


def _internal_notes(internal: dict) -> list[str]:
    inbound, outbound = internal["inbound"]["total"], internal["outbound"]["total"]
    if not inbound and not outbound:
        return []
    return [f"{inbound:,} inbound sessions and {outbound:,} outbound deliveries are hops inside the mail system"
            " (loopback peers, local transports, configured networks or services: a content filter's round trip);"
            " they are counted apart, not in the coverage of mail on the wire (--internal none counts them too)."]


def period(frame: pd.DataFrame) -> Period | None:
    """(start, zone offset) of the first and the last session, or None if no row has a time."""
    starts = frame["start"].dropna()
    if not len(starts):
        return None
    ends = []
    for index in (starts.idxmin(), starts.idxmax()):
        offset = frame.at[index, "offset"]
        ends.append((float(frame.at[index, "start"]), None if pd.isna(offset) else int(offset)))
    return ends[0], ends[1]


#: What the per-direction parts read (the rows of one direction are copied with these only).
_SUMMARY_COLUMNS = ["encryption", "evidence", "trust", "protocol", "ip_version", "messages", "source", "host",
                    "service", "day"]
_PEER_COLUMNS = ["peer_name", "peer_ip"]


#: How rows are grouped over time: the local calendar day of a row's first line (a session's
#: connect, a delivery's status line), by the wall clock the log shows (zones are not converted).
PERIODS = ("day", "week", "month")


def _period_of(day: int, by: str) -> tuple[str, str]:
    """(label, first day) of the period a day (days since 1970-01-01) falls in."""
    date = dt.date(1970, 1, 1) + dt.timedelta(days=day)
    if by == "week":
        year, week, weekday = date.isocalendar()
        return f"{year}-W{week:02d}", (date - dt.timedelta(days=weekday - 1)).isoformat()
    if by == "month":
        return date.strftime("%Y-%m"), date.replace(day=1).isoformat()
    return date.isoformat(), date.isoformat()


_DIRECTIONS = ("inbound", "mx", "submission", "outbound")


def _directions(frame: pd.DataFrame) -> dict[str, dict]:
    """The four blocks of mail on the wire: every smtpd session, its MX and submission parts,
    every smtp delivery."""
    external = (frame["hop"] == "external").to_numpy()
    is_inbound = (frame["kind"] == "inbound").to_numpy()
    role = frame["role"].to_numpy()
    masks = {"inbound": is_inbound & external, "mx": (role == "mx") & external,
             "submission": (role == "submission") & external, "outbound": ~is_inbound & external}
    return {name: direction_summary(frame.loc[mask, _SUMMARY_COLUMNS]) for name, mask in masks.items()}


def periods(frame: pd.DataFrame, by: str) -> list[dict]:
    """Per day, ISO week (Monday first) or month, in time order: the four blocks of mail on the
    wire, each with the change of coverage (sessions and messages) against the period before, in
    percentage points (None for the first period or when either side has no coverage)."""
    if by not in PERIODS:
        raise ValueError(f"no such period: {by!r} (one of {', '.join(PERIODS)})")
    days = frame["day"].to_numpy()
    known = days >= 0
    labels = {day: _period_of(int(day), by) for day in np.unique(days[known])}
    keys = np.array([labels[d][0] if d >= 0 else "" for d in days], dtype=object) if len(days) else np.array([])
    out: list[dict] = []
    previous: dict[str, dict] | None = None
    for label, start in sorted(set(labels.values())):
        blocks = _directions(frame.loc[keys == label])
        for name, block in blocks.items():
            before = previous[name] if previous else None
            block["coverage_change"] = _change(before["coverage"] if before else None, block["coverage"])
            block["messages"]["coverage_change"] = _change(before["messages"]["coverage"] if before else None,
                                                          block["messages"]["coverage"])
        out.append({"period": label, "start": start, **blocks})
        previous = blocks
    return out


def _change(before: float | None, now: float | None) -> float | None:
    return None if before is None or now is None else round((now - before) * 100, 2)


def build_report(frame: pd.DataFrame, stats: LineStats, *, peers: int = 10, by: str | None = None) -> dict:
    """The whole report as JSON-ready data; ``by`` (day, week, month) adds ``periods``."""
    external = (frame["hop"] == "external").to_numpy()
    is_inbound = (frame["kind"] == "inbound").to_numpy()
    inbound = frame.loc[is_inbound & external, _SUMMARY_COLUMNS]
    outbound = frame.loc[~is_inbound & external, _SUMMARY_COLUMNS]
    blocks = _directions(frame)
    summary_in, summary_out = blocks["inbound"], blocks["outbound"]
    plaintext = (frame["encryption"] == "plaintext").to_numpy() & external
    legacy = frame.loc[((frame["encryption"] == "tls") & frame["protocol"].isin(LEGACY_PROTOCOLS)).to_numpy() & external,
                       _PEER_COLUMNS]
    internal = {"inbound": direction_summary(frame.loc[is_inbound & ~external, _SUMMARY_COLUMNS]),
                "outbound": direction_summary(frame.loc[~is_inbound & ~external, _SUMMARY_COLUMNS])}
    span = period(frame)
    return {
        **blocks,
        "internal": internal,
        "by_protocol": _merge(summary_in["by_protocol"], summary_out["by_protocol"], PROTOCOL_ORDER),
        "by_trust": _merge(summary_in["by_trust"], summary_out["by_trust"], TRUST_ORDER),
        "by_ip_version": _ip_versions(Counter(summary_in["by_ip_version"]) + Counter(summary_out["by_ip_version"])),
        "lines": stats.as_dict(),
        "period": {"first": format_wall(*span[0]), "last": format_wall(*span[1])} if span else None,
        "plaintext_peers": {
            "inbound": peer_table(frame.loc[is_inbound & plaintext, _PEER_COLUMNS], peers),
            "outbound": peer_table(frame.loc[~is_inbound & plaintext, _PEER_COLUMNS], peers),
        },
        "legacy_tls_peers": peer_table(legacy, peers),
        "notes": _notes(inbound, outbound) + _internal_notes(internal),
        **({"by": by, "periods": periods(frame, by)} if by else {}),
    }
