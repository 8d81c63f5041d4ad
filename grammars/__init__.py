"""The grammar of record: pyparsing rules for Postfix log lines, one module per program.

Installed as ``tlslog.grammars`` (the top-level ``grammars/`` folder is mapped onto that name
in ``pyproject.toml``). Each module documents the raw lines it accepts and carries sample
lines on its rules; ``PROGRAMS`` says which rules apply to which Postfix program, in order.
"""

from __future__ import annotations

from . import master, postscreen, prefix, smtp, smtpd, tls, tlsproxy
from .common import Rule

__all__ = ["ANY_PROGRAM", "PROGRAMS", "UNKNOWN_PROGRAM", "Rule", "all_rules", "master", "prefix", "tls"]

#: Program name (last component of the syslog tag) -> rules tried in order (PEG ordered choice).
PROGRAMS: dict[str, list[Rule]] = {
    "smtpd": smtpd.RULES,
    "smtp": smtp.RULES,
    "tlsproxy": tlsproxy.RULES,
    "postscreen": postscreen.RULES,
}

#: For tags that lost the program (rsyslog's RFC 5424 APP-NAME ``postfix``): server rules,
#: then client rules; the matched rule and its fields tell which side logged the line.
UNKNOWN_PROGRAM: list[Rule] = [
    smtpd.CONNECT,
    smtpd.DISCONNECT,
    tls.TLS_SUMMARY,
    smtpd.CLIENT,
    smtp.STATUS,
    smtp.STATUS_DAMAGED,
    smtpd.LOST,
    smtpd.TLS_ABORT,
    smtpd.ACTION,
    *tls.RULES[1:],
    smtpd.PIPELINING,
    smtpd.EHLO_DISCARD,
    smtp.CONNECT_FAILED,
    smtpd.DIAGNOSTIC,
    *tls.DETAIL_RULES,
    tls.PEER_NOTE,
    smtpd.QUEUE_NOTE,
    smtp.TLS_FAILURE_TEXT,
]

#: For a bare message with no prefix at all (documentation, other tools' test data): every
#: program's rules, most specific first.
ANY_PROGRAM: list[Rule] = [
    *UNKNOWN_PROGRAM[:-2],
    postscreen.SCREEN_CONNECT,
    tlsproxy.PROXY_CONNECT,
    postscreen.SCREEN_PASS,
    tlsproxy.PROXY_DISCONNECT,
    tlsproxy.HANDSHAKE_FAILED,
    postscreen.SCREEN_REJECT,
    *UNKNOWN_PROGRAM[-2:],
    postscreen.SCREEN_EVENT,
    postscreen.SCREEN_CACHE,
]


def all_rules() -> list[Rule]:
    """Every distinct rule of every module, prefix rules included."""
    seen: dict[int, Rule] = {}
    for rules in [prefix.RULES, tls.RULES, tls.DETAIL_RULES, [tls.PEER_NOTE], *PROGRAMS.values(), master.RULES]:
        for rule in rules:
            seen.setdefault(id(rule), rule)
    return list(seen.values())
