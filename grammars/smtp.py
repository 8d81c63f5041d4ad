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

A delivery line damaged on its way (cut by a relay, anonymised without the angle brackets,
saved through a spreadsheet) is still a delivery: ``status_damaged`` reads what it can, with the
same fields as ``status``, as long as ``QUEUEID: to=RECIPIENT, ..., status=WORD`` is there::

    4F1A23E0C7: to=<alice@example.net>, relay=mx.example.net[203.0.113.25]:25, delay=1.2, dsn=2.0.0, status=sent (250 2.0.0 OK 17174
    7F9321106C6B: to=recipient@externaldomain.com, relay=mx.example.com[213.199.154.23]:25, delay=35880, dsn=2.6.0, status=sent (250 2.6.0 Queued)
    B465B110313B: to=<senderror@example.com>, relay=aspmx.l.google.com[74.125.31.26]:25, delay=80212, dsn=2.0.0, status=sent (250 2.0.0 OK - gsmtp),,,,,,,

A line that starts like a delivery (``QUEUEID: to=``) but that neither rule reads stays
unparsed (and is counted), never a ``delivery_note``. Other client lines::

    7C8D9E0F1A: Cannot start TLS: handshake failure                  (non-final MX attempt)
    connect to mx1.example.com[192.0.2.70]:25: Connection refused
    discarding EHLO keywords: 8BITMIME STARTTLS                      (smtp_discard_ehlo_keywords)

With ``smtp_tls_loglevel`` 2 to 4 the TLS library adds handshake, session-cache and packet-dump
detail (``grammars.tls.DETAIL_RULES``)::

    setting up TLS connection to 127.0.0.1[127.0.0.1]:20035
    127.0.0.1[127.0.0.1]:20035: TLS cipher list "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH"
    looking for session smtp&[127.0.0.1]:36035&127.0.0.1&127.0.0.1&&5D0E7C in smtp cache
    SSL_connect:SSLv3/TLS write client hello
    127.0.0.1[127.0.0.1]:20035: depth=0 verify=1 subject=/CN=mx.local.test
    127.0.0.1[127.0.0.1]:20035: subject_CN=mx.local.test, issuer_CN=Harness Test CA, fingerprint=..., pkey_fingerprint=...
    127.0.0.1[127.0.0.1]:36035: Reusing old session
    write to 55D2A3D0B7C0 [55D2A3D17A40] (281 bytes => 281 (0x119))
    0000 16 03 01 01 14 01 00 01|10 03 03 6b 3a 0e 9e 46  ........ ...k:..F
    Write 27 chars: EHLO mx.local.test??
"""

from __future__ import annotations

import pyparsing as pp

from . import tls
from .common import DIAGNOSTIC, EHLO_DISCARD, PEER_OR_HOST, QUEUE_ID, REST, Rule, lit

#: Between the angle brackets; a '>' inside an address is allowed unless ``, `` follows it.
ADDRESS = pp.Regex(r"[^>]*(?:>(?!, )[^>]*)*").set_name("address")
ITEM_VALUE = pp.CharsNotIn(",").set_name("value")

#: The ``name=value`` items of a delivery line after the recipient (any other name is skipped).
ATTRIBUTES = (
    (lit("relay=") + ITEM_VALUE("relay"))
    | (lit("conn_use=") + ITEM_VALUE("conn_use"))
    | (lit("delay=") + ITEM_VALUE("delay"))
    | (lit("delays=") + ITEM_VALUE("delays"))
    | (lit("tls=") + ITEM_VALUE("tls_feature"))
    | (lit("dsn=") + ITEM_VALUE("dsn"))
    | (pp.Regex(r"(?!status=)[a-z_]+=") + ITEM_VALUE)
)

STATUS_ITEM = ((lit("orig_to=<") + ADDRESS("orig_to") + lit(">")) | ATTRIBUTES).set_name("delivery attribute")

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


def _recipient(name: str) -> pp.ParserElement:
    """An address in angle brackets (as `ADDRESS`) or, when the ``<`` is missing, up to the next
    comma. Both spellings give one results name, so the rule stays one regular expression."""
    return (
        pp.Opt(lit("<"))
        + pp.Regex(r"(?<=<)[^>]*(?:>(?!, )[^>]*)*|(?<!<)[^,]+")(name)
        + pp.Opt(lit(">"))
    )


DAMAGED_ITEM = ((lit("orig_to=") + _recipient("orig_to")) | ATTRIBUTES).set_name("delivery attribute")

#: What follows ``status=WORD`` in a damaged line: the reason inside its parentheses when they
#: close (trailing commas after them are dropped), else everything after the ``(``.
DAMAGED_REASON = pp.Regex(r"\((?P<reason>.*(?=\),*\Z)|.*)\)?,*").set_name("reason, maybe cut")

#: A delivery status line that `STATUS` rejects, read as far as it goes; exactly the fields of
#: `STATUS` (absent ones are None). Tried right after `STATUS`, so an intact line never lands here.
STATUS_DAMAGED = Rule.define(
    "status_damaged",
    QUEUE_ID("queue_id")
    + lit(": to=")
    + _recipient("recipient")
    + pp.ZeroOrMore(lit(", ") + DAMAGED_ITEM)
    + lit(", status=")
    + pp.Word(pp.alphas + "-")("status")
    + pp.Opt(lit(" ") + pp.Opt(DAMAGED_REASON))
    + pp.Regex(r",*"),
    samples=[
        # cut inside the reason (a relay's line limit, a truncated copy)
        ("E7D8726A3B: to=<examplet@gmail.com>, relay=gmail-smtp-in.l.google.com[108.177.14.27]:25, delay=2134,"
         " delays=2133/0/0.12/0.59, dsn=2.0.0, status=sent (250 2.0.0 OK  1584148796 q7si7179",
         {"queue_id": "E7D8726A3B", "recipient": "examplet@gmail.com", "orig_to": None,
          "relay": "gmail-smtp-in.l.google.com[108.177.14.27]:25", "conn_use": None, "delay": "2134",
          "delays": "2133/0/0.12/0.59", "tls_feature": None, "dsn": "2.0.0", "status": "sent",
          "reason": "250 2.0.0 OK  1584148796 q7si7179"}),
        # recipient anonymised without its angle brackets
        ("7F9321106C6B: to=recipient@externaldomain.com, relay=deakin-edu-au.mail.protection.outlook.com"
         "[213.199.154.23]:25, delay=35880, delays=26888/8986/3.2/3.4, dsn=2.6.0, status=sent (250 2.6.0"
         " recipient@externaldomain.com [InternalId=51148765528067] Queued mail for delivery)",
         {"recipient": "recipient@externaldomain.com",
          "relay": "deakin-edu-au.mail.protection.outlook.com[213.199.154.23]:25", "dsn": "2.6.0",
          "status": "sent", "reason": "250 2.6.0 recipient@externaldomain.com [InternalId=51148765528067]"
                                      " Queued mail for delivery"}),
        # trailing CSV commas after the final parenthesis
        ("B465B110313B: to=<senderror@OURDOMAIN.com>, relay=aspmx.l.google.com[74.125.31.26]:25, delay=80212,"
         " delays=71229/8979/2.4/0.75, dsn=2.0.0, status=sent (250 2.0.0 OK 1418252401 tb3si8932467pab.14 -"
         " gsmtp),,,,,,,",
         {"recipient": "senderror@OURDOMAIN.com", "status": "sent",
          "reason": "250 2.0.0 OK 1418252401 tb3si8932467pab.14 - gsmtp"}),
        # both, and a reason with parentheses of its own
        ("867041104681: to=recipient@externaldomain.com, orig_to=<r@example.com>, relay=mx.example.net[208.65.145.2]:25,"
         " conn_use=2, delay=51747, dsn=5.0.0, status=bounced (host mx.example.net[208.65.145.2] said: 554 Denied"
         " (Mode: normal) (in reply to end of DATA command)),,,,,,,",
         {"orig_to": "r@example.com", "conn_use": "2", "status": "bounced",
          "reason": "host mx.example.net[208.65.145.2] said: 554 Denied (Mode: normal) (in reply to end of DATA"
                    " command)"}),
        # cut right after the status word: no reason at all
        ("4F1A23E0C7: to=<alice@example.net>, relay=none, delay=30, status=deferred",
         {"relay": "none", "status": "deferred", "reason": None}),
        ("4F1A23E0C7: to=<alice@example.net>, relay=mx.example.net[203.0.113.25]:25, delay=1.2, dsn=2.0.0,"
         " status=sent (250", {"status": "sent", "reason": "250"}),
        ("4F1A23E0C7: to=alice@example.net, orig_to=alice, tls=may, status=sent (",
         {"orig_to": "alice", "tls_feature": "may", "reason": ""}),
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

#: ``QUEUEID: text``: a note about a non-final attempt (another MX may still be tried). Never a
#: line that starts like a delivery (``QUEUEID: to=``): one that `STATUS` and `STATUS_DAMAGED`
#: cannot read stays unparsed, so it is counted instead of dropped.
DELIVERY_NOTE = Rule.define(
    "delivery_note",
    QUEUE_ID("queue_id") + lit(": ") + ~lit("to=") + REST("note"),
    samples=[
        ("7C8D9E0F1A: Cannot start TLS: handshake failure", {"note": "Cannot start TLS: handshake failure"}),
        ("7C8D9E0F1A: host mx.example.com[192.0.2.1] said: 450 4.7.1 try again (in reply to RCPT TO command)",
         {"queue_id": "7C8D9E0F1A"}),
        # no "to=": a mangled delivery that is not recognisable as one
        ("123456789AB: user@example.com, relay=example.com[123.45.67.89]:25, delay=2, status=deferred (x)",
         {"note": "user@example.com, relay=example.com[123.45.67.89]:25, delay=2, status=deferred (x)"}),
    ],
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
    STATUS_DAMAGED,
    *tls.RULES[1:],
    CONNECT_FAILED,
    EHLO_DISCARD,
    DIAGNOSTIC,
    *tls.DETAIL_RULES,  # after the common lines (none of them is a diagnostic), before the notes
    DELIVERY_NOTE,
    TLS_FAILURE_TEXT,
    tls.PEER_NOTE,
]
