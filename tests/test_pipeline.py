"""The hot loop (`fold_chunk`) reads every line exactly as the plain reference path does.

`describe_line` splits a line with the prefix rules and parses it with the full rule sets; the
hot loop takes shortcuts (a line that starts like the previous one is matched from its tag on,
compiled rules are dispatched inline, postscreen is counted without parsing). Both must agree
on the accounting of every line, in any order.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from tlslog.pipeline import POSTFIX_PROGRAMS, LineStats, _Task, describe_line, fold_chunk

from .conftest import DATA, SAMPLES, run_tlslog

PIPELINE_PROGRAMS = ("smtpd", "smtp", "tlsproxy")


def reference_stats(lines: list[str]) -> LineStats:
    stats = LineStats(read=len(lines))
    previous = None
    for line in lines:
        stats.duplicate += line == previous
        previous = line
        record, found = describe_line(line)
        if record is None:
            stats.unrecognized += 1
            continue
        program = record.tag.rsplit("/", 1)[-1]
        if program in PIPELINE_PROGRAMS or record.tag == "postfix":
            stats.postfix += 1
            if found is None:
                stats.unparsed += 1
            else:
                stats.parsed += 1
        elif program in POSTFIX_PROGRAMS or record.tag.startswith("postfix"):
            stats.postfix += 1
        else:
            stats.other += 1
    return stats


def hot_stats(lines: list[str]) -> LineStats:
    data = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
    return fold_chunk(_Task(0, 2026, None, data=data, rows=False)).stats


def _corpus() -> list[str]:
    lines = [e["line"] for e in json.loads((DATA / "expected_lines.json").read_text(encoding="utf-8"))]
    for path in sorted((SAMPLES / "realpostfix").glob("*/maillog")):
        lines += path.read_text(encoding="utf-8").splitlines()[:300]
    return [line for line in lines if "\n" not in line]


CORPUS = _corpus()


def test_corpus_in_order():
    assert hot_stats(CORPUS) == reference_stats(CORPUS)


def test_each_line_alone():
    for line in CORPUS[:400]:
        assert hot_stats([line]) == reference_stats([line]), line


@st.composite
def shuffled_with_variants(draw) -> list[str]:
    picks = draw(st.lists(st.sampled_from(CORPUS), min_size=1, max_size=40))
    out = []
    for line in picks:
        variant = draw(st.sampled_from(["same", "cut", "garbage-tag", "other-host"]))
        if variant == "cut":
            line = line[: draw(st.integers(0, len(line)))]
        elif variant == "garbage-tag" and " postfix/" in line:
            line = line.replace(" postfix/", " post fix/", 1)
        elif variant == "other-host" and line[:1].isupper():
            line = line.replace(" mx ", " mx2 ", 1)
        out.append(line)
    return out


@settings(max_examples=150, deadline=None)
@given(shuffled_with_variants())
def test_any_order_and_damage(lines):
    assert hot_stats(lines) == reference_stats(lines)


def test_same_json_whatever_the_number_of_workers():
    log = str(SAMPLES / "synthetic" / "maillog.gz")
    small = {"TLSLOG_CHUNK_SIZE": "65536"}  # ~40 chunks: sessions cut at chunk edges everywhere
    one = run_tlslog("report", log, "--format", "json", "--jobs", "1").stdout
    for jobs in ("1", "2", "3"):
        assert run_tlslog("report", log, "--format", "json", "--jobs", jobs, env=small).stdout == one
    one = run_tlslog("sessions", log, "--format", "jsonl", "--jobs", "1").stdout
    assert run_tlslog("sessions", log, "--format", "jsonl", "--jobs", "2", env=small).stdout == one
