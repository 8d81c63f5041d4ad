"""The report on a seeded synthetic log equals the generator's ground truth, exactly.

``sample_logs/synthetic/`` holds a log made by the project's reference generator together with
the counts a correct report must show (see sample_logs/README.md).
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tlslog.analysis import Options, analyze
from tlslog.report import build_report

from .conftest import SAMPLES

SYNTHETIC = SAMPLES / "synthetic"
TRUTH = json.loads((SYNTHETIC / "truth.json").read_text(encoding="utf-8"))
KEYS = ("total", "tls", "plaintext", "tls_failed", "unknown", "by_protocol", "by_ip_version")


@pytest.mark.parametrize(("jobs", "chunk_size"), [(1, 8 << 20), (2, 1 << 18)], ids=["one-pass", "chunked-parallel"])
def test_report_equals_ground_truth(jobs, chunk_size):
    analysis = analyze([str(SYNTHETIC / "maillog.gz")], Options(jobs=jobs, chunk_size=chunk_size, year=2024))
    report = build_report(analysis.sessions, analysis.stats)
    for direction in ("inbound", "outbound"):
        for key in KEYS:
            assert report[direction][key] == TRUTH[direction][key], (direction, key)
    assert report["lines"]["read"] == TRUTH["lines"]["read"]
    assert report["lines"]["unparsed"] == 0
    lines = report["lines"]
    assert lines["read"] == lines["postfix"] + lines["other"] + lines["unrecognized"]


def test_the_report_columns_give_the_same_report_as_the_whole_table():
    """`tlslog report` asks the engine for its columns only; the report must not notice."""
    from tlslog import schema
    from tlslog.report import COLUMNS

    path = [str(SYNTHETIC / "maillog.gz")]
    whole = analyze(path, Options(jobs=1, year=2024))
    projected = analyze(path, Options(jobs=1, year=2024, columns=COLUMNS))
    assert build_report(whole.sessions, whole.stats) == build_report(projected.sessions, projected.stats)
    assert list(whole.sessions.columns) == [c.name for c in schema.SESSION]  # 41 columns
    # the report's 25 and what settlement needs: 29, in table order
    kept = set(COLUMNS.columns) | set(schema.SETTLE_COLUMNS) | {"line"}
    assert list(projected.sessions.columns) == [c.name for c in schema.SESSION if c.name in kept]
    assert len(kept) == 29
    # peers only where a list can show them: plaintext, pending (settled later), failed, weak TLS
    from tlslog.strength import weaknesses

    rows = whole.sessions
    weak = [bool(v == "tls" and weaknesses(p, c, None if pd.isna(b) else b)) for v, p, c, b in
            zip(rows["fold_encryption"], rows["protocol"].astype(object), rows["cipher"].astype(object),
                rows["cipher_bits"])]
    listed = rows["fold_encryption"].isin(["plaintext", "pending", "tls-failed"]) | pd.Series(weak, index=rows.index)
    assert listed.sum() == 622  # of 2468 rows
    assert projected.sessions["peer_ip"].notna().sum() == (rows["peer_ip"].notna() & listed).sum()
    assert (projected.sessions["peer_ip"].notna() & ~listed).sum() == 0
