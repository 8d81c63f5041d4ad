"""Log text is attacker-controlled: make it inert for each place it is written.

Remote clients choose their HELO and reverse DNS names, SASL user names and recipient
addresses, and those reach every output. Nothing they send may steer it: no terminal escape
sequence, no rich markup, no markdown table cell break, no spreadsheet formula. Writers pass
every log-derived string through the function for their format; JSON and JSONL need none
(`json.dumps` escapes control characters).
"""

from __future__ import annotations

import re

__all__ = ["csv_cell", "markdown_cell", "terminal"]

# C0 controls, DEL and C1 controls (ESC, CR, BEL, CSI 0x9b ...), and the Unicode bidi
# overrides and isolates that can make text display in another order than it is written.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal(text: str) -> str:
    """Control characters shown as ``\\x1b``-style escapes. Rich markup needs no escaping as
    long as the result goes into a `rich.text.Text` (never into a markup string)."""
    return _CONTROL.sub(_visible, text)


_MARKDOWN = re.compile(r"([\\`|*_\[\]<>#~])")


def markdown_cell(text: str) -> str:
    """Safe in a GitHub-flavoured markdown table cell: no cell break (``|``), code span,
    emphasis, link or HTML; no line break."""
    return _MARKDOWN.sub(r"\\\1", terminal(text))


def csv_cell(value: object) -> object:
    """A spreadsheet never reads it as a formula (OWASP: a leading ``=``, ``+``, ``-``, ``@``,
    tab or carriage return gets a leading apostrophe). Numbers pass unchanged."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
