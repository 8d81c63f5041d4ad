"""Lower pyparsing rules to compiled regular expressions with the same results.

The pyparsing grammar in ``tlslog.grammars`` stays the single definition of every rule; this
module translates it, once at import time, into Python ``re`` patterns that parse a line about
a hundred times faster. PEG semantics carry over with Python 3.11's atomic groups and
possessive quantifiers:

==================  ===========================  =====================================
pyparsing           regex                        why
==================  ===========================  =====================================
``a + b``           ``ab``                       sequence
``a | b``           ``(?>a|b)``                  ordered choice, committed once matched
``Opt(a)``          ``(?:a)?+``                  greedy, never given back
``ZeroOrMore(a)``   ``(?:a)*+``                  idem
``Word``            ``[init][body]*+``           possessive: a Word never backtracks
``Regex(p)``        ``(?>p)``                    pyparsing commits to ``re.match``'s answer
``x("name")``       ``(?P<name>x)``              results name = matched text
==================  ===========================  =====================================

Anything else (parse actions, ``Or``, ``Each``, implicit whitespace skipping, ...) raises
`NotLowerable`; `tlslog.parse` then keeps pyparsing for that rule. ``tests/test_lowering.py``
proves, on every sample and corpus line and on generated lines, that both give the same fields.
"""

from __future__ import annotations

import re

import pyparsing as pp

__all__ = ["LoweredRule", "NotLowerable", "lower_rule"]

_GROUP_NAME = re.compile(r"\(\?P<([A-Za-z_][A-Za-z0-9_]*)>")
_GROUP_REF = re.compile(r"\(\?P=([A-Za-z_][A-Za-z0-9_]*)\)")


class NotLowerable(Exception):
    """The element uses a construct with no faithful regular-expression translation."""


class LoweredRule:
    """A rule as a regex fragment whose named groups are ``<prefix><field>``."""

    __slots__ = ("fields", "pattern", "prefix")

    def __init__(self, pattern: str, fields: list[str], prefix: str) -> None:
        self.pattern = pattern
        self.fields = fields
        self.prefix = prefix


def lower_rule(element: pp.ParserElement, prefix: str = "") -> LoweredRule:
    """Translate a whole-message rule (see ``grammars.common.Rule``) into a regex fragment.

    Group names get ``prefix`` so that fragments of several rules can share one pattern.
    Raises `NotLowerable` if any part of the rule cannot be translated exactly.
    """
    if not element.keepTabs:
        raise NotLowerable("rule does not keep tabs (pyparsing would expand them)")
    lowerer = _Lowerer(prefix)
    pattern = lowerer.lower(element)
    re.compile(pattern)  # a translation bug must surface here, not on the first line
    return LoweredRule(pattern, lowerer.fields, prefix)


