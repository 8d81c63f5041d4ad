"""`tlslog policy`: the enforcement preview and the draft policy map.

On the bundled month (downgrades included) the counts must equal the generator's truth, and on
every input the preview's counts must equal the session table's (counted here independently
from the `tlslog sessions` export) and the map must never raise a domain that had a
plaintext, downgraded, failed or unknown delivery.
"""

from __future__ import annotations

import collections
import json

import pandas as pd
import pytest

from tlslog.policy import build_policy, is_dane, policy_map, policy_map_text

from .conftest import REAL_SAMPLES, SAMPLES, maillogs, tlslog

MONTH = SAMPLES / "synthetic" / "month.log.gz"
TRUTH = json.loads((SAMPLES / "synthetic" / "month-truth.json").read_text())
YEAR = str(TRUTH["year"])


def _policy(*args: str) -> dict:
    run = tlslog("policy", *args, "--format", "json", "--limit", "0")
    assert run.code == 0, run.stderr
    return json.loads(run.stdout)


def _map(*args: str) -> list[dict]:
    run = tlslog("policy", "--map", *args, "--format", "json")
    assert run.code == 0, run.stderr
    return json.loads(run.stdout)["entries"]


def test_the_month_matches_the_generator_truth():
    policy = _policy(str(MONTH), "--year", YEAR)
    out = policy["outbound"]
    truth_out = TRUTH["outbound"]
    assert sum(r["deliveries"] for r in out) == truth_out["total"]
    assert sum(r["tls"] for r in out) == truth_out["tls"]
    assert sum(r["plaintext"] for r in out) == truth_out["plaintext"]
    assert sum(r["not_connected"] for r in out) == truth_out["unknown"]  # relay=none
    plain = {r["domain"]: r["plaintext"] for r in out if r["plaintext"]}
    assert plain == TRUTH["plaintext_peers"]["outbound_domains"]
    assert sorted(r["domain"] for r in out if r["status"] == "downgrade") == TRUTH["downgrades"]["outbound_domains"]
    assert {r["domain"]: r["would_fail"]["encrypt"] for r in out if r["would_fail"]["encrypt"]} == plain
    mx, submission = policy["inbound"]["mx"], policy["inbound"]["submission"]
    assert mx["refused_messages"] == TRUTH["messages"]["mx"]["plaintext"]
    assert mx["messages"] == TRUTH["messages"]["mx"]["total"]
    assert submission["refused_sessions"] == 0 and submission["messages"] == TRUTH["messages"]["submission"]["total"]
    assert mx["refused_sessions"] == TRUTH["inbound"]["plaintext"] + TRUTH["inbound"]["tls_failed"]


def test_the_map_never_raises_a_domain_that_went_plaintext_or_downgraded():
    entries = _map(str(MONTH), "--year", YEAR)
    active = {e["domain"] for e in entries if e["active"]}
    assert not active & set(TRUTH["plaintext_peers"]["outbound_domains"])
    assert not active & set(TRUTH["downgrades"]["outbound_domains"])
    by_domain = {e["domain"]: e for e in entries}
    assert by_domain["posteo.de"] == {"domain": "posteo.de", "level": "may", "active": False,
                                      "reason": "76 of 137 deliveries downgraded to plaintext"}
    assert len(active) == 17 and all(by_domain[d]["level"] == "encrypt" for d in active)


def _table(paths: list[str], *args: str) -> pd.DataFrame:
    run = tlslog("sessions", *paths, "--format", "jsonl", *args)
    assert run.code == 0, run.stderr
    return pd.DataFrame([json.loads(line) for line in run.stdout.splitlines()])


def _independent(frame: pd.DataFrame, min_deliveries: int) -> dict[str, dict]:
    """What the preview must say per domain, counted from the export with plain Python."""
    out: dict[str, dict] = collections.defaultdict(lambda: collections.Counter())
    for row in frame.itertuples():
        if row.kind == "inbound" or row.hop != "external":
            continue
        counts = out[row.recipient_domain]
        counts["deliveries"] += 1
        counts[row.encryption] += 1
        counts["no_connection"] += row.evidence == "no-connection"
        counts["untrusted"] += row.encryption == "tls" and row.trust not in ("Verified", "Trusted")
    return {d: {"deliveries": c["deliveries"], "encrypt": c["plaintext"] + c["tls-failed"],
                "verify": c["plaintext"] + c["tls-failed"] + c["untrusted"],
                "raisable": not (c["plaintext"] or c["tls-failed"] or c["unknown"] - c["no_connection"])
                and c["deliveries"] - c["no_connection"] >= min_deliveries}
            for d, c in out.items()}


@pytest.mark.parametrize("sample", ["month", *[p.name for p in REAL_SAMPLES]])
def test_preview_counts_equal_the_session_table(sample):
    if sample == "month":
        paths, extra = [str(MONTH)], ["--year", YEAR]
    else:
        paths, extra = [str(p) for p in maillogs(SAMPLES / "realpostfix" / sample)], ["--internal", "none"]
    expected = _independent(_table(paths, *extra), min_deliveries=2)
    policy = _policy(*paths, *extra, "--min-deliveries", "2")
    got = {r["domain"]: {"deliveries": r["deliveries"], "encrypt": r["would_fail"]["encrypt"],
                         "verify": r["would_fail"]["verify"], "raisable": r["suggested"] != "may"}
           for r in policy["outbound"]}
    assert got == expected
    active = {e["domain"] for e in _map(*paths, *extra, "--min-deliveries", "2") if e["active"]}
    assert active == {d for d, v in expected.items() if v["raisable"] and d}


