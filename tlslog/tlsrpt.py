"""What peers' TLSRPT reports will say: RFC 8460 reports built from the logs, one per destination
(policy) domain and day. Pure functions of the session table and the TLSRPT line counts.

Counts per domain and day come from Postfix's own TLSRPT lines (3.10+, built with TLSRPT
support: one line per new TLS connection) when the logs have them for that domain and day:
exact session counts and Postfix's failure types, mapped from underscore form to the RFC's
result types (`RESULT_TYPES`). Otherwise they are derived from the deliveries: one session per
distinct connection (host, process, relay, first line), ``tls`` ones successful, failed ones
by what Postfix said (`result_type`): ``starttls-not-supported`` for a server that offered no
STARTTLS (plaintext), ``certificate-host-mismatch``, ``certificate-expired``,
``certificate-not-trusted``, else ``validation-failure``. Deliveries without evidence either way
(``unknown``: no connection made, TLS logging off) are no session of the report. The policy type is ``tlsa`` when the domain's deliveries that day show DANE
(Postfix 3.11's ``tls=dane``), else ``no-policy-found``: the logs do not name MTA-STS policies.

Days are the log's calendar days; the RFC wants UTC, so for a log not kept in UTC the date
range is the local day written as UTC.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from .policy import is_dane
from .schema import Projection
from .table import per_value

__all__ = ["COLUMNS", "RESULT_TYPES", "build_reports", "result_type"]

#: What `build_reports` reads of the session table.
COLUMNS = Projection(("kind", "start", "end", "host", "pid", "service", "encryption", "evidence", "failure_reason",
                      "recipient_domain", "relay", "peer_name", "peer_ip", "tls_feature", "day", "hop"))

#: Postfix's failure types (``tlsrpt_wrapper.c``) → RFC 8460 result types.
RESULT_TYPES = {
    "starttls_not_supported": "starttls-not-supported",
    "certificate_host_mismatch": "certificate-host-mismatch",
    "certificate_not_trusted": "certificate-not-trusted",
    "certificate_expired": "certificate-expired",
    "validation_failure": "validation-failure",
    "sts_policy_fetch_error": "sts-policy-fetch-error",
    "sts_policy_invalid": "sts-policy-invalid",
    "sts_webpki_invalid": "sts-webpki-invalid",
    "tlsa_invalid": "tlsa-invalid",
    "dnssec_invalid": "dnssec-invalid",
    "dane_required": "dane-required",
}


def result_type(encryption: str, evidence: str, reason: object) -> str | None:
    """The RFC 8460 result type of a failed delivery (None: not a failure)."""
    text = reason.lower() if isinstance(reason, str) else ""
    if encryption == "plaintext":
        return "starttls-not-supported"
    if encryption == "tls" and evidence != "certificate-not-verified":
        return None
    if encryption not in ("tls", "tls-failed"):
        return None
    if "mismatch" in text or "does not match" in text:
        return "certificate-host-mismatch"
    if "expired" in text:
        return "certificate-expired"
    if "self-signed" in text or "self signed" in text or "local issuer" in text or "not trusted" in text \
            or "untrusted" in text:
        return "certificate-not-trusted"
    return "validation-failure"


def _stamp(day: int, end: bool = False) -> str:
    moment = dt.datetime(1970, 1, 1) + dt.timedelta(days=day, seconds=86399 if end else 0)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _from_lines(lines: dict[tuple, int]) -> dict[tuple[int, str], dict]:
    """(day, domain) → summary and failure details, from Postfix's TLSRPT lines."""
    out: dict[tuple[int, str], dict] = {}
    for (day, status, domain, mx_name, mx_addr, failure_type, reason), count in lines.items():
        entry = out.setdefault((day, domain.lower()), {"success": 0, "failure": 0, "details": {}})
        if status == "success":
            entry["success"] += count
            continue
        entry["failure"] += count
        kind = RESULT_TYPES.get(failure_type or "", "validation-failure")
        code = reason if reason else (failure_type if failure_type not in RESULT_TYPES else None)
        key = (kind, mx_name, mx_addr, code)
        entry["details"][key] = entry["details"].get(key, 0) + count
    return out


