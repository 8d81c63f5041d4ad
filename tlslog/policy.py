"""What breaks if TLS is required: pure functions from the settled session table to a preview
of each security level and a draft ``smtp_tls_policy_maps`` table.

**Outbound**, per recipient domain (mail on the wire only), over the deliveries of the period
(one row per recipient and status line, retries included), what each level of
``smtp_tls_security_level`` would have done:

``encrypt``    fails every delivery that was not encrypted: ``plaintext`` and ``tls-failed`` rows
``verify``,    also fail TLS deliveries whose certificate was not trusted (``Untrusted``,
``secure``     ``Anonymous``). ``Trusted`` means the chain was valid; below ``verify`` Postfix
               does not check the name, so those are counted apart (``name_unchecked``): only
               ``Verified`` deliveries prove that ``verify`` would have passed
``dane-only``  fails every delivery without DANE evidence (Postfix 3.11's ``tls=dane``);
               None when no delivery of the domain has a ``tls=`` field at all (older Postfix)

``tls_levels`` counts the domain's deliveries by the level of their ``tls=`` field (3.11+: the
level Postfix applied, ``may``, ``may:none`` for a downgrade, ``!encrypt`` for a violation...).

Deliveries that made no connection (``relay=none``: no server answered, a DNS failure) are
counted as ``not_connected`` and judged neither way: requiring TLS changes nothing for them.
Other ``unknown`` rows (the log says nothing either way: TLS logging off, a cut-off delivery)
are counted and block a raise. The ``strongest`` level every delivery met: ``dane-only`` (all DANE), ``verify`` (all
Verified), ``encrypt`` (all TLS), else ``may``. The draft map (`policy_map`) raises a domain to
it only when every delivery of the period supports it and there were at least
``min_deliveries``; a domain with a plaintext, downgraded, failed or unknown delivery stays at
``may``, commented out with the reason (a ``may`` line would lower a stricter default).

**Inbound**, per role (``mx``, ``submission``): the sessions and messages that
``smtpd_tls_security_level = encrypt`` would have refused (plaintext and failed-handshake
sessions), per client registered domain. RFC 3207 forbids requiring STARTTLS on a publicly
referenced MX; the preview shows who would be affected (submission is where it belongs).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .peers import aggregate, group_codes, registered_domains
from .report import tls_level_codes
from .table import per_value
from .schema import Projection
from .timestamps import format_seconds

__all__ = ["COLUMNS", "LEVELS", "build_policy", "is_dane", "policy_map", "policy_map_text"]

#: What `build_policy` reads of the session table.
COLUMNS = Projection(("kind", "start", "end", "offset", "encryption", "evidence", "trust", "recipient_domain",
                      "peer_name", "tls_feature", "messages", "role", "hop"))
#: The levels the preview judges, weakest first (``none`` and ``may`` never fail a delivery).
LEVELS = ("may", "encrypt", "verify", "dane-only")
#: A domain that may go into a map unquoted.
_DOMAIN = re.compile(r"\A(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}\Z|\A\[[0-9a-f.:]+\]\Z")


def is_dane(feature: object) -> bool:
    """Whether a Postfix 3.11 ``tls=`` field shows a DANE-authenticated delivery: the effective
    level (after a ``:downgrade``) is ``dane``; ``!`` (policy violation) and ``?`` (undecided) are not."""
    if not isinstance(feature, str) or not feature or feature.startswith("!"):
        return False
    level = feature.split("/", 1)[0]
    return not level.endswith("?") and level.rsplit(":", 1)[-1] == "dane"


def _outbound(frame: pd.DataFrame, min_deliveries: int) -> list[dict]:
    rows = frame.loc[((frame["kind"] != "inbound") & (frame["hop"] == "external")).to_numpy()].reset_index(drop=True)
    if not len(rows):
        return []
    codes, _, labels = group_codes({"domain": rows["recipient_domain"]})
    groups = len(labels["domain"])
    agg = aggregate(rows, codes, groups)
    tls = (rows["encryption"] == "tls").to_numpy()
    trust = {t: np.bincount(codes[tls & (rows["trust"] == t).to_numpy()], minlength=groups)
             for t in ("Verified", "Trusted", "Untrusted", "Anonymous")}
    logged = ~rows["tls_feature"].isna().to_numpy()
    dane = per_value(rows["tls_feature"], is_dane)
    featured = np.bincount(codes[logged], minlength=groups)
    no_connection = np.bincount(codes[(rows["evidence"] == "no-connection").to_numpy()], minlength=groups)
    level_codes, level_names = tls_level_codes(rows["tls_feature"])
    per_level = np.bincount(codes[logged] * len(level_names) + level_codes[logged],
                            minlength=groups * len(level_names)).reshape(groups, len(level_names))
    tls_levels = {code: {level_names[i]: int(n) for i, n in enumerate(per_level[code]) if n} for code in range(groups)}
    danes = np.bincount(codes[dane], minlength=groups)
    relays = pd.DataFrame({"g": codes, "relay": rows["peer_name"].astype(object)}).dropna()
    top_relays = relays.groupby(["g", "relay"]).size().reset_index(name="n").sort_values(
        ["g", "n", "relay"], ascending=[True, False, True]).groupby("g").head(3).groupby("g")["relay"].agg(list)
    out = []
    for code in range(groups):
        domain = labels["domain"][code]
        n_tls, plain, failed, unknown = (int(agg[v][code]) for v in ("tls", "plaintext", "tls-failed", "unknown"))
        total = n_tls + plain + failed + unknown
        not_connected = int(no_connection[code])
        unknown -= not_connected
        judged = total - not_connected
        verified, trusted = int(trust["Verified"][code]), int(trust["Trusted"][code])
        not_trusted = n_tls - verified - trusted
        n_dane = int(danes[code])
        would_fail = {
            "encrypt": plain + failed,
            "verify": plain + failed + not_trusted,
            "dane-only": (judged - unknown - n_dane) if featured[code] else None,
        }
        status = str(agg["status"][code])
        if plain or failed or unknown or not n_tls:
            strongest = "may"
        elif featured[code] and n_dane == n_tls:
            strongest = "dane-only"
        elif verified == n_tls:
            strongest = "verify"
        else:
            strongest = "encrypt"
        suggested, reason = _suggestion(strongest, judged, plain, failed, unknown, status, trusted, min_deliveries)
        out.append({
            "domain": domain, "deliveries": total, "tls": n_tls, "plaintext": plain, "tls_failed": failed,
            "unknown": unknown, "not_connected": not_connected,
            "trust": {"Verified": verified, "Trusted": trusted, "Untrusted": int(trust["Untrusted"][code]),
                      "Anonymous": int(trust["Anonymous"][code])},
            "dane": n_dane if featured[code] else None,
            "tls_levels": dict(sorted(tls_levels.get(code, {}).items(), key=lambda kv: (-kv[1], kv[0]))),
            "relays": top_relays.get(code, []),
            "first_seen": format_seconds(agg["first_seen"][code]), "last_seen": format_seconds(agg["last_seen"][code]),
            "status": status,
            "would_fail": would_fail, "name_unchecked": trusted,
            "strongest": strongest, "suggested": suggested, "reason": reason,
        })
    out.sort(key=lambda r: (-r["deliveries"], r["domain"] or ""))
    return out


def _suggestion(strongest: str, total: int, plain: int, failed: int, unknown: int, status: str, trusted: int,
                min_deliveries: int) -> tuple[str, str]:
    """The level the draft map gives a domain, and why (the map's comment)."""
    if plain:
        why = "downgraded to plaintext" if status == "downgrade" else "plaintext"
        return "may", f"{plain} of {total} deliveries {why}"
    if failed:
        return "may", f"{failed} of {total} deliveries failed the TLS handshake"
    if unknown:
        return "may", f"{unknown} of {total} deliveries without TLS evidence"
    if total < min_deliveries:
        return "may", f"only {total} deliveries (fewer than {min_deliveries})"
    if strongest == "dane-only":
        return strongest, f"{total} deliveries, all DANE-authenticated"
    if strongest == "verify":
        return strongest, f"{total} deliveries, all with a verified certificate"
    note = f"; {trusted} with a trusted chain, name not checked" if trusted else ""
    return "encrypt", f"{total} deliveries, all TLS{note}"


def _inbound(frame: pd.DataFrame, limit: int) -> dict:
    external = (frame["hop"] == "external").to_numpy() & (frame["kind"] == "inbound").to_numpy()
    out = {}
    for role in ("mx", "submission"):
        rows = np.flatnonzero(external & (frame["role"] == role).to_numpy())  # positions, not a copy
        refused = frame["encryption"].iloc[rows].isin(["plaintext", "tls-failed"]).to_numpy()
        messages = frame["messages"].iloc[rows].to_numpy(dtype=np.int64)
        block: dict = {"sessions": int(len(rows)), "messages": int(messages.sum()),
                       "refused_sessions": int(refused.sum()), "refused_messages": int(messages[refused].sum()),
                       "clients": []}
        if refused.any():
            hit = rows[refused]
            domains = registered_domains(frame["peer_name"].iloc[hit].reset_index(drop=True))
            keys = pd.Series(domains, dtype=object).fillna("")
            end = frame["end"].iloc[hit].to_numpy(dtype=float)
            table = pd.DataFrame({"domain": keys, "messages": messages[refused],
                                  "when": np.where(np.isnan(end), frame["start"].iloc[hit].to_numpy(dtype=float), end)})
            grouped = table.groupby("domain").agg(sessions=("messages", "size"), messages=("messages", "sum"),
                                                 last_seen=("when", "max")).reset_index()
            grouped = grouped.sort_values(["sessions", "domain"], ascending=[False, True])
            if limit:
                grouped = grouped.head(limit)
            block["clients"] = [{"domain": r.domain or None, "sessions": int(r.sessions), "messages": int(r.messages),
                                 "last_seen": format_seconds(r.last_seen)} for r in grouped.itertuples()]
        out[role] = block
    return out


def build_policy(frame: pd.DataFrame, *, min_deliveries: int = 10, limit: int = 0) -> dict:
    """The enforcement preview: ``outbound`` (one row per recipient domain, most deliveries
    first; ``limit`` 0: all) and ``inbound`` (per role, what ``encrypt`` would have refused)."""
    when = frame["start"].dropna()
    outbound = _outbound(frame, min_deliveries)
    return {
        "period": {"first": format_seconds(float(when.min())), "last": format_seconds(float(when.max()))} if len(when) else None,
        "min_deliveries": min_deliveries,
        "outbound": outbound[:limit] if limit else outbound,
        "inbound": _inbound(frame, limit),
    }


def policy_map(policy: dict) -> list[dict]:
    """The draft map's entries, by domain: ``active`` for the raised ones (a line ``postmap``
    reads), the others commented out. Domains that are not plain host names (log text is
    hostile) are never active."""
    entries = []
    for row in policy["outbound"]:
        domain = row["domain"]
        safe = isinstance(domain, str) and bool(_DOMAIN.match(domain))
        raised = row["suggested"] != "may" and safe
        reason = row["reason"] if safe else "not a plain domain name: " + row["reason"]
        entries.append({"domain": domain, "level": row["suggested"] if safe else "may", "active": raised,
                        "reason": reason})
    entries.sort(key=lambda e: (not e["active"], e["domain"] or ""))
    return entries


def policy_map_text(policy: dict) -> str:
    """The draft ``smtp_tls_policy_maps`` table: comments, then ``domain<TAB>level<TAB># reason``."""
    entries = policy_map(policy)
    period = policy["period"]
    span = f" from {period['first']} to {period['last']}" if period else ""
    deliveries = sum(r["deliveries"] for r in policy["outbound"])
    lines = [
        f"# smtp_tls_policy_maps draft by tlslog{span}: {deliveries:,} deliveries to {len(entries):,} domains.",
        f"# A domain is raised above may only when every delivery of the period, and at least "
        f"{policy['min_deliveries']}, supported it;",
        "# the others stay commented out, with the reason. Review, then: postmap hash:/etc/postfix/tls_policy",
    ]
    for entry in entries:
        domain = entry["domain"] if isinstance(entry["domain"], str) else "(no domain)"
        if not _DOMAIN.match(domain):
            domain = domain.encode("unicode_escape").decode("ascii").replace(" ", "\\x20").replace("#", "\\x23")
        line = f"{domain}\t{entry['level']}\t# {entry['reason']}"
        lines.append(line if entry["active"] else "#" + line)
    return "\n".join(lines) + "\n"
