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
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .accounting import LineStats
from .errors import DamagedInput, InputError, NoEntries
from .peers import aggregate
from .schema import PROTOCOLS, TRUSTS, Projection
from .strength import LEGACY_PROTOCOLS, REASONS, weaknesses
from .timestamps import format_seconds, format_wall

__all__ = ["COLUMNS", "build_report", "direction_summary", "failures", "input_summary", "parse_fail_under", "period",
           "peer_table",
           "plaintext_peers", "shortfalls", "tls_level_codes", "tls_levels", "unverified_destinations", "weak_counts",
           "weak_peers"]

#: What these functions read of the session table (the engine returns only this): names and
#: addresses only where a list can show them (plaintext rows, pending ones that may be, failed
#: handshakes, weak TLS); elsewhere ``peer_key`` says whose row it is (a peer's status needs its
#: TLS rows too).
COLUMNS = Projection(
    ("kind", "start", "end", "offset", "host", "service", "peer_name", "peer_ip", "peer_key", "ip_version",
     "encryption", "evidence", "trust", "protocol", "cipher", "cipher_bits", "key_exchange", "failure_reason",
     "recipient_domain", "messages", "source", "day", "role", "hop", "tls_feature"),
    peer_verdicts=frozenset({"plaintext", "pending", "tls-failed"}),
    peer_protocols=LEGACY_PROTOCOLS,
    peer_weak=True,
)

Period = tuple[tuple[float, int | None], tuple[float, int | None]]


def _ordered(counts: Counter, order: Sequence[str]) -> dict[str, int]:
    """Nonzero counts: keys of ``order`` first, then any other (DTLS, future versions) by name,
    ``unknown`` last."""
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


def _tally(frame: pd.DataFrame, column: str, mask: np.ndarray, missing: str | None = None) -> Counter:
    """`_counts` of the rows of ``mask``, without copying them: a categorical column is counted
    on its codes."""
    series = frame[column]
    if not isinstance(series.dtype, pd.CategoricalDtype):
        return _counts(series[mask].to_frame(), column, missing)
    sizes = np.bincount(series.cat.codes.to_numpy()[mask].astype(np.int64) + 1,
                        minlength=len(series.cat.categories) + 1)
    counts: Counter = Counter({str(c): int(n) for c, n in zip(series.cat.categories, sizes[1:]) if n})
    if missing is not None and sizes[0]:
        counts[missing] += int(sizes[0])
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


def _all(frame: pd.DataFrame, mask: np.ndarray | None) -> np.ndarray:
    return np.ones(len(frame), dtype=bool) if mask is None else mask


def message_counts(frame: pd.DataFrame, mask: np.ndarray | None = None) -> dict:
    """Mail rather than connections: the messages of the rows (an inbound session's
    ``QUEUEID: client=`` lines, an outbound delivery that was sent), by their row's verdict."""
    mask = _all(frame, mask)
    verdicts = frame["encryption"]
    sums = np.bincount(verdicts.cat.codes.to_numpy()[mask].astype(np.int64) + 1,
                       weights=frame["messages"].to_numpy()[mask], minlength=len(verdicts.cat.categories) + 1)
    return _verdicts(Counter({str(k): int(v) for k, v in zip(verdicts.cat.categories, sums[1:]) if v}))


def weakness(frame: pd.DataFrame) -> np.ndarray:
    """Per row, the `tlslog.strength` reasons its protocol and cipher are weak, as bits (bit i:
    ``REASONS[i]``; 0: strong or nothing to judge), judged once per distinct combination."""
    if not len(frame):
        return np.zeros(0, dtype=np.uint8)
    protocols, ciphers = frame["protocol"].cat.categories, frame["cipher"].cat.categories
    # one int64 per row for the combination (codes are -1 when missing; bits fit in 17 bits)
    key = frame["protocol"].cat.codes.to_numpy().astype(np.int64) + 1
    key = key * (len(ciphers) + 1) + frame["cipher"].cat.codes.to_numpy() + 1
    key = key * (1 << 17) + frame["cipher_bits"].to_numpy(dtype=float, na_value=-1).astype(np.int64) + 1
    inverse, combos = pd.factorize(key)
    judged = np.zeros(len(combos), dtype=np.uint8)
    for i, combo in enumerate(combos.tolist()):
        rest, b = divmod(combo, 1 << 17)
        p, c = divmod(rest, len(ciphers) + 1)
        reasons = weaknesses(protocols[p - 1] if p else None, ciphers[c - 1] if c else None, b - 1 if b else None)
        judged[i] = sum(1 << REASONS.index(r) for r in reasons)
    return judged[inverse]