def _from_deliveries(frame: pd.DataFrame) -> tuple[dict[tuple[int, str], dict], set[tuple[int, str]]]:
    """(day, domain) → summary and failure details, from the deliveries; and the (day, domain)
    pairs with DANE evidence."""
    rows = frame.loc[((frame["kind"] != "inbound") & (frame["hop"] == "external") & (frame["encryption"] != "unknown")
                      & frame["recipient_domain"].notna()).to_numpy()]
    out: dict[tuple[int, str], dict] = {}
    dane: set[tuple[int, str]] = set()
    if not len(rows):
        return out, dane
    triples = pd.MultiIndex.from_arrays([rows[c].astype(object) for c in ("encryption", "evidence", "failure_reason")])
    codes, uniques = triples.factorize()  # each result type worked out once per distinct triple
    kinds = np.array([result_type(*triple) for triple in uniques] + [None], dtype=object)[codes]
    reasons = rows["failure_reason"].astype(object).to_numpy()
    table = pd.DataFrame({
        "day": rows["day"].to_numpy(), "domain": rows["recipient_domain"].astype(object).to_numpy(),
        "connection": pd.factorize(pd.MultiIndex.from_arrays([rows[c].astype(object).fillna("") for c in
                                                              ("host", "service", "pid", "relay")]
                                                             + [rows["start"].fillna(-1.0)]))[0],
        "kind": kinds,
        "reason": np.where(rows["failure_reason"].notna().to_numpy(), reasons, None),
        "mx_name": rows["peer_name"].astype(object).to_numpy(), "mx_addr": rows["peer_ip"].astype(object).to_numpy(),
        "dane": per_value(rows["tls_feature"], is_dane),
    })
    # one session per connection (per day and domain); its result is that of its first failed
    # delivery, its server that of its first delivery
    session = ["day", "domain", "connection"]
    sessions = table.drop_duplicates(session)[[*session, "mx_name", "mx_addr"]]
    failed = table.loc[table["kind"].notna().to_numpy()].drop_duplicates(session)[[*session, "kind", "reason"]]
    failed = failed.merge(sessions, on=session, how="left")
    totals = sessions.groupby(["day", "domain"], sort=True).size()
    failures = failed.groupby(["day", "domain"]).size()
    details = failed.fillna({"mx_name": "", "mx_addr": "", "reason": ""}).groupby(
        ["day", "domain", "kind", "mx_name", "mx_addr", "reason"]).size()
    for (day, domain), count in totals.items():
        bad = int(failures.get((day, domain), 0))
        out[(int(day), str(domain))] = {"success": int(count) - bad, "failure": bad, "details": {}}
    for (day, domain, kind, name, addr, reason), count in details.items():
        out[(int(day), str(domain))]["details"][(kind, name or None, addr or None, reason or None)] = int(count)
    dane = {(int(day), str(domain)) for (day, domain), any_dane in
            table.groupby(["day", "domain"])["dane"].any().items() if any_dane}
    return out, dane


def build_reports(frame: pd.DataFrame, lines: dict[tuple, int], *, organization: str, contact: str,
                  domains: tuple[str, ...] = ()) -> list[dict]:
    """One RFC 8460 report per (policy domain, day), by day then domain, as ``{"report": ...,
    "source": "tlsrpt-lines" | "deliveries"}``; ``domains`` (lower case) keeps only those. A
    domain and day with Postfix TLSRPT lines is counted from them."""
    derived, dane = _from_deliveries(frame)
    exact = _from_lines(lines)
    keys = sorted(set(derived) | set(exact))
    reports = []
    for day, domain in keys:
        if day < 0 or (domains and domain not in domains):
            continue
        entry = exact.get((day, domain)) or derived[(day, domain)]
        details = [{"result-type": kind, **({"receiving-mx-hostname": name} if isinstance(name, str) and name else {}),
                    **({"receiving-ip": addr} if isinstance(addr, str) and addr else {}),
                    "failed-session-count": count, **({"failure-reason-code": code} if code else {})}
                   for (kind, name, addr, code), count in sorted(entry["details"].items(), key=lambda kv: (
                       -kv[1], kv[0][0], str(kv[0][1]), str(kv[0][2]), str(kv[0][3])))]
        policy = {"policy-type": "tlsa" if (day, domain) in dane else "no-policy-found", "policy-domain": domain}
        reports.append({"source": "tlsrpt-lines" if (day, domain) in exact else "deliveries", "report": {
            "organization-name": organization,
            "date-range": {"start-datetime": _stamp(day), "end-datetime": _stamp(day, end=True)},
            "contact-info": contact,
            "report-id": f"{_stamp(day)}_{domain}@tlslog",
            "policies": [{"policy": policy,
                          "summary": {"total-successful-session-count": entry["success"],
                                      "total-failure-session-count": entry["failure"]},
                          **({"failure-details": details} if details else {})}],
        }})
    return reports
