"""Messages of the Postfix SMTP server (``postfix/smtpd``, ``postfix/submission/smtpd``...).

Session framing and what happens inside one session::

    connect from mail-ed1-f41.example.com[198.51.100.41]
    connect from mail-pl1-x62b.example.com[2001:db8:4864:20::62b]:40512
    Anonymous TLS connection established from mail-ed1-f41.example.com[198.51.100.41]: TLSv1.3 with cipher ...
    4F1A23E0C7: client=mail-ed1-f41.example.com[198.51.100.41]
    36E6D300017: client=myserver.com[192.168.1.8], sasl_method=PLAIN, sasl_username=me
    disconnect from mail-ed1-f41.example.com[198.51.100.41] ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7
    disconnect from unknown[203.0.113.9] ehlo=1 starttls=0/1 commands=1/2
    disconnect from bendel.debian.org[82.195.75.100]                                   (before 3.0: no counters)

Abnormal ends (3.10 added the queue id prefix) and TLS-specific lines::

    lost connection after STARTTLS from unknown[203.0.113.9]
    NOQUEUE: lost connection after STARTTLS from unknown[203.0.113.9]
    lost connection after DATA (2048 bytes) from unknown[203.0.113.13]
    lost connection after DATA (approximately 0 bytes) from unknown[203.0.113.13]        (Postfix 2.x)
    timeout after EHLO from unknown[203.0.113.10]
    NOQUEUE: too many errors after RCPT from unknown[203.0.113.10]
    NOQUEUE: abort: TLS from unknown[203.0.113.14]: No client certificate presented

With ``smtpd_tls_loglevel`` 2 to 4 the TLS library adds handshake detail, session cache
operations and packet dumps, recognised by ``grammars.tls.DETAIL_RULES`` (no verdict in them)::

    initializing the server-side TLS engine
    setting up TLS connection from unknown[127.0.0.1]
    unknown[127.0.0.1]: TLS cipher list "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH"
    SSL_accept:before SSL initialization
    SSL_accept:SSLv3/TLS read client hello
    SSL_accept:error in error
    SSL3 alert write:fatal:handshake failure
    subject=/CN=client.test
    issuer=/CN=Harness Test CA
    unknown[127.0.0.1]: depth=0 verify=1 subject=/CN=client.test
    unknown[127.0.0.1]: subject_CN=client.test, issuer=Harness Test CA, fingerprint=..., pkey_fingerprint=...
    unknown[127.0.0.1]: save session 9C1F0E6A2B...&s=127.0.0.1:25&l=805306672 to smtpd cache
    unknown[127.0.0.1]: Issuing session ticket, key expiration: 1796168053
    unknown[127.0.0.1]: Reusing old session (RFC 5077 session ticket)
    read from 56419D1FEA60 [56419D21AB83] (5 bytes => 5 (0x5))
    0000 16 03 01 02                                      ....
    0004 - <SPACES/NULLS>
    Read 27 chars: EHLO s9-00001.client.test??

Known lines that carry no TLS evidence::

    NOQUEUE: reject: RCPT from unknown[203.0.113.12]: 554 5.7.1 <user@example.org>: Relay access denied; from=<...> to=<...> proto=ESMTP helo=<example.com>
    improper command pipelining after EHLO from unknown[192.0.2.1]: QUIT
    discarding EHLO keywords: ETRN
    warning: unknown[198.51.100.77]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=alice@example.org
"""

from __future__ import annotations

import pyparsing as pp

from . import tls
from .common import (
    DIAGNOSTIC,
    DIGITS,
    EHLO_DISCARD,
    KV_VALUE,
    PEER,
    QUEUE_ID,
    QUEUE_ID_OR_NOQUEUE,
    REST,
    Rule,
    lit,
)

#: The command counters of the disconnect line (3.0+): `` ehlo=2 starttls=0/1 commands=1/2``,
#: in table order, lower case, plus 3.9's ``notes=bare_lf``. Read by `tlslog.events`.
COUNTERS = pp.Regex(r"(?: [a-z_]+=[^ ]+)*").set_name("command counters")

CONNECT = Rule.define(
    "connect",
    lit("connect from ") + PEER("peer"),
    samples=[
        ("connect from unknown[192.168.1.115]", {"peer": "unknown[192.168.1.115]"}),
        ("connect from mail-pl1-x62b.example.com[2001:db8:4864:20::62b]:40512",
         {"peer": "mail-pl1-x62b.example.com[2001:db8:4864:20::62b]:40512"}),
    ],
)

DISCONNECT = Rule.define(
    "disconnect",
    lit("disconnect from ") + PEER("peer") + COUNTERS("counters"),
    samples=[
        ("disconnect from unknown[72.10.165.66] ehlo=2 starttls=1 mail=1 rcpt=0/1 data=0/1 quit=1 commands=5/7",
         {"peer": "unknown[72.10.165.66]",
          "counters": " ehlo=2 starttls=1 mail=1 rcpt=0/1 data=0/1 quit=1 commands=5/7"}),
        ("disconnect from bendel.debian.org[82.195.75.100]", {"counters": ""}),
        ("disconnect from unknown[203.0.113.11] commands=0/0", {"counters": " commands=0/0"}),
    ],
)

#: ``, sasl_method=...`` and friends after ``client=``; unknown keys are kept generic.
CLIENT_ITEM = (
    (lit("sasl_method=") + KV_VALUE("sasl_method"))
    | (lit("sasl_username=") + KV_VALUE("sasl_username"))
    | (lit("sasl_sender=") + KV_VALUE("sasl_sender"))
    | (pp.Regex(r"[a-z_]+=") + KV_VALUE)
).set_name("client attribute")

