"""Who still talks to us in plaintext: pure functions from the settled session table to peer rows.

Five lists (the ``tlslog peers --format json`` contract, see README): ``inbound`` (clients,
``name[ip]``), ``inbound_ips``, ``inbound_domains`` (the registered domain of the client's
name, public-suffix aware), ``outbound_domains`` (recipient domains) and ``outbound_relays``
(``name[ip]`` of the servers delivered to). Each row: ``total``, ``tls``, ``plaintext``,
``tls_failed``, ``unknown``, ``messages``, ``coverage``, ``protocols``, ``best_trust``,
``ip_versions``, ``first_seen``, ``last_seen``, ``status`` and ``downgrade_at``.

A row's time is that of its first line for a session, of its status line for a delivery (by
the wall clock the log shows). ``status``:

``downgrade``            a plaintext row later than one of the peer's TLS rows (STARTTLS
                         stripped, or a broken upgrade); ``downgrade_at`` is the first such row
``sometimes-plaintext``  plaintext and TLS rows, every plaintext one before the first TLS one
``always-plaintext``     plaintext rows and no TLS row
``always-tls``           TLS rows and no plaintext row (failed handshakes may be among them)
``tls-failed``           only failed handshakes
``unknown``              only rows without evidence either way
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable

import numpy as np
import pandas as pd

from .schema import PROTOCOLS, TRUSTS, Projection
from .timestamps import format_seconds

__all__ = ["COLUMNS", "LISTS", "SORTS", "STATUSES", "aggregate", "build_peers", "event_times", "group_codes",
           "peer_rows", "registered_domain", "registered_domains"]

#: What `build_peers` reads: peers on every row (a status needs a peer's TLS rows too).
COLUMNS = Projection(("kind", "start", "end", "offset", "peer_name", "peer_ip", "encryption", "protocol", "trust",
                      "messages", "recipient_domain", "role", "hop", "service", "ip_version"))
LISTS = ("inbound", "inbound_ips", "inbound_domains", "outbound_domains", "outbound_relays")
STATUSES = ("downgrade", "always-plaintext", "sometimes-plaintext", "tls-failed", "unknown", "always-tls")
SORTS = ("status", "plaintext", "total", "coverage", "last-seen", "name")


@functools.cache
def _suffixes() -> Callable[[str], str | None]:
    # The ICANN section only: under the private one every cloud host name
    # (ec2-…compute-1.amazonaws.com) would be a domain of its own.
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(only_icann=True).privatesuffix


def registered_domain(name: object) -> str | None:
    """The registered domain of a host name (``mail-1.posteo.de`` → ``posteo.de``; None for
    ``unknown``, an address, or a name without one), from the public suffix list the
    ``publicsuffixlist`` package ships: nothing is fetched."""
    if not isinstance(name, str) or not name or name == "unknown":
        return None
    text = name.strip(".").lower()
    try:
        ipaddress.ip_address(text)
        return None
    except ValueError:
        pass
    return _suffixes()(text)


def event_times(frame: pd.DataFrame) -> np.ndarray:
    """Wall-clock seconds of each row: its first line for a session, its status line for a
    delivery (its first line when it has none)."""
    start = frame["start"].to_numpy(dtype=float)
    if "end" not in frame.columns:
        return start
    end = frame["end"].to_numpy(dtype=float)
    outbound = (frame["kind"] != "inbound").to_numpy()
    return np.where(outbound & ~np.isnan(end), end, start)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def aggregate(rows: pd.DataFrame, codes: np.ndarray, groups: int) -> dict[str, np.ndarray]:
    """Per group (``codes``: the group of each row, 0 .. groups-1): rows per verdict, messages,
    first and last seen, the first TLS row and the first plaintext row after it (NaN: none),
    and the status (see the module docstring). Vectorised: millions of rows, any number of peers."""
    masks = {v: (rows["encryption"] == v).to_numpy() for v in ("tls", "plaintext", "tls-failed", "unknown")}
    when = event_times(rows)
    out = {v: np.bincount(codes[mask], minlength=groups) for v, mask in masks.items()}
    out["messages"] = np.bincount(codes, weights=rows["messages"].to_numpy(dtype=float), minlength=groups)

    def per_group(values: np.ndarray, how: str) -> np.ndarray:
        return pd.Series(values).groupby(codes).agg(how).reindex(range(groups)).to_numpy(dtype=float)

    out["first_seen"], out["last_seen"] = per_group(when, "min"), per_group(when, "max")
    is_tls = masks["tls"]
    out["first_tls"] = per_group(np.where(is_tls, when, np.nan), "min")
    later = masks["plaintext"] & (when > out["first_tls"][codes])
    out["downgrade_at"] = per_group(np.where(later, when, np.nan), "min")
    plain, tls = out["plaintext"] > 0, out["tls"] > 0
    out["status"] = np.select(
        [plain & ~np.isnan(out["downgrade_at"]), plain & tls, plain, tls, out["tls-failed"] > 0],
        ["downgrade", "sometimes-plaintext", "always-plaintext", "always-tls", "tls-failed"], "unknown")
    return out


def peer_rows(rows: pd.DataFrame, keys: dict[str, pd.Series | np.ndarray], *, plaintext: bool = False,
              sort: str = "status", limit: int = 0) -> list[dict]:
    """One row per distinct value of ``keys`` (output field → values aligned with ``rows``;
    rows whose keys are all missing are one group) with counts, times and status, in ``sort``
    order (``status``: downgrades first, then by plaintext rows), cut to ``limit`` (0: all);
    ``plaintext`` keeps peers with plaintext rows only. The order and the cut are made on the
    groups' numbers, so only the rows shown are built (a busy MX has hundreds of thousands)."""
    if sort not in SORTS:
        raise ValueError(f"no such sort: {sort!r} (one of {', '.join(SORTS)})")
    if not len(rows):
        return []
    codes, representative, labels = group_codes(keys)
    groups = len(representative)
    agg = aggregate(rows, codes, groups)
    chosen = _order(agg, labels, sort, np.flatnonzero(agg["plaintext"] > 0) if plaintext else np.arange(groups),
                    limit)
    offsets = rows["offset"].to_numpy(dtype=float) if "offset" in rows.columns else np.full(len(rows), np.nan)
    first_offset = pd.Series(offsets).groupby(codes).first().reindex(range(groups)).to_numpy()
    wanted = np.zeros(groups, dtype=bool)
    wanted[chosen] = True
    in_chosen = wanted[codes]
    is_tls = (rows["encryption"] == "tls").to_numpy()
    protocols: dict[int, set[str]] = {int(c): set() for c in chosen}
    versions: dict[int, set[str]] = {int(c): set() for c in chosen}
    tls_rows = is_tls & in_chosen
    for code, protocol in set(zip(codes[tls_rows].tolist(), rows["protocol"].astype(object).to_numpy()[tls_rows].tolist())):
        if isinstance(protocol, str):
            protocols[code].add(protocol)
    if "ip_version" in rows.columns:
        for code, version in set(zip(codes[in_chosen].tolist(), rows["ip_version"].astype(object).to_numpy()[in_chosen]
                                     .tolist())):
            if version is not None and version is not pd.NA and version == version:
                versions[code].add(str(int(version)))
    rank = {t: i for i, t in enumerate(TRUSTS)}
    best = np.full(groups, len(TRUSTS))
    trust_rank = np.array([rank.get(t, len(TRUSTS)) if isinstance(t, str) else len(TRUSTS)
                           for t in rows["trust"].astype(object).to_numpy()[tls_rows]], dtype=int)
    np.minimum.at(best, codes[tls_rows], trust_rank)
    out = []
    for code in chosen.tolist():
        row: dict = {name: labels[name][code] for name in keys}
        tls, plain, failed, unknown = (int(agg[v][code]) for v in ("tls", "plaintext", "tls-failed", "unknown"))
        counted = tls + plain + failed
        offset = first_offset[code]
        row.update(
            total=tls + plain + failed + unknown, tls=tls, plaintext=plain, tls_failed=failed, unknown=unknown,
            messages=int(agg["messages"][code]), coverage=tls / counted if counted else None,
            protocols=[p for p in PROTOCOLS if p in protocols[code]]
            + sorted(p for p in protocols[code] if p not in PROTOCOLS),
            best_trust=TRUSTS[best[code]] if best[code] < len(TRUSTS) else None,
            ip_versions=sorted(versions[code]),
            first_seen=format_seconds(agg["first_seen"][code], offset), last_seen=format_seconds(agg["last_seen"][code], offset),
            status=str(agg["status"][code]), downgrade_at=format_seconds(agg["downgrade_at"][code], offset),
        )
        out.append(row)
    return out


