"""Match one text against an ordered list of grammar rules: fast path and pyparsing path.

`RuleSet` is the PEG ordered choice of a program's rules. Rules that `tlslog.lowering` can
translate are joined into one compiled alternation (each alternative ends with an empty marker
group, so ``match.lastgroup`` names the rule that matched); a rule it cannot translate keeps
its pyparsing element, and the rules after it form the next compiled segment. Both paths
return ``(rule name, {field: text or None})``, and `parse_with_pyparsing` is the reference the
fast path is tested against.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import pyparsing as pp

from .grammars import Rule
from .lowering import NotLowerable, lower_rule

__all__ = ["Match", "RuleSet", "parse_with_pyparsing"]

#: A successful parse: the rule (event kind) and its fields, raw text or None when absent.
Match = tuple[str, dict[str, str | None]]


def parse_with_pyparsing(rules: Sequence[Rule], text: str) -> Match | None:
    """The reference semantics: try each rule's pyparsing element in order."""
    for rule in rules:
        try:
            result = rule.element.parse_string(text)
        except pp.ParseBaseException:
            continue
        return rule.name, {name: _text_or_none(result.get(name)) for name in rule.names()}
    return None


def _text_or_none(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"results name yielded {type(value).__name__}, not text")  # grammar bug


class _CompiledSegment:
    """Consecutive lowered rules as one alternation."""

    def __init__(self, rules: list[tuple[Rule, object]]) -> None:
        parts = []
        self._by_marker: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {}
        for index, (rule, lowered) in enumerate(rules):
            marker = f"_m{index}"
            parts.append(f"{lowered.pattern}(?P<{marker}>)")  # type: ignore[attr-defined]
            fields = tuple(rule.names())
            groups = tuple(lowered.prefix + f for f in fields)  # type: ignore[attr-defined]
            self._by_marker[marker] = (rule.name, fields, groups)
        self.regex = re.compile("|".join(parts))
        self._match = self.regex.match

    def __call__(self, text: str) -> Match | None:
        m = self._match(text)
        if m is None:
            return None
        name, fields, groups = self._by_marker[m.lastgroup]  # type: ignore[index]
        if not groups:
            return name, {}
        values = m.group(*groups)
        if len(groups) == 1:
            return name, {fields[0]: values}
        return name, dict(zip(fields, values))


class _PyparsingSegment:
    def __init__(self, rule: Rule) -> None:
        self.rule = rule

    def __call__(self, text: str) -> Match | None:
        return parse_with_pyparsing([self.rule], text)


class RuleSet:
    """An ordered choice of rules, parsed through the fastest faithful path available."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = list(rules)
        self.fallback_rules: list[str] = []
        segments: list[Callable[[str], Match | None]] = []
        pending: list[tuple[Rule, object]] = []
        for index, rule in enumerate(self.rules):
            try:
                lowered = lower_rule(rule.element, prefix=f"r{index}_")
            except NotLowerable:
                if pending:
                    segments.append(_CompiledSegment(pending))
                    pending = []
                segments.append(_PyparsingSegment(rule))
                self.fallback_rules.append(rule.name)
                continue
            lowered_names = lowered.fields
            if sorted(lowered_names) != sorted(rule.names()):
                raise AssertionError(f"{rule.name}: lowering saw {lowered_names}, grammar has {rule.names()}")
            pending.append((rule, lowered))
        if pending:
            segments.append(_CompiledSegment(pending))
        self._segments = segments
        self.parse: Callable[[str], Match | None] = (
            segments[0] if len(segments) == 1 else self._parse_segments
        )

    def _parse_segments(self, text: str) -> Match | None:
        for segment in self._segments:
            found = segment(text)
            if found is not None:
                return found
        return None

    def parse_reference(self, text: str) -> Match | None:
        """The same choice through pyparsing only (slow; for tests and debugging)."""
        return parse_with_pyparsing(self.rules, text)