CLIENT = Rule.define(
    "client",
    QUEUE_ID("queue_id") + lit(": client=") + PEER("peer") + pp.ZeroOrMore(lit(", ") + CLIENT_ITEM),
    samples=[
        ("C83AA4E296B: client=unknown[192.168.1.115], sasl_method=LOGIN, sasl_username=example",
         {"queue_id": "C83AA4E296B", "peer": "unknown[192.168.1.115]", "sasl_method": "LOGIN",
          "sasl_username": "example"}),
        ("4bVqX65Jvtz9vZ1: client=laptop.example.org[198.51.100.80], sasl_method=PLAIN,"
         " sasl_username=bob@example.org", {"queue_id": "4bVqX65Jvtz9vZ1", "sasl_username": "bob@example.org"}),
        ("8738613A002: client=bendel.debian.org[82.195.75.100]", {"sasl_method": None}),
        ("EB4B2C19E2: client=xxx[1.2.3.4], orig_queue_id=ABCDEF123, orig_client=x[1.2.3.5]",
         {"peer": "xxx[1.2.3.4]"}),
    ],
)

LOST = Rule.define(
    "lost",
    pp.Opt(QUEUE_ID_OR_NOQUEUE("queue_id") + lit(": "))
    + (lit("lost connection") | lit("timeout") | lit("too many errors"))("reason")
    + lit(" after ")
    + pp.Word(pp.alphas + "-_")("after")
    + pp.Opt(lit(" (") + pp.Opt(lit("approximately ")) + DIGITS("bytes") + lit(" bytes)"))
    + lit(" from ")
    + PEER("peer"),
    samples=[
        ("lost connection after STARTTLS from unknown[72.13.58.7]",
         {"queue_id": None, "reason": "lost connection", "after": "STARTTLS", "peer": "unknown[72.13.58.7]"}),
        ("NOQUEUE: lost connection after STARTTLS from unknown[203.0.113.9]", {"queue_id": "NOQUEUE"}),
        ("lost connection after DATA (2048 bytes) from unknown[203.0.113.13]", {"bytes": "2048"}),
        ("lost connection after DATA (approximately 0 bytes) from unknown[185.106.121.100]", {"bytes": "0"}),
        ("NOQUEUE: too many errors after RCPT from unknown[203.0.113.10]", {"reason": "too many errors"}),
        ("timeout after END-OF-MESSAGE from unknown[203.0.113.10]", {"after": "END-OF-MESSAGE"}),
    ],
)

TLS_ABORT = Rule.define(
    "tls_abort",
    QUEUE_ID_OR_NOQUEUE("queue_id") + lit(": abort: TLS from ") + PEER("peer") + lit(": ") + REST("reason"),
    samples=[
        ("NOQUEUE: abort: TLS from unknown[203.0.113.14]: No client certificate presented",
         {"peer": "unknown[203.0.113.14]", "reason": "No client certificate presented"}),
    ],
)

#: ``log_whatsup()`` and milter replies: ``QUEUEID|NOQUEUE: action: STAGE from peer: reply...``.
ACTION = Rule.define(
    "action",
    QUEUE_ID_OR_NOQUEUE("queue_id")
    + lit(": ")
    + pp.Regex(r"[a-z][a-z_-]*")("action")
    + lit(": ")
    + pp.Word(pp.alphas + "-_")("stage")
    + lit(" from ")
    + PEER("peer")
    + lit(": ")
    + REST("detail"),
    samples=[
        ("NOQUEUE: reject: RCPT from unknown[203.0.113.12]: 554 5.7.1 <user@example.org>: Relay access"
         " denied; from=<spam@example.com> to=<user@example.org> proto=ESMTP helo=<example.com>",
         {"queue_id": "NOQUEUE", "action": "reject", "stage": "RCPT", "peer": "unknown[203.0.113.12]"}),
        ("NOQUEUE: reject: RCPT from xxxxxxx[x.x.x.x]: 550 5.1.1 <y@your.domain.here>: Recipient address"
         " rejected: User unknown; from=<> to=<y@your.domain.here> proto=ESMTP helo=<zzzzzz>",
         {"peer": "xxxxxxx[x.x.x.x]"}),
    ],
)

PIPELINING = Rule.define(
    "pipelining",
    lit("improper command pipelining after ") + pp.Word(pp.alphas + "-_")("after") + lit(" from ")
    + PEER("peer") + lit(": ") + REST("detail"),
    samples=[("improper command pipelining after EHLO from unknown[192.0.2.1]: QUIT\\r\\n",
              {"after": "EHLO"})],
)

#: Per-message lines of other shapes (``proxy-reject``, ``filter``...): known, no TLS evidence.
#: Like ``smtp.DELIVERY_NOTE`` it never takes a delivery-looking ``QUEUEID: to=`` line (smtpd
#: writes none; in the tag-less rule lists such a line is a damaged delivery, to be counted).
QUEUE_NOTE = Rule.define(
    "queue_note",
    QUEUE_ID_OR_NOQUEUE("queue_id") + lit(": ") + ~lit("to=") + REST("note"),
    samples=[("NOQUEUE: proxy-reject: END-OF-MESSAGE: 451 4.3.0 try again", {"queue_id": "NOQUEUE"})],
)

RULES = [
    CONNECT,
    DISCONNECT,
    tls.TLS_SUMMARY,
    CLIENT,
    LOST,
    TLS_ABORT,
    ACTION,
    *tls.RULES[1:],
    PIPELINING,
    EHLO_DISCARD,
    DIAGNOSTIC,
    *tls.DETAIL_RULES,  # after the common lines (none of them is a diagnostic), before peer notes
    tls.PEER_NOTE,
    QUEUE_NOTE,
]
