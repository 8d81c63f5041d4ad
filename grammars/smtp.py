"""Messages of the Postfix SMTP client (``postfix/smtp``, ``postfix/relay/smtp``, ``postfix-out/smtp``).

A delivery is a status line (``log_adhoc()``); its TLS summary line comes just before it in the
same process, without a queue id (pitfall 6)::

    Verified TLS connection established to mx.example.net[203.0.113.25]:25: TLSv1.3 with cipher ...
    4F1A23E0C7: to=<alice@example.net>, relay=mx.example.net[203.0.113.25]:25, delay=1.2, delays=0.05/0.01/0.62/0.5, tls=dane, dsn=2.0.0, status=sent (250 2.0.0 OK)
    19B6B2900FE: to=<wietse@test.example.com>, orig_to=<wietse@test>, relay=mail.example.com[1.2.3.4], conn_use=2, delay=0.22, delays=0.04/0.01/0.05/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok)
    9E0F1A2B3C: to=<frank@example.com>, relay=none, delay=0.2, delays=0.01/0/0.19/0, dsn=4.7.5, status=deferred (no TLSA records found)
    0A1B2C3D4E: to=<x@example.net>, relay=private/dovecot-lmtp, delay=0.1, dsn=2.0.0, status=sent (250 2.0.0 Saved)

Items between ``to=<...>`` and ``status=`` are read as a list in any order (2.1-2.2 had no
``delays``/``dsn``; 3.11 added ``tls=``). The reason is everything inside the final parentheses.
Other client lines::

    7C8D9E0F1A: Cannot start TLS: handshake failure                  (non-final MX attempt)
    connect to mx1.example.com[192.0.2.70]:25: Connection refused
"""

from __future__ import annotations

import pyparsing as pp

from . import tls
from .common import DIAGNOSTIC, PEER_OR_HOST, QUEUE_ID, REST, Rule, lit

#: Between the angle brackets; a '>' inside an address is allowed unless ``, `` follows it.
ADDRESS = pp.Regex(r"[^>]*(?:>(?!, )[^>]*)*").set_name("address")
ITEM_VALUE = pp.CharsNotIn(",").set_name("value")

STATUS_ITEM = (
    (lit("orig_to=<") + ADDRESS("orig_to") + lit(">"))
    | (lit("relay=") + ITEM_VALUE("relay"))
    | (lit("conn_use=") + ITEM_VALUE("conn_use"))
    | (lit("delay=") + ITEM_VALUE("delay"))
    | (lit("delays=") + ITEM_VALUE("delays"))
    | (lit("tls=") + ITEM_VALUE("tls_feature"))
    | (lit("dsn=") + ITEM_VALUE("dsn"))
    | (pp.Regex(r"(?!status=)[a-z_]+=") + ITEM_VALUE)
).set_name("delivery attribute")

STATUS = Rule.define(
    "status",
    QUEUE_ID("queue_id")
    + lit(": to=<")
    + ADDRESS("recipient")
    + lit(">")
    + pp.ZeroOrMore(lit(", ") + STATUS_ITEM)
    + lit(", status=")
    + pp.Word(pp.alphas + "-")("status")
    + lit(" ")
    + pp.Regex(r"\((?P<reason>.*)\)"),
    samples=[
        ("4F1A23E0C7: to=<alice@example.net>, relay=mx.example.net[203.0.113.25]:25, delay=1.2,"
         " delays=0.05/0.01/0.62/0.5, tls=dane, dsn=2.0.0, status=sent (250 2.0.0 OK 1717495441 abc123)",
         {"queue_id": "4F1A23E0C7", "recipient": "alice@example.net",
          "relay": "mx.example.net[203.0.113.25]:25", "conn_use": None, "tls_feature": "dane",
          "dsn": "2.0.0", "status": "sent", "reason": "250 2.0.0 OK 1717495441 abc123"}),
        ("19B6B2900FE: to=<wietse@test.example.com>, orig_to=<wietse@test>, relay=mail.example.com[1.2.3.4],"
         " conn_use=2, delay=0.22, delays=0.04/0.01/0.05/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok)",
         {"orig_to": "wietse@test", "relay": "mail.example.com[1.2.3.4]", "conn_use": "2"}),
        ("9E0F1A2B3C: to=<frank@example.com>, relay=none, delay=0.2, delays=0.01/0/0.19/0, dsn=4.7.5,"
         " status=deferred (no TLSA records found)",
         {"relay": "none", "status": "deferred", "reason": "no TLSA records found"}),
        ("9EFB9201AB: to=<t@dest.example.org>, relay=relay.example.onion[31.0.0.0]:25, delay=28722,"
         " delays=28680/32/2.7/7.6, dsn=4.7.1, status=deferred (host relay.example.org[31.0.0.0] said: 450"
         " 4.7.1 temporarily suspended, please try again later. (in reply to RCPT TO command))",
         {"reason": "host relay.example.org[31.0.0.0] said: 450 4.7.1 temporarily suspended, please try"
                    " again later. (in reply to RCPT TO command)"}),
        ("7EE668039: to=<user@example.com>, relay=mail.example.com[1.2.3.4]:25, delay=3.6,"
         " delays=0.08/0.02/0.85/0.14, tls=dane/!requiretls:nocertmatch, dsn=2.1.5, status=sent"
         " (250 2.0.0 Ok: queued as 153053D)", {"tls_feature": "dane/!requiretls:nocertmatch"}),
        ("0F1A2B3C4D: to=<gina@example.com>, relay=none, delay=30, status=deferred (timeout)",
         {"dsn": None, "delay": "30"}),
    ],
)

CONNECT_FAILED = Rule.define(
    "connect_failed",
    lit("connect to ") + PEER_OR_HOST("peer") + lit(": ") + REST("error"),
    samples=[
        ("connect to aspmx.l.google.com[2a00:1450:400b:c02::1a]:25: Network is unreachable",
         {"peer": "aspmx.l.google.com[2a00:1450:400b:c02::1a]:25", "error": "Network is unreachable"}),
    ],
)

#: ``QUEUEID: text``: a note about a non-final attempt (another MX may still be tried).
DELIVERY_NOTE = Rule.define(
    "delivery_note",
    QUEUE_ID("queue_id") + lit(": ") + REST("note"),
    samples=[("7C8D9E0F1A: Cannot start TLS: handshake failure", {"note": "Cannot start TLS: handshake failure"})],
)

#: A TLS failure reason quoted without its queue id (how other tools' patterns show them).
TLS_FAILURE_TEXT = Rule.define(
    "tls_failure_text",
    (
        lit("Cannot start TLS: handshake failure")
        | lit("Server certificate not verified")
        | lit("Server certificate not trusted")
        | pp.Combine(lit("TLS is required, but ") + REST)
    )("reason"),
    samples=[("Cannot start TLS: handshake failure", {"reason": "Cannot start TLS: handshake failure"})],
)

RULES = [
    tls.TLS_SUMMARY,
    STATUS,
    *tls.RULES[1:],
    CONNECT_FAILED,
    DIAGNOSTIC,
    DELIVERY_NOTE,
    TLS_FAILURE_TEXT,
    tls.PEER_NOTE,
]