def group_codes(keys: dict[str, pd.Series | np.ndarray]) -> tuple[np.ndarray, np.ndarray, dict[str, list[str | None]]]:
    """The group of each row (numbered in order of first appearance; a missing value is a value),
    each group's first row, and its key values: on category codes, never hashing text per row."""
    parts = []
    for values in keys.values():
        if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):
            parts.append(np.asarray(values.array.codes, dtype=np.int64) + 1)  # type: ignore[union-attr]
        else:
            parts.append(pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=False)[0].astype(np.int64))
    combined = np.zeros(len(parts[0]), dtype=np.int64)
    for part in parts:
        combined = combined * (int(part.max()) + 1 if len(part) else 1) + part
    codes, _ = pd.factorize(combined)
    representative = np.full(int(codes.max()) + 1, len(codes))
    np.minimum.at(representative, codes, np.arange(len(codes)))
    labels = {name: [_text(v) for v in (values.iloc[representative].astype(object) if isinstance(values, pd.Series)
                                        else np.asarray(values, dtype=object)[representative])]
              for name, values in keys.items()}
    return codes, representative, labels


def _order(agg: dict[str, np.ndarray], labels: dict[str, list[str | None]], sort: str, groups: np.ndarray,
           limit: int = 0) -> np.ndarray:
    """The groups in ``sort`` order, ties by name (domain, peer name, address), the first
    ``limit`` of them (0: all). With a limit, only the groups that can make it by their
    numbers (ties included) are sorted by name."""
    plain = agg["plaintext"]
    total = agg["tls"] + plain + agg["tls-failed"] + agg["unknown"]
    counted = agg["tls"] + plain + agg["tls-failed"]
    numbers: list[np.ndarray] = {  # the numeric part of each order, most significant first
        "status": lambda: [np.array([STATUSES.index(v) for v in agg["status"]]), -plain, -total],
        "plaintext": lambda: [-plain, -total],
        "total": lambda: [-total],
        "coverage": lambda: [np.where(counted > 0, agg["tls"] / np.maximum(counted, 1), 2.0), -total],
        "last-seen": lambda: [np.nan_to_num(agg["last_seen"], nan=-np.inf)],
        "name": lambda: [],
    }[sort]()
    if limit and numbers and len(groups) > limit:
        keys = np.stack([n[groups] for n in numbers]).astype(float)
        ranked = groups[np.lexsort(keys[::-1])]
        last = np.stack([n[ranked[limit - 1]] for n in numbers]).astype(float)
        cut = np.stack([n[ranked] for n in numbers]).astype(float)
        beyond = np.zeros(len(ranked), dtype=bool)  # strictly after the limit-th group's numbers
        decided = np.zeros(len(ranked), dtype=bool)
        for column, bound in zip(cut, last):
            beyond |= ~decided & (column > bound)
            decided |= column != bound
        groups = ranked[~beyond]
    empty = [""] * len(next(iter(labels.values())))
    names = [[v or "" for v in labels.get(k, empty)] for k in ("domain", "peer_name", "peer_ip")]
    ordered = sorted(groups.tolist(), key=lambda code: (*(n[code] for n in numbers),
                                                        names[0][code], names[1][code], names[2][code]))
    return np.array(ordered[:limit] if limit else ordered, dtype=np.int64)


