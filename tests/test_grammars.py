"""Every rule's own samples, every example of the formats reference, every anchor corpus line.

``tests/data/expected_lines.json`` is the reviewed table of (line, tag, rule, fields) for the
125 example lines of the Postfix log formats reference and the 58 anchor corpus lines.
"""

from __future__ import annotations

import json

import pytest

from tlslog.grammars import PROGRAMS, all_rules
from tlslog.parse import RuleSet, parse_with_pyparsing
from tlslog.pipeline import describe_line

from .conftest import DATA

RULE_SAMPLES = [
    pytest.param(rule, text, expected, id=f"{rule.name}:{text[:40]}")
    for rule in all_rules()
    for text, expected in rule.samples
]
EXPECTED = json.loads((DATA / "expected_lines.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(("rule", "text", "expected"), RULE_SAMPLES)
def test_rule_samples(rule, text, expected):
    found = RuleSet([rule]).parse(text)
    assert found is not None, f"{rule.name} does not match its own sample"
    name, fields = found
    assert name == rule.name
    for key, value in expected.items():
        assert fields[key] == value, key


def test_every_rule_has_samples():
    assert [r.name for r in all_rules() if not r.samples] == []


def test_every_rule_names_its_elements():
    for rule in all_rules():
        assert rule.element.customName == rule.name
        assert rule.names(), f"{rule.name} yields no fields"


@pytest.mark.parametrize("entry", EXPECTED, ids=[e["source"] for e in EXPECTED])
def test_reference_and_anchor_lines(entry):
    record, found = describe_line(entry["line"])
    assert (record.tag if record else None) == entry["tag"]
    if entry["rule"] is None:
        assert found is None
        return
    assert found is not None
    name, fields = found
    assert name == entry["rule"]
    assert {k: v for k, v in fields.items() if v is not None} == entry["fields"]


def test_every_reference_example_is_covered():
    numbers = {int(e["source"].split(":")[1]) for e in EXPECTED if e["source"].startswith("reference:")}
    assert numbers == set(range(1, 126))


def test_all_tls_summary_lines_of_the_corpora_parse():
    lines = [e for e in EXPECTED if "TLS connection established" in e["line"] or "TLS connection reused" in e["line"]]
    assert len(lines) > 40
    assert all(e["rule"] == "tls_summary" for e in lines)


def test_anchor_corpus_lines_all_parse():
    anchors = [e for e in EXPECTED if e["source"].startswith("anchor:")]
    assert len(anchors) == 58
    assert [e["line"] for e in anchors if e["rule"] is None] == []


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_program_grammars_lower_completely(program):
    """Every shipped rule has a compiled fast path; pyparsing stays the reference."""
    assert RuleSet(PROGRAMS[program]).fallback_rules == []


CUT_LINES = [
    # cut in the middle of an IPv6 address, of the peer, of the TLS tail, of the counters
    "connect from mail.example.com[2001:db8:4864:20::",
    "Anonymous TLS connection established from unknown[2001:db8::",
    "disconnect from unknown[203.0.113.9] ehlo=1 starttls=0/",
    "4F1A23E0C7: to=<alice@example.net>, relay=mx.example.net[203.0.113.25]:25, delay=1.2, dsn=2.0.0, status=sent (250",
]


@pytest.mark.parametrize("text", CUT_LINES)
def test_cut_lines_do_not_match_as_if_whole(text):
    rules = PROGRAMS["smtpd"] if not text[0].isdigit() else PROGRAMS["smtp"]
    found = RuleSet(rules).parse(text)
    assert found == parse_with_pyparsing(rules, text)
    assert found is None or found[0] in ("queue_note", "delivery_note", "disconnect")
