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
from typing import Any

import pyparsing as pp

from .grammars import Rule
from .lowering import NotLowerable, lower_rule

__all__ = ["Fields", "Match", "RuleSet", "parse_with_pyparsing"]

#: Every field of a rule by name: raw text, or None when absent.
Fields = dict[str, str | None]
#: A successful parse: the rule (event kind) and its fields: `Fields`, or, from a `RuleSet`
#: with ``select``, the tuple of the selected fields (None for a rule not selected).
Match = tuple[str, Any]


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


Select = dict[str, tuple[str, ...]]


def _dict_getter(fields: tuple[str, ...], groups: tuple[int, ...]) -> Callable[[re.Match], Any]:
    if not groups:
        return lambda m: {}
    if len(groups) == 1:
        return lambda m: {fields[0]: m.group(groups[0])}
    return lambda m: dict(zip(fields, m.group(*groups)))


def _tuple_getter(groups: tuple[int, ...]) -> Callable[[re.Match], Any]:
    if not groups:
        return lambda m: ()
    if len(groups) == 1:
        return lambda m: (m.group(groups[0]),)
    return lambda m: m.group(*groups)


class _CompiledSegment:
    """Consecutive lowered rules as one alternation. Groups are read by number: cheaper than
    by name, which `re` looks up in a dictionary on every call."""

    def __init__(self, rules: list[tuple[Rule, object]], select: Select | None) -> None:
        parts = []
        for index, (rule, lowered) in enumerate(rules):
            parts.append(f"{lowered.pattern}(?P<_m{index}>)")  # type: ignore[attr-defined]
        self.regex = re.compile("|".join(parts))
        self._match = self.regex.match
        number = self.regex.groupindex
        self._by_marker: dict[str, tuple[str, Callable[[re.Match], Any]]] = {}
        #: marker -> (rule name, selected group numbers or None), see `RuleSet.compiled`
        self.selected: dict[str, tuple[str, tuple[int, ...] | None]] = {}
        for index, (rule, lowered) in enumerate(rules):
            marker = f"_m{index}"
            prefix = lowered.prefix  # type: ignore[attr-defined]
            if select is None:
                fields = tuple(rule.names())
                getter = _dict_getter(fields, tuple(number[prefix + f] for f in fields))
            elif rule.name in select:
                getter = _tuple_getter(tuple(number[prefix + f] for f in select[rule.name]))
            else:
                getter = _none
            self._by_marker[marker] = (rule.name, getter)
            wanted = select.get(rule.name) if select is not None else None
            self.selected[marker] = (rule.name, tuple(number[prefix + f] for f in wanted) if wanted else None)

    def __call__(self, text: str, pos: int = 0) -> Match | None:
        m = self._match(text, pos)
        if m is None:
            return None
        name, getter = self._by_marker[m.lastgroup]  # type: ignore[index]
        return name, getter(m)


def _none(m: re.Match) -> None:
    return None


class _PyparsingSegment:
    def __init__(self, rule: Rule, select: Select | None) -> None:
        self.rule = rule
        self.select = select

    def __call__(self, text: str, pos: int = 0) -> Match | None:
        found = parse_with_pyparsing([self.rule], text[pos:])
        if found is None or self.select is None:
            return found
        name, fields = found
        wanted = self.select.get(name)
        return name, None if wanted is None else tuple(fields[f] for f in wanted)


class RuleSet:
    """An ordered choice of rules, parsed through the fastest faithful path available.

    Fields come as ``{name: text}``, or, with ``select`` (rule name -> field names), as a tuple
    of exactly those fields in that order (the pipeline's hot path; rules not in ``select``
    give None): the fold reads a few fields of a few rules, and tuples are cheaper than dicts.
    """

    def __init__(self, rules: Sequence[Rule], select: Select | None = None) -> None:
        self.rules = list(rules)
        self.fallback_rules: list[str] = []
        segments: list[Callable[[str, int], Match | None]] = []
        pending: list[tuple[Rule, object]] = []
        for index, rule in enumerate(self.rules):
            try:
                lowered = lower_rule(rule.element, prefix=f"r{index}_")
            except NotLowerable:
                if pending:
                    segments.append(_CompiledSegment(pending, select))
                    pending = []
                segments.append(_PyparsingSegment(rule, select))
                self.fallback_rules.append(rule.name)
                continue
            lowered_names = lowered.fields
            if sorted(lowered_names) != sorted(rule.names()):
                raise AssertionError(f"{rule.name}: lowering saw {lowered_names}, grammar has {rule.names()}")
            pending.append((rule, lowered))
        if pending:
            segments.append(_CompiledSegment(pending, select))
        self._segments = segments
        #: ``parse_at(text, pos)`` parses ``text[pos:]`` without copying it
        self.parse_at: Callable[..., Match | None] = segments[0] if len(segments) == 1 else self._parse_segments

    def parse(self, text: str) -> Match | None:
        """The first rule that matches the whole text, with its fields; None if none does."""
        return self.parse_at(text, 0)

    def compiled(self) -> tuple[Callable[..., re.Match | None], dict[str, tuple]] | None:
        """For the hot loop: the single compiled pattern's ``match`` and, per marker group, the
        rule name and the numbers of the selected groups; None if some rule has no compiled form."""
        if len(self._segments) != 1 or not isinstance(self._segments[0], _CompiledSegment):
            return None
        segment = self._segments[0]
        return segment.regex.match, segment.selected

    def _parse_segments(self, text: str, pos: int = 0) -> Match | None:
        for segment in self._segments:
            found = segment(text, pos)
            if found is not None:
                return found
        return None

    def parse_reference(self, text: str) -> Match | None:
        """The same choice through pyparsing only (slow; for tests and debugging)."""
        return parse_with_pyparsing(self.rules, text)