class _Lowerer:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.fields: list[str] = []
        self._active: set[int] = set()

    def lower(self, expr: pp.ParserElement) -> str:
        if id(expr) in self._active:
            raise NotLowerable(f"recursive element {expr!r}")
        if expr.parseAction:
            raise NotLowerable(f"parse action on {expr!r}")
        if expr.skipWhitespace and expr.whiteChars:
            raise NotLowerable(f"implicit whitespace skipping on {expr!r}")
        if expr.ignoreExprs:
            raise NotLowerable(f"ignore expressions on {expr!r}")
        self._active.add(id(expr))
        try:
            body = self._body(expr)
        finally:
            self._active.discard(id(expr))
        name = expr.resultsName
        if name:
            if not _single_token(expr):
                raise NotLowerable(f"results name {name!r} on {type(expr).__name__}, which may yield several tokens")
            body = f"(?P<{self._field(name)}>{body})"
        return body

    def _field(self, name: str) -> str:
        if name in self.fields:
            raise NotLowerable(f"results name {name!r} used twice in one rule")
        self.fields.append(name)
        return self.prefix + name

    def _body(self, expr: pp.ParserElement) -> str:  # noqa: C901 - one branch per element type
        if isinstance(expr, pp.StringEnd):
            return r"\Z"
        if isinstance(expr, pp.Empty):
            return ""
        if isinstance(expr, (pp.CaselessLiteral, pp.Keyword)):
            raise NotLowerable(f"{type(expr).__name__} is not supported")
        if isinstance(expr, pp.Literal):
            return re.escape(expr.match)
        if isinstance(expr, pp.Word):
            return self._word(expr)
        if isinstance(expr, pp.CharsNotIn):
            return self._chars_not_in(expr)
        if isinstance(expr, pp.Regex):
            return self._regex(expr)
        if isinstance(expr, pp.And):
            return "".join(self.lower(e) for e in expr.exprs if not isinstance(e, pp.And._ErrorStop))
        if isinstance(expr, pp.MatchFirst):
            return "(?>" + "|".join(self.lower(e) for e in expr.exprs) + ")"
        if isinstance(expr, pp.Opt):
            if expr.defaultValue is not pp.Opt._Opt__optionalNotMatched:
                raise NotLowerable("Opt with a default value")
            return f"(?:{self.lower(expr.expr)})?+"
        if isinstance(expr, (pp.ZeroOrMore, pp.OneOrMore)):
            if expr.not_ender is not None or getattr(expr, "max_count", None) is not None:
                raise NotLowerable("repetition with stop_on or a maximum count")
            quantifier = "*+" if isinstance(expr, pp.ZeroOrMore) else "++"
            return f"(?:{self.lower(expr.expr)}){quantifier}"
        if isinstance(expr, pp.Combine):
            if expr.joinString != "":
                raise NotLowerable("Combine with a join string")
            return self.lower(expr.expr)
        if isinstance(expr, pp.Suppress):
            return self.lower(expr.expr)
        if isinstance(expr, pp.FollowedBy):
            return f"(?={self.lower(expr.expr)})"
        if isinstance(expr, pp.NotAny):
            return f"(?!{self.lower(expr.expr)})"
        if isinstance(expr, pp.Forward):
            if expr.expr is None:
                raise NotLowerable("undefined Forward")
            return self.lower(expr.expr)
        raise NotLowerable(f"{type(expr).__name__} is not supported")

    @staticmethod
    def _char_class(chars: set[str], *, negate: bool = False) -> str:
        body = "".join(re.escape(c) for c in sorted(chars))
        return f"[{'^' if negate else ''}{body}]"

    def _word(self, expr: pp.Word) -> str:
        if expr.asKeyword:
            raise NotLowerable("Word(as_keyword=True)")
        if expr.maxSpecified or expr.minLen != 1:
            # pyparsing's own behaviour differs between its regex and loop paths here
            raise NotLowerable("Word with min/max/exact")
        init = self._char_class(expr.init_chars)
        body = self._char_class(expr.bodyChars)
        return f"{init}{body}*+"

    def _chars_not_in(self, expr: pp.CharsNotIn) -> str:
        lo, hi = expr.minLen, expr.maxLen
        cls = self._char_class(expr.notCharsSet, negate=True)
        if hi >= 2**31:
            return f"{cls}{{{lo},}}+"
        return f"{cls}{{{lo},{hi}}}+"

    def _regex(self, expr: pp.Regex) -> str:
        if expr.flags:
            raise NotLowerable("Regex with flags")
        pattern = expr.pattern
        for name in _GROUP_NAME.findall(pattern):
            self._field(name)
        pattern = _GROUP_NAME.sub(lambda m: f"(?P<{self.prefix}{m.group(1)}>", pattern)
        pattern = _GROUP_REF.sub(lambda m: f"(?P={self.prefix}{m.group(1)})", pattern)
        return f"(?>{pattern})"


def _single_token(expr: pp.ParserElement) -> bool:
    """True if the element always yields exactly one token equal to the text it matched."""
    if isinstance(expr, (pp.Literal, pp.Word, pp.CharsNotIn, pp.Regex, pp.Combine)):
        return not isinstance(expr, (pp.CaselessLiteral, pp.Keyword))
    if isinstance(expr, pp.MatchFirst):
        return all(_single_token(e) for e in expr.exprs)
    return False
