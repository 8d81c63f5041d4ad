"""The summary report: pure functions from the session frame to plain dicts.

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

from .pipeline import LineStats
from .timestamps import format_wall

__all__ = ["build_report", "direction_summary", "peer_table"]

#: Newest first; anything else (DTLS, future versions) follows in name order.
PROTOCOL_ORDER = ["TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1", "SSLv3", "SSLv2"]
TRUST_ORDER = ["Verified", "Trusted", "Untrusted", "Anonymous"]
LEGACY_PROTOCOLS = frozenset({"TLSv1.1", "TLSv1", "SSLv3", "SSLv2"})


def _ordered(counts: Counter, order: list[str]) -> dict[str, int]:
    keys = [k for k in order if counts.get(k)]
    keys += sorted(k for k in counts if k not in order and k != "unknown" and counts[k])
    if counts.get("unknown"):
        keys.append("unknown")
    return {k: int(counts[k]) for k in keys}


def _counts(series: pd.Series) -> Counter:
    return Counter({str(k): int(v) for k, v in series.value_counts(dropna=False).items() if v})


def direction_summary(rows: pd.DataFrame) -> dict:
    """Totals, verdict counts, coverage and breakdowns for one direction's rows."""
    verdicts = _counts(rows["encryption"])
    total = len(rows)
    tls = verdicts.get("tls", 0)
    counted = total - verdicts.get("unknown", 0)
    tls_rows = rows[rows["encryption"] == "tls"]
    ip = rows["ip_version"].astype("string").fillna("unknown")
    by_ip = _counts(ip)
    return {
        "total": total,
        "tls": tls,
        "plaintext": verdicts.get("plaintext", 0),
        "tls_failed": verdicts.get("tls-failed", 0),
        "unknown": verdicts.get("unknown", 0),
        "coverage": tls / counted if counted else None,
        "by_protocol": _ordered(_counts(tls_rows["protocol"].astype(object).fillna("unknown")), PROTOCOL_ORDER),
        "by_trust": _ordered(_counts(tls_rows["trust"].astype(object).fillna("unknown")), TRUST_ORDER),
        "by_ip_version": {"4": by_ip.get("4", 0), "6": by_ip.get("6", 0),
                          **({"unknown": by_ip["unknown"]} if by_ip.get("unknown") else {})},
    }


def _merge(a: dict[str, int], b: dict[str, int], order: list[str]) -> dict[str, int]:
    return _ordered(Counter(a) + Counter(b), order)


def peer_table(rows: pd.DataFrame, limit: int = 10) -> list[dict]:
    """Peers with the most rows, with their name, address and count (most first)."""
    if rows.empty:
        return []
    peers = rows.assign(
        peer_name=rows["peer_name"].astype(object).fillna(""),
        peer_ip=rows["peer_ip"].astype(object).fillna(""),
    )
    counts = peers.groupby(["peer_name", "peer_ip"], observed=True, sort=False).size()
    top = counts.sort_values(ascending=False, kind="stable").head(limit)
    return [{"peer_name": name or None, "peer_ip": ip or None, "sessions": int(n)} for (name, ip), n in top.items()]


def _notes(inbound: pd.DataFrame, outbound: pd.DataFrame) -> list[str]:
    notes = []
    for label, rows in (("inbound", inbound), ("outbound", outbound)):
        blind = rows[(rows["encryption"] == "tls") & rows["protocol"].isna()]
        if len(blind):
            notes.append(
                f"{len(blind)} {label} TLS {'session' if label == 'inbound' else 'deliverie'}s have no TLS"
                " summary line (TLS log level 0?): protocol, cipher and trust are unknown for them."
            )
        unlogged = rows[rows["evidence"] == "no-tls-logging"]
        if len(unlogged):
            notes.append(
                f"{len(unlogged)} {label} rows show no TLS evidence either way: their service logged no TLS"
                " lines at all (smtp(d)_tls_loglevel = 0?), so they count as unknown, not plaintext."
            )
    return notes


def build_report(frame: pd.DataFrame, stats: LineStats, *, peers: int = 10) -> dict:
    """The whole report as JSON-ready data."""
    inbound = frame[frame["kind"] == "inbound"]
    outbound = frame[frame["kind"] == "outbound"]
    summary_in = direction_summary(inbound)
    summary_out = direction_summary(outbound)
    starts = frame["start"].dropna()
    period = None
    if len(starts):
        first, last = frame.loc[starts.idxmin()], frame.loc[starts.idxmax()]
        period = {"first": format_wall(first["start"], _int_or_none(first["offset"])),
                  "last": format_wall(last["start"], _int_or_none(last["offset"]))}
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
            "invalid_utf8": stats.invalid_utf8,
        },
        "period": period,
        "plaintext_peers": {
            "inbound": peer_table(inbound[inbound["encryption"] == "plaintext"], peers),
            "outbound": peer_table(outbound[outbound["encryption"] == "plaintext"], peers),
        },
        "legacy_tls_peers": peer_table(legacy, peers),
        "notes": _notes(inbound, outbound),
    }


def _int_or_none(value: object) -> int | None:
    return None if value is None or pd.isna(value) else int(value)  # type: ignore[arg-type]