def build_peers(frame: pd.DataFrame, *, plaintext: bool = False, limit: int = 0, sort: str = "status",
                lists: tuple[str, ...] = LISTS) -> dict[str, list[dict]]:
    """The peer lists of mail on the wire (external rows), each sorted (``status``: downgrades
    first, then by plaintext rows) and cut to ``limit`` rows (0: all); ``plaintext`` keeps peers
    with plaintext rows only."""
    external = frame.loc[(frame["hop"] == "external").to_numpy()]
    inbound = external.loc[(external["kind"] == "inbound").to_numpy()].reset_index(drop=True)
    outbound = external.loc[(external["kind"] != "inbound").to_numpy()].reset_index(drop=True)
    names_in = inbound["peer_name"]
    domains_in = registered_domains(names_in)
    keyed: dict[str, tuple[pd.DataFrame, dict]] = {
        "inbound": (inbound, {"peer_name": names_in, "peer_ip": inbound["peer_ip"]}),
        "inbound_ips": (inbound, {"peer_ip": inbound["peer_ip"]}),
        "inbound_domains": (inbound, {"domain": domains_in}),
        "outbound_domains": (outbound, {"domain": outbound["recipient_domain"]}),
        "outbound_relays": (outbound, {"peer_name": outbound["peer_name"], "peer_ip": outbound["peer_ip"]}),
    }
    return {name: peer_rows(keyed[name][0], keyed[name][1], plaintext=plaintext, sort=sort, limit=limit)
            for name in lists}


def registered_domains(names: pd.Series) -> np.ndarray:
    """`registered_domain` of every name, worked out once per distinct name."""
    if not isinstance(names.dtype, pd.CategoricalDtype):
        return names.astype(object).map(registered_domain).to_numpy(dtype=object)
    array = names.array
    domains = np.array([registered_domain(n) for n in array.categories] + [None], dtype=object)
    return domains[array.codes]