def _frame(rows: list[dict]) -> pd.DataFrame:
    base = {"kind": "outbound", "start": 1.7e9, "end": 1.7e9, "offset": None, "encryption": "tls",
            "evidence": "tls-line", "trust": "Verified", "recipient_domain": "example.net",
            "peer_name": "mx.example.net", "tls_feature": None, "messages": 1, "role": "outbound", "hop": "external"}
    frame = pd.DataFrame([{**base, **row} for row in rows])
    for name in ("kind", "encryption", "evidence", "trust", "recipient_domain", "peer_name", "tls_feature", "role",
                 "hop"):
        frame[name] = frame[name].astype("category")
    return frame


def test_levels_from_the_evidence():
    ten = [{}] * 10
    assert build_policy(_frame(ten))["outbound"][0]["strongest"] == "verify"
    assert build_policy(_frame([*ten, {"trust": "Trusted"}]))["outbound"][0]["suggested"] == "encrypt"
    dane = build_policy(_frame([{"tls_feature": "dane"}] * 10))["outbound"][0]
    assert (dane["strongest"], dane["dane"], dane["would_fail"]["dane-only"]) == ("dane-only", 10, 0)
    mixed = build_policy(_frame([*[{"tls_feature": "dane"}] * 9, {"tls_feature": "may/requiretls"}]))["outbound"][0]
    assert (mixed["strongest"], mixed["would_fail"]["dane-only"]) == ("verify", 1)
    assert mixed["tls_levels"] == {"dane": 9, "may": 1}
    assert build_policy(_frame(ten))["outbound"][0]["tls_levels"] == {}
    few = build_policy(_frame([{}] * 3))["outbound"][0]
    assert (few["suggested"], few["reason"]) == ("may", "only 3 deliveries (fewer than 10)")
    failed = build_policy(_frame([*ten, {"encryption": "tls-failed", "trust": None}]))["outbound"][0]
    assert (failed["suggested"], failed["reason"]) == ("may", "1 of 11 deliveries failed the TLS handshake")
    blind = build_policy(_frame([*ten, {"encryption": "unknown", "evidence": "cut-off", "trust": None}]))["outbound"][0]
    assert (blind["suggested"], blind["reason"]) == ("may", "1 of 11 deliveries without TLS evidence")
    no_answer = build_policy(_frame([*ten, {"encryption": "unknown", "evidence": "no-connection",
                                            "trust": None}]))["outbound"][0]
    assert (no_answer["suggested"], no_answer["not_connected"], no_answer["would_fail"]["encrypt"]) == ("verify", 1, 0)


@pytest.mark.parametrize("feature,dane", [("dane", True), ("dane:halfdane", False), ("dane:encrypt", False),
                                          ("dane?", False), ("!dane", False), ("dane/requiretls", True),
                                          ("may:dane", True), (None, False), ("may", False)])
def test_dane_evidence(feature, dane):
    assert is_dane(feature) is dane


def test_hostile_domains_never_become_map_lines():
    frame = _frame([{"recipient_domain": "evil.example\tverify #"}] * 12 + [{"recipient_domain": "ok.example"}] * 12)
    text = policy_map_text(build_policy(frame))
    active = [line for line in text.splitlines() if not line.startswith("#")]
    assert active == ["ok.example\tverify\t# 12 deliveries, all with a verified certificate"]
    assert "#evil.example\\tverify\\x20\\x23\tmay\t# not a plain domain name: 12 deliveries" in text
    assert [e["active"] for e in policy_map(build_policy(frame))] == [True, False]


def test_map_text_of_the_month_is_ready_for_postmap():
    run = tlslog("policy", "--map", str(MONTH), "--year", YEAR)
    assert run.code == 0
    lines = run.stdout.splitlines()
    assert lines[0] == ("# smtp_tls_policy_maps draft by tlslog from 2024-11-28T22:21:59 to 2024-12-26T16:01:14: "
                        "1,003 deliveries to 20 domains.")
    active = [line.split("\t") for line in lines if not line.startswith("#")]
    assert len(active) == 17 and {fields[1] for fields in active} == {"encrypt"}
    assert "#posteo.de\tmay\t# 76 of 137 deliveries downgraded to plaintext" in lines


def test_the_history_store_gives_the_same_preview_and_tlsrpt(tmp_path):
    store = str(tmp_path / "history.db")
    assert tlslog("ingest", "--db", store, str(MONTH), "--year", YEAR).code == 0
    assert _policy("--db", store) == _policy(str(MONTH), "--year", YEAR)
    from_store = tlslog("tlsrpt", "--db", store)
    assert from_store.code == 0 and from_store.stdout == tlslog("tlsrpt", str(MONTH), "--year", YEAR).stdout