def direction_summary(frame: pd.DataFrame, mask: np.ndarray | None = None, weak: np.ndarray | None = None) -> dict:
    """Totals, verdict counts, coverage and breakdowns of the rows of ``mask`` (one direction),
    counted in place; ``weak``: `weakness` of the frame, when the caller has it."""
    mask = _all(frame, mask)
    tls = mask & (frame["encryption"] == "tls").to_numpy()
    versions = frame["ip_version"].to_numpy(dtype=float, na_value=np.nan)
    return {
        **_verdicts(_tally(frame, "encryption", mask)),
        "messages": message_counts(frame, mask),
        "by_protocol": _ordered(_tally(frame, "protocol", tls, missing="unknown"), PROTOCOLS),
        "by_trust": _ordered(_tally(frame, "trust", tls, missing="unknown"), TRUSTS),
        "by_ip_version": _ip_versions(_tally(frame, "ip_version", mask, missing="unknown")),
        "by_key_exchange": _ordered(_tally(frame, "key_exchange", tls, missing="unknown"), []),
        "ip_versions": {v: {**_verdicts(_tally(frame, "encryption", part)), "messages": message_counts(frame, part)}
                        for v, part in (("4", mask & (versions == 4)), ("6", mask & (versions == 6)))},
        "weak_tls": weak_counts(frame, tls, weakness(frame) if weak is None else weak),
    }


def tls_levels(frame: pd.DataFrame, mask: np.ndarray) -> dict[str, int]:
    """Deliveries of ``mask`` by the level of their Postfix 3.11 ``tls=`` field (``may``,
    ``may:none`` for a downgrade, ``dane``, ``!encrypt`` for a violation...), most first; empty
    for logs of older Postfix."""
    if "tls_feature" not in frame.columns:
        return {}
    codes, levels = tls_level_codes(frame["tls_feature"])
    picked = codes[mask]
    counts = np.bincount(picked[picked >= 0], minlength=len(levels))
    return dict(sorted(((levels[i], int(n)) for i, n in enumerate(counts) if n), key=lambda kv: (-kv[1], kv[0])))


def tls_level_codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Each row's ``tls=`` level (the text before ``/``) as an index into the distinct levels
    (sorted), -1 where none was logged: the text is split once per category, not per row."""
    values = column.array if isinstance(column.dtype, pd.CategoricalDtype) else pd.Categorical(column.astype(object))
    split = [str(v).split("/", 1)[0] for v in values.categories]
    levels = sorted(set(split))
    index = np.array([levels.index(level) for level in split] + [-1], dtype=np.int64)
    return index[values.codes], levels  # code -1 (not logged) picks the appended -1


def weak_counts(frame: pd.DataFrame, tls: np.ndarray, weak: np.ndarray) -> dict:
    """TLS rows (``tls``) that are weak (``weak``: `weakness`): in all, per reason, and
    ``unverified``: outbound deliveries whose trust is below Verified/Trusted (Untrusted or
    Anonymous; inbound, clients seldom show a certificate, so it is not counted there)."""
    bits = weak[tls]
    outbound = (frame["kind"] != "inbound").to_numpy()
    unverified = int((tls & outbound & frame["trust"].isin(("Untrusted", "Anonymous")).to_numpy()).sum())
    return {"total": int((bits > 0).sum()),
            **{r.replace("-", "_"): int(((bits >> i) & 1).sum()) for i, r in enumerate(REASONS)},
            "unverified": unverified}


def _merge(a: dict[str, int], b: dict[str, int], order: Sequence[str]) -> dict[str, int]:
    return _ordered(Counter(a) + Counter(b), order)


def _name(name: object, ip: object) -> tuple[str, str]:
    """A peer's name and address as text ('' for missing)."""
    return (name if isinstance(name, str) else "", ip if isinstance(ip, str) else "")


