"""The compiled fast path must give exactly what pyparsing gives: constructs, then differential.

The differential tests run every program's ordered rule set through both paths on every corpus
message, on mutations of them (cuts, insertions, replacements) and on random text.
"""

from __future__ import annotations

import json

import pyparsing as pp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tlslog.grammars import ANY_PROGRAM, PROGRAMS, Rule, all_rules, prefix
from tlslog.lowering import NotLowerable, lower_rule
from tlslog.parse import RuleSet, parse_with_pyparsing

from .conftest import DATA, SAMPLES

RULE_SETS = {**{name: rules for name, rules in PROGRAMS.items()}, "any": ANY_PROGRAM, "prefix": prefix.RULES}


def _corpus() -> list[str]:
    texts = [text for rule in all_rules() for text, _ in rule.samples]
    for entry in json.loads((DATA / "expected_lines.json").read_text(encoding="utf-8")):
        texts.append(entry["line"])
        line = entry["line"]
        if "]: " in line:
            texts.append(line.split("]: ", 1)[1])
    for path in sorted((SAMPLES / "realpostfix").glob("*/maillog")):
        for line in path.read_text(encoding="utf-8").splitlines()[::7]:
            texts.append(line)
            texts.append(line.split("]: ", 1)[-1])
    return sorted(set(texts))


CORPUS = _corpus()


def both(rules: list[Rule], text: str) -> None:
    assert RuleSet(rules).parse(text) == parse_with_pyparsing(rules, text), text


# -- single constructs ------------------------------------------------------------------------


def _rule(expr: pp.ParserElement) -> list[Rule]:
    return [Rule.define("t", expr)]


CONSTRUCTS = [
    # (element, inputs): each input is checked on both paths
    (pp.Word(pp.alphas)("w") + pp.Literal("a"), ["aaa", "bba", "b a"]),  # Word never gives back
    ((pp.Literal("ab") | pp.Literal("a"))("x") + pp.Literal("b"), ["ab", "abb", "b"]),  # choice commits
    (pp.Opt(pp.Literal("a")("x")) + pp.Literal("a"), ["a", "aa"]),  # Opt is greedy and final
    (pp.ZeroOrMore(pp.Literal(" ") + pp.Word(pp.nums)("n")), [" 1 2 3", "", " 1 x"]),  # last value wins
    (pp.Regex(r"a+")("r") + pp.Literal("a"), ["aaa", "aa"]),  # Regex commits to re.match
    (pp.Combine(pp.Word(pp.nums) + pp.Literal(".") + pp.Word(pp.nums))("v"), ["1.2", "1.", "1.2.3"]),
    (pp.CharsNotIn("]")("c") + pp.Literal("]"), ["ab]", "]", "a]b"]),
    (pp.Regex(r"(?P<a>x)?(?P<b>y)?"), ["x", "y", "xy", ""]),
    (pp.FollowedBy(pp.Literal("a")) + pp.Word(pp.alphas)("w"), ["abc", "bc"]),
    (~pp.Literal("no") + pp.Word(pp.alphas)("w"), ["yes", "nope"]),
    (pp.OneOrMore(pp.Word(pp.nums)("d") + pp.Opt(pp.Literal(","))), ["1,2,3", "1,2,", ""]),
    # a lookbehind sees the text before the element, on both paths (smtp's damaged recipient)
    (pp.Literal("to=") + pp.Opt(pp.Literal("<")) + pp.Regex(r"(?<=<)[^>]*|(?<!<)[^,]*")("r")
     + pp.Opt(pp.Literal(">")), ["to=<a@b>", "to=a@b", "to=<a@b", "to=a@b>", "to=<>", "to="]),
    # a lookahead to the end of the text inside a Regex, then more elements (damaged reason)
    (pp.Regex(r"\((?P<reason>.*(?=\),*\Z)|.*)\)?,*") + pp.Regex(r",*"),
     ["(a)", "(a),,", "(a", "(a) b", "(a (b)),", "(", ""]),
]


@pytest.mark.parametrize(("expr", "inputs"), CONSTRUCTS, ids=[str(i) for i in range(len(CONSTRUCTS))])
def test_constructs_match_pyparsing(expr, inputs):
    rules = _rule(expr)
    assert RuleSet(rules).fallback_rules == []
    for text in inputs:
        both(rules, text)


@pytest.mark.parametrize(
    "expr",
    [
        pp.Word(pp.alphas).set_parse_action(lambda t: t[0].upper()),
        pp.Literal("a") ^ pp.Literal("ab"),  # Or: longest match, no regex equivalent
        pp.Literal("a") & pp.Literal("b"),  # Each
        pp.Keyword("if"),
        pp.Word(pp.nums, max=3),
        (pp.Literal("a") + pp.Literal("b"))("pair"),  # a name over several tokens
    ],
    ids=["parse-action", "or", "each", "keyword", "word-max", "multi-token-name"],
)
def test_unsupported_constructs_are_refused(expr):
    with pytest.raises(NotLowerable):
        lower_rule(Rule.define("t", expr).element)


def test_implicit_whitespace_is_refused():
    element = pp.Literal("a") + pp.Literal("b")  # pyparsing would skip blanks between them
    element.parse_with_tabs()
    with pytest.raises(NotLowerable):
        lower_rule(element)


def test_unlowerable_rule_falls_back_in_order():
    """A rule without a fast path keeps its place in the ordered choice."""
    first = Rule.define("first", pp.Literal("a") + pp.Word(pp.alphas)("w"))
    odd = Rule.define("odd", pp.Literal("ab") ^ pp.Literal("abc"))
    last = Rule.define("last", pp.Word(pp.alphas)("w"))
    rules = RuleSet([odd, first, last])
    assert rules.fallback_rules == ["odd"]
    assert rules.parse("abc") == ("odd", {})
    assert rules.parse("axe") == ("first", {"w": "xe"})
    assert rules.parse("xyz") == ("last", {"w": "xyz"})
    for text in ("abc", "ab", "axe", "xyz", "a1"):
        assert rules.parse(text) == rules.parse_reference(text)


# -- differential ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RULE_SETS))
def test_corpus_both_paths_agree(name):
    rules = RULE_SETS[name]
    fast = RuleSet(rules)
    for text in CORPUS:
        assert fast.parse(text) == parse_with_pyparsing(rules, text), text


ALPHABET = st.sampled_from(list("[]():;,=<>/.-_ \t!?*+|\\\"'") + list("aZ09xX:") + ["\x00", "é", "\ufffd"])


@st.composite
def mutated(draw) -> str:
    text = draw(st.sampled_from(CORPUS))
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["cut", "insert", "replace", "delete"]))
        if action == "cut":
            text = text[:where]
        elif action == "insert":
            text = text[:where] + draw(st.text(ALPHABET, max_size=4)) + text[where:]
        elif action == "replace":
            text = text[:where] + draw(st.text(ALPHABET, min_size=1, max_size=3)) + text[where + 1 :]
        else:
            text = text[:where] + text[where + draw(st.integers(1, 8)) :]
    return text


@settings(max_examples=400, deadline=None)
@given(mutated(), st.sampled_from(sorted(RULE_SETS)))
def test_mutated_lines_both_paths_agree(text, name):
    both(RULE_SETS[name], text)


@settings(max_examples=200, deadline=None)
@given(st.text(ALPHABET, max_size=60), st.sampled_from(sorted(RULE_SETS)))
def test_random_text_both_paths_agree(text, name):
    both(RULE_SETS[name], text)
