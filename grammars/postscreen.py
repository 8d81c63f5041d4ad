"""Messages of ``postfix/postscreen`` (2.8+). postscreen does no TLS itself (a STARTTLS during
its deep-protocol tests goes to tlsproxy); its lines are recognised so they are never counted as
unparsed. Clients are always written ``[addr]:port``::

    CONNECT from [192.0.2.7]:51234 to [198.51.100.1]:25
    PASS NEW [192.0.2.7]:51234
    PASS OLD [2604:8d00:0:1::3]:52237
    PREGREET 11 after 0.12 from [2001:db8::7]:40001: EHLO x\\r\\n
    DNSBL rank 3 for [203.0.113.99]:40002
    HANGUP after 2 from [192.0.2.9]:40003 in tests after SMTP handshake
    NOQUEUE: reject: RCPT from [192.0.2.7]:51234: 450 4.3.2 Service currently unavailable; from=<a@example.com>, to=<b@example.org>, proto=ESMTP, helo=<client.example>
    DISCONNECT [192.0.2.7]:51234
"""

from __future__ import annotations

import pyparsing as pp

from .common import DIAGNOSTIC, PEER, REST, Rule, lit

SCREEN_CONNECT = Rule.define(
    "screen_connect",
    lit("CONNECT from ") + PEER("peer") + lit(" to ") + PEER("local"),
    samples=[("CONNECT from [192.0.2.7]:51234 to [198.51.100.1]:25",
              {"peer": "[192.0.2.7]:51234", "local": "[198.51.100.1]:25"})],
)

SCREEN_PASS = Rule.define(
    "screen_pass",
    lit("PASS ") + (lit("NEW") | lit("OLD"))("age") + lit(" ") + PEER("peer"),
    samples=[("PASS OLD [2604:8d00:0:1::3]:52237", {"age": "OLD", "peer": "[2604:8d00:0:1::3]:52237"})],
)

SCREEN_DISCONNECT = Rule.define(
    "screen_disconnect",
    lit("DISCONNECT ") + PEER("peer"),
    samples=[("DISCONNECT [192.0.2.7]:51234", {"peer": "[192.0.2.7]:51234"})],
)

SCREEN_REJECT = Rule.define(
    "screen_reject",
    lit("NOQUEUE: reject: ") + pp.Word(pp.alphas)("stage") + lit(" from ") + PEER("peer") + lit(": ")
    + REST("detail"),
    samples=[("NOQUEUE: reject: RCPT from [192.0.2.7]:51234: 450 4.3.2 Service currently unavailable;"
              " from=<a@example.com>, to=<b@example.org>, proto=ESMTP, helo=<client.example>",
              {"stage": "RCPT", "peer": "[192.0.2.7]:51234"})],
)

#: Every other postscreen event starts with an upper-case keyword phrase: ``PREGREET``,
#: ``DNSBL rank``, ``HANGUP``, ``COMMAND PIPELINING``, ``BARE NEWLINE``, ``DENYLISTED``...
SCREEN_EVENT = Rule.define(
    "screen_event",
    pp.Regex(r"[A-Z][A-Z-]*(?: [A-Z][A-Z-]*)*")("event") + lit(" ") + REST("detail"),
    samples=[
        ("PREGREET 11 after 0.12 from [2001:db8::7]:40001: EHLO x\\r\\n", {"event": "PREGREET"}),
        ("DNSBL rank 3 for [203.0.113.99]:40002", {"event": "DNSBL"}),
        ("HANGUP after 2 from [192.0.2.9]:40003 in tests after SMTP handshake", {"event": "HANGUP"}),
        ("COMMAND PIPELINING from [192.0.2.9]:40003 after EHLO: QUIT", {"event": "COMMAND PIPELINING"}),
    ],
)

SCREEN_CACHE = Rule.define(
    "screen_cache",
    lit("cache ") + REST("detail"),
    samples=[("cache btree:/var/lib/postfix/psc_cache full cleanup: retained=5 dropped=0 entries", {})],
)

RULES = [SCREEN_CONNECT, SCREEN_PASS, SCREEN_DISCONNECT, SCREEN_REJECT, DIAGNOSTIC, SCREEN_EVENT, SCREEN_CACHE]
