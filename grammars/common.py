"""Shared pyparsing pieces of Postfix log messages, and the `Rule` every grammar module uses.

Conventions that every grammar module follows (and that `tlslog.lowering` relies on to turn a
rule into one compiled regular expression with identical results):

* Whitespace is explicit. A rule never skips blanks on its own: ``SP`` is a real space, so
  ``Jun  4`` (two spaces) and ``Jun 04`` are told apart exactly as Postfix and syslog write them.
* Every field a caller reads is a *results name* on an element that yields exactly the text it
  matched: a token (`Literal`, `Word`, `Regex`, `CharsNotIn`), an ordered choice of tokens, or
  a `Combine` of a sequence. Field values are therefore always the raw substrings of the line.
* No parse actions: conversions (numbers, peers, counters) happen after parsing, once, in
  `tlslog.events`, for both the pyparsing path and the compiled fast path.
* A rule matches a whole message (`END`), in PEG fashion: ordered choice, greedy repetition,
  no backtracking into an element that has matched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyparsing as pp

__all__ = [
    "ADDR",
    "DIAGNOSTIC",
    "DIGITS",
    "EHLO_DISCARD",
    "END",
    "HOST",
    "KV_VALUE",
    "PEER",
    "PEER_OR_HOST",
    "PORT",
    "QUEUE_ID",
    "QUEUE_ID_OR_NOQUEUE",
    "REST",
    "SEVERITY",
    "SP",
    "Rule",
    "fragment",
    "lit",
]


def lit(text: str) -> pp.Literal:
    """A literal piece of text, named after itself for readable diagrams and errors."""
    return pp.Literal(text).set_name(repr(text))


SP = lit(" ")
END = pp.StringEnd().set_name("end of message")

#: Free text up to the end of the message (reply texts, error strings).
REST = pp.Regex(r".*").set_name("text")
DIGITS = pp.Word(pp.nums).set_name("number")

#: Host part of ``host[addr]``: a DNS name, ``unknown``, or a redacted placeholder; may be empty.
HOST = pp.CharsNotIn("[] \t").set_name("host name")
#: Whatever sits inside the brackets: IPv4, bare IPv6 (colons!), or placeholders like ``ipaddr``.
ADDR = pp.CharsNotIn("[] \t").set_name("address")
PORT = pp.Word(pp.nums).set_name("port")

#: ``host[addr]``, ``host[addr]:port``, ``[addr]:port``. Never split on ':' (IPv6).
PEER = pp.Combine(
    pp.Opt(HOST) + lit("[") + pp.Opt(ADDR) + lit("]") + pp.Opt(lit(":") + PORT)
).set_name("peer")

#: Postfix 2.2-2.4 clients logged the server's bare host name, e.g. ``to mx.example.net:``.
BARE_HOST = pp.Regex(r"[^\s\[\]:]+").set_name("bare host name")
PEER_OR_HOST = (PEER | BARE_HOST).set_name("peer or host name")

#: Short ids are upper-case hex (``C83AA4E296B``); long ids (``enable_long_queue_ids``) are
#: base-52 time + 'z' + base-51 inode (``4bVqX65Jvtz9vZ1``). Neither may run on into more
#: alphanumerics, so a long id whose first characters look like hex is not cut short.
QUEUE_ID = pp.Regex(
    r"[0-9A-F]{5,}(?![0-9A-Za-z])"
    r"|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{6,}z[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-y]+(?![0-9A-Za-z])"
).set_name("queue id")
QUEUE_ID_OR_NOQUEUE = (lit("NOQUEUE") | QUEUE_ID).set_name("queue id or NOQUEUE")

#: Value of a ``, key=value`` list item: runs over commas unless one starts the next item.
KV_VALUE = pp.Regex(r"[^,]*(?:,(?! [a-z_]+=)[^,]*)*").set_name("value")

#: Non-info messages start with their severity (``postfix/src/util/msg_syslog.c``).
SEVERITY = (lit("warning") | lit("error") | lit("fatal") | lit("panic")).set_name("severity")


def fragment(expr: pp.ParserElement) -> pp.ParserElement:
    """Like `Rule.define`, but not anchored at the end: matches the start of a text."""
    element = expr.copy().leave_whitespace(recursive=True)
    element.parse_with_tabs()
    return element


@dataclass(frozen=True)
class Rule:
    """One message shape: a name (the event kind), its pyparsing element, and sample lines.

    ``samples`` pairs a message text with the fields it must yield (a subset is enough);
    ``tests/test_grammars.py`` runs every sample of every rule through both parser paths.
    """

    name: str
    element: pp.ParserElement
    samples: tuple[tuple[str, dict[str, str | None]], ...] = field(default=(), repr=False)

    @classmethod
    def define(
        cls,
        name: str,
        expr: pp.ParserElement,
        samples: list[tuple[str, dict[str, str | None]]] | None = None,
    ) -> Rule:
        """Make a whole-message rule: explicit whitespace, tabs kept, anchored at the end."""
        element = (expr + END).leave_whitespace(recursive=True)
        element.parse_with_tabs()
        element.set_name(name)
        return cls(name, element, tuple(samples or ()))

    def names(self) -> list[str]:
        """The results names this rule can yield, in the order they appear."""
        seen: list[str] = []
        _collect_names(self.element, seen, set())
        return seen


def _collect_names(expr: pp.ParserElement, out: list[str], visiting: set[int]) -> None:
    if id(expr) in visiting:
        return
    visiting.add(id(expr))
    if expr.resultsName and expr.resultsName not in out:
        out.append(expr.resultsName)
    if isinstance(expr, pp.Regex):
        for name in expr.re.groupindex:
            if name not in out:
                out.append(name)
    for child in getattr(expr, "exprs", ()):
        _collect_names(child, out, visiting)
    inner = getattr(expr, "expr", None)
    if isinstance(inner, pp.ParserElement):
        _collect_names(inner, out, visiting)


#: Any ``warning:``/``error:``/``fatal:``/``panic:`` message not matched by a more specific rule.
#: Postfix defines this shape for every non-info record, so such lines are known, not unparsed.
DIAGNOSTIC = Rule.define(
    "diagnostic",
    SEVERITY("severity") + lit(": ") + REST("text"),
    samples=[
        ("warning: hostname localhost.localdomain does not resolve to address 192.168.1.115",
         {"severity": "warning"}),
        ("warning: SASL authentication failure: Password verification failed", {"severity": "warning"}),
    ],
)


#: ``smtpd_discard_ehlo_keywords`` (server) and ``smtp_discard_ehlo_keywords`` (client) both log
#: ``msg_info("discarding EHLO keywords: %s", str_ehlo_mask(mask))`` (``smtpd/smtpd.c``,
#: ``smtp/smtp_proto.c``); which side it is follows from the program that logged it.
EHLO_DISCARD = Rule.define(
    "ehlo_discard",
    lit("discarding EHLO keywords: ") + REST("keywords"),
    samples=[
        ("discarding EHLO keywords: ETRN", {"keywords": "ETRN"}),
        ("discarding EHLO keywords: 8BITMIME STARTTLS", {"keywords": "8BITMIME STARTTLS"}),
    ],
)