def _peer_groups(rows: pd.DataFrame, column: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The group of each row by ``column`` (missing values are a group too), and `aggregate`."""
    codes, uniques = pd.factorize(rows[column].to_numpy(), use_na_sentinel=False)
    return codes, aggregate(rows, codes, len(uniques))


def _texts(column: pd.Series, positions: np.ndarray) -> np.ndarray:
    """The values at ``positions`` as text ('' for missing), for sorting and output."""
    return column.iloc[positions].astype(object).fillna("").to_numpy()


#: What `plaintext_peers` reads of the rows of the peers it lists.
_PLAIN_COLUMNS = ["kind", "start", "end", "peer_name", "peer_ip", "encryption", "messages", "recipient_domain"]


def plaintext_peers(frame: pd.DataFrame, mask: np.ndarray, limit: int = 10, *,
                    by: str = "peer") -> tuple[list[dict], list[dict]]:
    """The peers among the rows of ``mask`` (``by="peer"``: ``name[ip]``; ``"domain"``:
    recipient domain) with plaintext rows, most first, each with its share of plaintext and
    status (`tlslog.peers`), and the downgrades (a plaintext row after a TLS one), first to
    happen first. Peers are told apart by ``peer_key``, so only plaintext rows need a name; only
    the rows of peers with a plaintext row are copied. Vectorised: a busy MX has 10^5 peers."""
    key = "peer_key" if by == "peer" else "recipient_domain"
    where = np.flatnonzero(mask)
    keys, _ = pd.factorize(frame[key].to_numpy()[where], use_na_sentinel=False)
    plain = (frame["encryption"] == "plaintext").to_numpy()[where]
    listed_peer = np.bincount(keys[plain], minlength=int(keys.max()) + 1 if len(keys) else 0) > 0
    columns = [frame.columns.get_loc(c) for c in _PLAIN_COLUMNS + ([key] if by == "peer" else [])]
    rows = frame.iloc[where[listed_peer[keys]], columns]
    if not len(rows):
        return [], []
    codes, agg = _peer_groups(rows, key)
    positions = np.flatnonzero((rows["encryption"] == "plaintext").to_numpy())
    if not len(positions):
        return [], []
    first = pd.Series(positions).groupby(codes[positions]).first()
    groups, at = first.index.to_numpy(), first.to_numpy()
    fields = ("peer_name", "peer_ip") if by == "peer" else ("domain",)
    texts = [_texts(rows["recipient_domain" if f == "domain" else f], at) for f in fields]
    plain = agg["plaintext"][groups]
    total = sum(agg[v][groups] for v in ("tls", "plaintext", "tls-failed", "unknown"))
    status = agg["status"][groups]
    count = "sessions" if by == "peer" else "deliveries"

    def who(i: int) -> dict:
        return {f: (t[i] or None) for f, t in zip(fields, texts)}

    listed = [{**who(i), count: int(plain[i]), "total": int(total[i]), "share": float(plain[i] / total[i]),
               "status": str(status[i])} for i in np.lexsort([*reversed(texts), -plain])[:limit]]
    down = np.flatnonzero(status == "downgrade")
    when = agg["downgrade_at"][groups[down]]
    downgrades = []
    for i in down[np.lexsort([*(t[down] for t in reversed(texts)), when])][:limit]:
        code = groups[i]
        downgrades.append({**who(i), "tls": int(agg["tls"][code]), "plaintext": int(plain[i]), "total": int(total[i]),
                           "first_tls": format_seconds(agg["first_tls"][code]), "downgrade_at": format_seconds(agg["downgrade_at"][code]),
                           "last_seen": format_seconds(agg["last_seen"][code])})
    return listed, downgrades


def peer_table(rows: pd.DataFrame, limit: int = 10) -> list[dict]:
    """The peers with the most rows (ties by name and address), with their counts."""
    if rows.empty or limit <= 0:
        return []
    sizes = rows.groupby(["peer_name", "peer_ip"], observed=True, dropna=False, sort=False).size()
    if limit < len(sizes):  # only the peers that can make the top (ties included) are sorted
        sizes = sizes[sizes >= np.partition(sizes.to_numpy(), len(sizes) - limit)[len(sizes) - limit]]
    top = sorted((-int(n), name if isinstance(name, str) else "", ip if isinstance(ip, str) else "")
                 for (name, ip), n in sizes.items() if n)[:limit]
    return [{"peer_name": name or None, "peer_ip": ip or None, "sessions": -n} for n, name, ip in top]


def unverified_destinations(frame: pd.DataFrame, mask: np.ndarray, limit: int = 10) -> list[dict]:
    """Recipient domains (among the rows of ``mask``) no delivery of which was Verified or
    Trusted (plaintext, or TLS a man in the middle could intercept): where
    ``smtp_tls_security_level = verify`` would break mail. Most deliveries first."""
    rows = frame.loc[mask, ["recipient_domain", "trust", "encryption"]]
    if not len(rows):
        return []
    domains = rows["recipient_domain"].astype(object).fillna("")
    trusted = rows["trust"].isin(("Verified", "Trusted")).to_numpy() & (rows["encryption"] == "tls").to_numpy()
    counted = (rows["encryption"] != "unknown").to_numpy()
    frame = pd.DataFrame({"domain": domains.to_numpy(), "trusted": trusted, "counted": counted,
                          "tls": (rows["encryption"] == "tls").to_numpy(),
                          "plaintext": (rows["encryption"] == "plaintext").to_numpy()})
    sums = frame.groupby("domain", sort=False)[["trusted", "counted", "tls", "plaintext"]].sum()
    sums = sums[(sums["trusted"] == 0) & (sums["counted"] > 0)]
    out: list[dict] = [{"domain": domain or None, "deliveries": int(r.counted), "tls": int(r.tls),
                        "plaintext": int(r.plaintext)} for domain, r in sums.iterrows()]
    out.sort(key=lambda i: (-i["deliveries"], i["domain"] or ""))
    return out[:limit]


def weak_peers(frame: pd.DataFrame, mask: np.ndarray, weak: np.ndarray, limit: int = 10) -> list[dict]:
    """The peers with the most weak TLS rows among those of ``mask`` (``weak``: `weakness`),
    with the reasons."""
    chosen = mask & (weak > 0) & (frame["encryption"] == "tls").to_numpy()
    if not chosen.any():
        return []
    rows = pd.DataFrame({"name": frame["peer_name"].astype(object).to_numpy()[chosen],
                         "ip": frame["peer_ip"].astype(object).to_numpy()[chosen], "weak": weak[chosen]})
    peers: dict[tuple[str, str], list] = {}
    for (name, ip, bits), n in rows.groupby(["name", "ip", "weak"], dropna=False, sort=False).size().items():
        entry = peers.setdefault(_name(name, ip), [0, 0])
        entry[0] += int(n)
        entry[1] |= int(bits)
    top = sorted(peers.items(), key=lambda kv: (-kv[1][0], kv[0]))[:limit]
    return [{"peer_name": name or None, "peer_ip": ip or None, "sessions": n,
             "reasons": [r for i, r in enumerate(REASONS) if bits >> i & 1]} for (name, ip), (n, bits) in top]


def failures(frame: pd.DataFrame, mask: np.ndarray, limit: int = 10) -> list[dict]:
    """Failed TLS handshakes and TLS-required deferrals among the rows of ``mask``, by reason
    (``failure_reason``, else the evidence), most first: how many, from how many peers, and the
    peer with the most."""
    failed = mask & ((frame["encryption"] == "tls-failed").to_numpy()
                     | (frame["evidence"] == "starttls-not-offered").to_numpy())
    part = frame.loc[failed, ["failure_reason", "evidence", "peer_key", "peer_name", "peer_ip"]]
    if not len(part):
        return []
    reasons = part["failure_reason"].astype(object).where(part["failure_reason"].notna(), part["evidence"].astype(object))
    frame = pd.DataFrame({"reason": reasons.to_numpy(), "key": part["peer_key"].to_numpy(),
                          "name": part["peer_name"].astype(object).to_numpy(),
                          "ip": part["peer_ip"].astype(object).to_numpy()})
    out: list[dict] = []
    for reason, group in frame.groupby("reason", sort=False):
        per_peer = group.groupby("key", sort=False).size()
        top = group[group["key"] == per_peer.idxmax()].iloc[0]
        name, ip = _name(top["name"], top["ip"])
        out.append({"reason": str(reason), "count": int(len(group)), "peers": len(per_peer),
                    "top_peer": f"{name}[{ip}]" if ip else (name or None)})
    out.sort(key=lambda i: (-i["count"], i["reason"]))
    return out[:limit]


def by_service(frame: pd.DataFrame, mask: np.ndarray, weak: np.ndarray) -> dict[str, dict]:
    """The direction summary (counts, coverage, messages, protocol, trust, key exchange, IP
    versions, weak TLS) per service as logged among the rows of ``mask``, in name order: a
    submission port on old TLS is not hidden by a healthy MX."""
    services = frame["service"]
    codes = services.cat.codes.to_numpy()
    present = np.unique(codes[mask])
    named = sorted((str(services.cat.categories[c]) if c >= 0 else "", c) for c in present)
    return {name: direction_summary(frame, mask & (codes == c), weak) for name, c in named}


def _day_text(day: int) -> str:
    return format_wall(day * 86400.0, None)[:10] if day >= 0 else "an unknown day"  # type: ignore[index]


_BLIND_NOTES = 5  # blind stretches named one by one; more are summed up


def _blind_notes(label: str, noun: str, frame: pd.DataFrame, mask: np.ndarray) -> list[str]:
    """Where rows stayed unknown because their service logged no TLS lines: per input, host and
    service, how many and on which days."""
    blind = frame.loc[mask & (frame["evidence"] == "no-tls-logging").to_numpy(), ["source", "host", "service", "day"]]
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


def _notes(frame: pd.DataFrame, inbound: np.ndarray, outbound: np.ndarray) -> list[str]:
    notes = []
    for label, noun, mask in (("inbound", "sessions", inbound), ("outbound", "deliveries", outbound)):
        blind = int((mask & (frame["encryption"] == "tls").to_numpy() & frame["protocol"].isna().to_numpy()).sum())
        if blind:
            notes.append(
                f"{blind} {label} TLS {noun} have no TLS summary line (TLS log level 0?):"
                " protocol, cipher and trust are unknown for them."
            )
        notes.extend(_blind_notes(label, noun, frame, mask))
    return notes


def _internal_notes(internal: dict) -> list[str]:
    inbound, outbound = internal["inbound"]["total"], internal["outbound"]["total"]
    if not inbound and not outbound:
        return []
    return [f"{inbound:,} inbound sessions and {outbound:,} outbound deliveries are hops inside the mail system"
            " (loopback peers, local transports, configured networks or services: a content filter's round trip);"
            " they are counted apart, not in the coverage of mail on the wire (--internal none counts them too)."]


def untrusted_note(versions: dict[str, tuple[str, ...]], untrusted: int) -> str | None:
    """Postfix 3.6 to 3.10.3 logged some Trusted peers as Untrusted (fixed in 3.10.4): a note
    when a host's master lines name such a version and ``untrusted`` rows say Untrusted.

    ``versions``: host ("" when unknown) -> versions its master lines named. A snapshot such as
    ``3.6-20200710`` counts as its release (3.6); a version that does not read as Postfix's
    ``major.minor[.patch][-suffix]`` is ignored. None when no version is affected or nothing
    was Untrusted.
    """
    if untrusted <= 0:
        return None
    affected: dict[str, list[str]] = {}  # version -> hosts
    for host in sorted(versions, key=lambda h: (h == "", h)):
        for version in versions[host]:
            release = _postfix_release(version)
            if release is not None and _BUGGY_TRUST[0] <= release <= _BUGGY_TRUST[1]:
                hosts = affected.setdefault(version.strip(), [])
                if host not in hosts:
                    hosts.append(host)
    if not affected:
        return None
    parts = []
    for version in sorted(affected, key=lambda v: (_postfix_release(v), v)):
        hosts = affected[version]
        named = ", ".join(host or "an unnamed host" for host in hosts)
        parts.append(version if hosts == [""] else f"{version} (on {named})")
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    rows = ("the 1 Untrusted TLS session or delivery may be a Trusted one" if untrusted == 1 else
            f"the {untrusted:,} Untrusted TLS sessions and deliveries may include Trusted ones")
    return (f"Postfix {listed} {'logs' if len(parts) == 1 else 'log'} some Trusted peers as Untrusted"
            f" (fixed in 3.10.4): {rows}.")


#: The releases that logged some Trusted peers as Untrusted (first, last).
_BUGGY_TRUST = ((3, 6, 0), (3, 10, 3))


def _postfix_release(version: str) -> tuple[int, int, int] | None:
    """``3.7.11`` -> (3, 7, 11); ``3.6-20200710`` (a snapshot) -> (3, 6, 0); None if unreadable."""
    parts = version.strip().split("-", 1)[0].split(".")
    if not 2 <= len(parts) <= 3 or not all(p.isascii() and p.isdigit() for p in parts):
        return None
    major, minor, *patch = (int(p) for p in parts)
    return major, minor, patch[0] if patch else 0


def _untrusted_notes(frame: pd.DataFrame, external: np.ndarray,
                     versions: dict[str, tuple[str, ...]] | None) -> list[str]:
    """`untrusted_note` for the external TLS rows (both directions) the frame calls Untrusted."""
    if not versions:
        return []
    untrusted = external & (frame["encryption"] == "tls").to_numpy() & (frame["trust"] == "Untrusted").to_numpy()
    note = untrusted_note(versions, int(untrusted.sum()))
    return [note] if note else []


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


def _directions(frame: pd.DataFrame, weak: np.ndarray) -> dict[str, dict]:
    """The four blocks of mail on the wire: every smtpd session, its MX and submission parts,
    every smtp delivery."""
    external = (frame["hop"] == "external").to_numpy()
    is_inbound = (frame["kind"] == "inbound").to_numpy()
    role = frame["role"].to_numpy()
    masks = {"inbound": is_inbound & external, "mx": (role == "mx") & external,
             "submission": (role == "submission") & external, "outbound": ~is_inbound & external}
    return {name: direction_summary(frame, mask, weak) for name, mask in masks.items()}


def periods(frame: pd.DataFrame, by: str, weak: np.ndarray | None = None) -> list[dict]:
    """Per day, ISO week (Monday first) or month, in time order: the four blocks of mail on the
    wire, each with the change of coverage (sessions and messages) against the period before, in
    percentage points (None for the first period or when either side has no coverage)."""
    if by not in PERIODS:
        raise ValueError(f"no such period: {by!r} (one of {', '.join(PERIODS)})")
    days = frame["day"].to_numpy()
    known = days >= 0
    labels = {day: _period_of(int(day), by) for day in np.unique(days[known])}
    keys = np.array([labels[d][0] if d >= 0 else "" for d in days], dtype=object) if len(days) else np.array([])
    weak = weakness(frame) if weak is None else weak
    out: list[dict] = []
    previous: dict[str, dict] | None = None
    ordered = sorted(set(labels.values()))
    number = {label: i for i, (label, _) in enumerate(ordered)}
    codes = np.array([number.get(k, -1) for k in keys], dtype=np.int64)
    order = np.argsort(codes, kind="stable")  # each period's rows together: one pass over the table
    bounds = np.searchsorted(codes[order], np.arange(len(ordered) + 1))
    for i, (label, start) in enumerate(ordered):
        rows = order[bounds[i]:bounds[i + 1]]
        blocks = _directions(frame.iloc[rows], weak[rows])
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


def input_summary(read: Sequence[str], errors: Sequence[InputError]) -> dict:
    """The ``inputs`` block: how many inputs were read, skipped (could not be opened or read at
    all: ``--skip-bad-files``, or the local engine going on without them) or damaged (read up to
    the damage), with each problem, so a saved report says when it covers less than was asked."""
    def problem(error: InputError) -> str:
        return "damaged" if isinstance(error, DamagedInput) else "empty" if isinstance(error, NoEntries) else "skipped"

    problems = [{"input": e.name, "problem": problem(e), "reason": e.reason} for e in errors]
    return {"read": len(read), "skipped": sum(p["problem"] == "skipped" for p in problems),
            "damaged": sum(p["problem"] == "damaged" for p in problems), "problems": problems}


def _input_notes(inputs: dict | None) -> list[str]:
    if not inputs or not (inputs["skipped"] or inputs["damaged"]):
        return []
    parts = [f"{inputs[k]} input{'' if inputs[k] == 1 else 's'} {what}"
             for k, what in (("skipped", "could not be read"),
                             ("damaged", f"{'was' if inputs['damaged'] == 1 else 'were'} damaged and read in part"))
             if inputs[k]]
    named = "; ".join(f"{p['input']}: {p['reason']}" for p in inputs["problems"] if p["problem"] != "empty")
    read = inputs["read"]
    covers = f"this report covers the {read} input{'' if read == 1 else 's'} read" if read else "nothing was read"
    return [f"{' and '.join(parts)} ({named}): {covers}."]


def build_report(frame: pd.DataFrame, stats: LineStats, *, peers: int = 10, by: str | None = None,
                 postfix_versions: dict[str, tuple[str, ...]] | None = None, inputs: dict | None = None) -> dict:
    """The whole report as JSON-ready data; ``by`` (day, week, month) adds ``periods``;
    ``postfix_versions`` (host → versions its start lines named) may add a note; ``inputs``
    (`input_summary`) is added as it is, with a note when some were skipped or damaged."""
    external = (frame["hop"] == "external").to_numpy()
    is_inbound = (frame["kind"] == "inbound").to_numpy()
    inbound, outbound = is_inbound & external, ~is_inbound & external
    weak = weakness(frame)
    blocks = _directions(frame, weak)
    for name, mask in (("inbound", inbound), ("outbound", outbound)):
        blocks[name]["by_service"] = by_service(frame, mask, weak)
    blocks["outbound"]["by_tls_level"] = tls_levels(frame, outbound)
    summary_in, summary_out = blocks["inbound"], blocks["outbound"]
    plain_in, down_in = plaintext_peers(frame, inbound, peers)
    plain_out, _ = plaintext_peers(frame, outbound, peers)
    domains_out, down_out = plaintext_peers(frame, outbound, peers, by="domain")
    legacy = frame.loc[((frame["encryption"] == "tls") & frame["protocol"].isin(LEGACY_PROTOCOLS)).to_numpy() & external,
                       _PEER_COLUMNS]
    internal = {"inbound": direction_summary(frame, is_inbound & ~external, weak),
                "outbound": direction_summary(frame, ~is_inbound & ~external, weak)}
    span = period(frame)
    return {
        **blocks,
        "internal": internal,
        "by_protocol": _merge(summary_in["by_protocol"], summary_out["by_protocol"], PROTOCOLS),
        "by_trust": _merge(summary_in["by_trust"], summary_out["by_trust"], TRUSTS),
        "by_ip_version": _ip_versions(Counter(summary_in["by_ip_version"]) + Counter(summary_out["by_ip_version"])),
        "lines": stats.as_dict(),
        "period": {"first": format_wall(*span[0]), "last": format_wall(*span[1])} if span else None,
        "plaintext_peers": {"inbound": plain_in, "outbound": plain_out},
        "plaintext_domains": {"outbound": domains_out},
        "downgrades": {"inbound": down_in, "outbound": down_out},
        "unverified_destinations": unverified_destinations(frame, outbound, peers),
        "legacy_tls_peers": peer_table(legacy, peers),
        "weak_tls_peers": {"inbound": weak_peers(frame, inbound, weak, peers),
                           "outbound": weak_peers(frame, outbound, weak, peers)},
        "failures": {"inbound": failures(frame, inbound, peers), "outbound": failures(frame, outbound, peers)},
        "notes": _notes(frame, inbound, outbound) + _internal_notes(internal)
        + _untrusted_notes(frame, external, postfix_versions) + _input_notes(inputs),
        **({"inputs": inputs} if inputs is not None else {}),
        **({"by": by, "periods": periods(frame, by, weak)} if by else {}),
    }


#: ``--fail-under`` names: the blocks whose coverage of mail they check.
FAIL_UNDER = {"in": "inbound", "inbound": "inbound", "out": "outbound", "outbound": "outbound", "mx": "mx",
              "submission": "submission"}


def parse_fail_under(text: str) -> dict[str, float]:
    """``90`` (inbound and outbound) or ``in=90,out=95,mx=99,submission=100`` → block → percent
    (ValueError when it is neither)."""
    def percent(value: str) -> float:
        number = float(value.strip().rstrip("%"))
        if not 0 <= number <= 100:
            raise ValueError
        return number

    try:
        if "=" not in text:
            both = percent(text)
            return {"inbound": both, "outbound": both}
        out = {}
        for part in text.split(","):
            name, _, number = part.partition("=")
            out[FAIL_UNDER[name.strip().lower()]] = percent(number)
        return out
    except (KeyError, ValueError):
        raise ValueError(f"not a percentage or a list of direction=percentage: {text!r} "
                         "(90, or in=90,out=95,mx=99,submission=100)") from None


def shortfalls(report: dict, thresholds: dict[str, float]) -> list[str]:
    """The directions whose coverage of mail is below its threshold, as ``inbound 87.5% < 90%``
    (a direction without mail has no coverage to fall short)."""
    out = []
    for block, minimum in thresholds.items():
        coverage = report[block]["messages"]["coverage"]
        if coverage is not None and coverage * 100 < minimum:
            out.append(f"{block} {coverage * 100:.1f}% < {minimum:g}%")
    return out
