"""Postfix configuration text: ``postconf -n`` output, ``main.cf`` and ``master.cf`` lines.

Not log lines, but read the same way: one rule per line shape, whitespace explicit, fields as
raw text (``tlslog.postconf`` joins logical lines and expands ``$name`` references). The
shapes, from ``postconf(5)`` and ``master(5)``::

    parameter     smtpd_tls_security_level = may             (also postconf -n output)
                  submission/inet/smtpd_tls_security_level = encrypt    (postconf -P form)
    comment       # TLS parameters                             first non-blank character '#'
    blank                                                      ignored
    continuation      -o smtpd_tls_security_level=encrypt      leading whitespace: continues
                                                               the logical line before it
    service       submission inet n - y - - smtpd -o ...       master.cf: 8 fields, then arguments

A ``-o name=value`` argument of master.cf is read with ``parameter`` (``name = value`` with the
blanks optional).
"""

from __future__ import annotations

import pyparsing as pp

from .common import REST, Rule, lit

__all__ = ["BLANK", "COMMENT", "CONTINUATION", "MAIN_RULES", "MASTER_RULES", "PARAMETER", "SERVICE"]

#: A parameter name; ``service/type/name`` in postconf -P output and main.cf overrides (3.0+).
NAME = pp.Regex(r"[A-Za-z0-9_][A-Za-z0-9_./-]*").set_name("parameter name")
BLANKS = pp.Regex(r"[ \t]*").set_name("blanks")
SEPARATOR = pp.Regex(r"[ \t]+").set_name("blanks")
FIELD = pp.CharsNotIn(" \t").set_name("field")

PARAMETER = Rule.define(
    "parameter",
    NAME("name") + BLANKS + lit("=") + BLANKS + REST("value"),
    samples=[
        ("smtpd_tls_security_level = may", {"name": "smtpd_tls_security_level", "value": "may"}),
        ("smtp_tls_protocols = !SSLv2, !SSLv3", {"value": "!SSLv2, !SSLv3"}),
        ("smtp_tls_security_level =", {"name": "smtp_tls_security_level", "value": ""}),
        ("smtpd_tls_security_level=encrypt", {"name": "smtpd_tls_security_level", "value": "encrypt"}),
        ("submission/inet/smtpd_tls_security_level = encrypt",
         {"name": "submission/inet/smtpd_tls_security_level"}),
    ],
)

COMMENT = Rule.define(
    "comment",
    BLANKS + lit("#") + REST("text"),
    samples=[("# TLS parameters", {"text": " TLS parameters"}), ("   #smtp_tls_loglevel = 1", {})],
)

BLANK = Rule.define("blank", BLANKS, samples=[("", {}), ("  \t", {})])

CONTINUATION = Rule.define(
    "continuation",
    SEPARATOR + REST("text"),
    samples=[("    -o smtpd_tls_security_level=encrypt", {"text": "-o smtpd_tls_security_level=encrypt"}),
             ("\t!SSLv3", {"text": "!SSLv3"})],
)

SERVICE = Rule.define(
    "service",
    FIELD("service") + SEPARATOR + FIELD("type") + SEPARATOR + FIELD("private") + SEPARATOR + FIELD("unpriv")
    + SEPARATOR + FIELD("chroot") + SEPARATOR + FIELD("wakeup") + SEPARATOR + FIELD("maxproc") + SEPARATOR
    + FIELD("command") + pp.Opt(SEPARATOR + REST("args")),
    samples=[
        ("submission inet n       -       y       -       -       smtpd -o smtpd_tls_security_level=encrypt",
         {"service": "submission", "type": "inet", "command": "smtpd", "args": "-o smtpd_tls_security_level=encrypt"}),
        ("smtp      unix  -       -       y       -       -       smtp", {"service": "smtp", "command": "smtp",
                                                                         "args": None}),
    ],
)

#: A main.cf line (or postconf -n output), in the order tried.
MAIN_RULES = [COMMENT, BLANK, CONTINUATION, PARAMETER]
#: A master.cf line, in the order tried.
MASTER_RULES = [COMMENT, BLANK, CONTINUATION, SERVICE]
