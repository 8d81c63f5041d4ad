"""The summary report: pure functions from a session or count frame to plain dicts.

Every function weighs rows by their ``count`` column, so it gives the same answer on
`tlslog.frames.session_frame` (one row per session) and `tlslog.frames.count_frame`.

Shape of `build_report` (the stable ``tlslog report --format json`` contract, see README):
``inbound`` / ``outbound`` each ``{total, tls, plaintext, tls_failed, unknown, coverage,
by_protocol, by_trust, by_ip_version}``; top-level ``by_protocol``, ``by_trust``,
``by_ip_version`` over both directions; ``lines``; plus ``period``, ``plaintext_peers``,
``legacy_tls_peers`` and ``notes``. ``coverage = tls / (total - unknown)``, None when nothing
was counted.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd

from .fold import LEGACY_PROTOCOLS
from .pipeline import LineStats
from .timestamps import format_wall

__all__ = ["build_report", "direction_summary", "peer_table"]

#: Newest first; anything else (DTLS, future versions) follows in name order.
PROTOCOL_ORDER = ["TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1", "SSLv3", "SSLv2"]
TRUST_ORDER = ["Verified", "Trusted", "Untrusted", "Anonymous"]


def _ordered(counts: Counter, order: list[str]) -> dict[str, int]:
    keys = [k for k in order if counts.get(k)]
    keys += sorted(k for k in counts if k not in order and k != "unknown" and counts[k])
    if counts.get("unknown"):
        keys.append("unknown")
    return {k: int(counts[k]) for k in keys}


def _weighted(rows: pd.DataFrame, column: str, missing: str | None = None) -> Counter:
    """Sum of ``count`` per value of ``column`` (missing values under ``missing``, or dropped)."""
    values = rows[column].astype(object)
    if missing is not None:
        values = values.fillna(missing)
    sums = rows["count"].groupby(values.astype(str).where(values.notna()), dropna=True).sum()
    return Counter({str(k): int(v) for k, v in sums.items() if v})


def direction_summary(rows: pd.DataFrame) -> dict:
    """Totals, verdict counts, coverage and breakdowns for one direction's rows."""
    verdicts = _weighted(rows, "encryption")
    total = int(rows["count"].sum())
    tls = verdicts.get("tls", 0)
    counted = total - verdicts.get("unknown", 0)
    tls_rows = rows[rows["encryption"] == "tls"]
    by_ip = _weighted(rows, "ip_version", missing="unknown")
    return {
        "total": total,
        "tls": tls,
        "plaintext": verdicts.get("plaintext", 0),
        "tls_failed": verdicts.get("tls-failed", 0),
        "unknown": verdicts.get("unknown", 0),
        "coverage": tls / counted if counted else None,
        "by_protocol": _ordered(_weighted(tls_rows, "protocol", missing="unknown"), PROTOCOL_ORDER),
        "by_trust": _ordered(_weighted(tls_rows, "trust", missing="unknown"), TRUST_ORDER),
        "by_ip_version": {"4": by_ip.get("4", 0), "6": by_ip.get("6", 0),
                          **({"unknown": by_ip["unknown"]} if by_ip.get("unknown") else {})},
    }


def _merge(a: dict[str, int], b: dict[str, int], order: list[str]) -> dict[str, int]:
    return _ordered(Counter(a) + Counter(b), order)


def peer_table(rows: pd.DataFrame, limit: int = 10) -> list[dict]:
    """The peers with the most rows (ties by name and address), with their counts."""
    if rows.empty:
        return []
    peers = pd.DataFrame({
        "peer_name": rows["peer_name"].astype(object).fillna(""),
        "peer_ip": rows["peer_ip"].astype(object).fillna(""),
        "count": rows["count"],
    })
    totals = peers.groupby(["peer_name", "peer_ip"], sort=True)["count"].sum().reset_index()
    top = totals.sort_values("count", ascending=False, kind="stable").head(limit)
    return [{"peer_name": name or None, "peer_ip": ip or None, "sessions": int(n)}
            for name, ip, n in top.itertuples(index=False)]


def _notes(inbound: pd.DataFrame, outbound: pd.DataFrame) -> list[str]:
    notes = []
    for label, noun, rows in (("inbound", "sessions", inbound), ("outbound", "deliveries", outbound)):
        blind = int(rows.loc[(rows["encryption"] == "tls") & rows["protocol"].isna(), "count"].sum())
        if blind:
            notes.append(
                f"{blind} {label} TLS {noun} have no TLS summary line (TLS log level 0?):"
                " protocol, cipher and trust are unknown for them."
            )
        unlogged = int(rows.loc[rows["evidence"] == "no-tls-logging", "count"].sum())
        if unlogged:
            notes.append(
                f"{unlogged} {label} {noun} show no TLS evidence either way: their service logged no TLS"
                " lines at all (TLS log level 0?), so they count as unknown, not plaintext."
            )
    return notes


Period = tuple[tuple[float, int | None], tuple[float, int | None]]


def build_report(frame: pd.DataFrame, stats: LineStats, *, period: Period | None = None, peers: int = 10) -> dict:
    """The whole report as JSON-ready data. ``period``: (start, zone offset) of the first and
    the last session (`tlslog.frames.period`)."""
    inbound = frame[frame["kind"] == "inbound"]
    outbound = frame[frame["kind"] == "outbound"]
    summary_in = direction_summary(inbound)
    summary_out = direction_summary(outbound)
    legacy = frame[(frame["encryption"] == "tls") & frame["protocol"].isin(LEGACY_PROTOCOLS)]
    return {
        "inbound": summary_in,
        "outbound": summary_out,
        "by_protocol": _merge(summary_in["by_protocol"], summary_out["by_protocol"], PROTOCOL_ORDER),
        "by_trust": _merge(summary_in["by_trust"], summary_out["by_trust"], TRUST_ORDER),
        "by_ip_version": dict(Counter(summary_in["by_ip_version"]) + Counter(summary_out["by_ip_version"])),
        "lines": {
            "read": stats.read,
            "postfix": stats.postfix,
            "parsed": stats.parsed,
            "unparsed": stats.unparsed,
            "other": stats.other,
            "unrecognized": stats.unrecognized,
            "duplicate": stats.duplicate,
            "invalid_utf8": stats.invalid_utf8,
        },
        "period": {"first": format_wall(*period[0]), "last": format_wall(*period[1])} if period else None,
        "plaintext_peers": {
            "inbound": peer_table(inbound[inbound["encryption"] == "plaintext"], peers),
            "outbound": peer_table(outbound[outbound["encryption"] == "plaintext"], peers),
        },
        "legacy_tls_peers": peer_table(legacy, peers),
        "notes": _notes(inbound, outbound),
    }
