"""Messages of ``postfix/tlsproxy`` (2.8+ server role for postscreen, 3.4+ client role for smtp).

tlsproxy serves many clients per process, so its lines are keyed by ``[addr]:port``, not pid::

    CONNECT from [192.0.2.7]:51234
    CONNECT to [203.0.113.25]:25
    Anonymous TLS connection established from [192.0.2.7]:51234: TLSv1.3 with cipher ...
    TLS handshake failed for service=smtpd peer=[192.0.2.8]:40000
    DISCONNECT [192.0.2.7]:51234

With ``smtp_tls_loglevel`` (client role) or ``tlsproxy_tls_loglevel`` (server role) 2 to 4 it
writes the same TLS library detail as smtp and smtpd (``grammars.tls.DETAIL_RULES``)::

    setting up TLS connection to 127.0.0.1[127.0.0.1]:36035
    looking for session smtp&[127.0.0.1]:36035&127.0.0.1&127.0.0.1&&5D0E7C in smtp cache
    SSL_connect:SSLv3/TLS read server session ticket
    127.0.0.1[127.0.0.1]:36035: Reusing old session
"""

from __future__ import annotations

import pyparsing as pp

from . import tls
from .common import DIAGNOSTIC, PEER, Rule, lit

PROXY_CONNECT = Rule.define(
    "proxy_connect",
    lit("CONNECT ") + tls.DIRECTION("direction") + lit(" ") + PEER("peer"),
    samples=[
        ("CONNECT from [82.118.17.142]:51637", {"direction": "from", "peer": "[82.118.17.142]:51637"}),
        ("CONNECT to [203.0.113.25]:25", {"direction": "to"}),
    ],
)

PROXY_DISCONNECT = Rule.define(
    "proxy_disconnect",
    lit("DISCONNECT ") + PEER("peer"),
    samples=[("DISCONNECT [82.118.17.142]:51637", {"peer": "[82.118.17.142]:51637"})],
)

HANDSHAKE_FAILED = Rule.define(
    "proxy_handshake_failed",
    lit("TLS handshake failed for service=") + pp.CharsNotIn(" ")("service") + lit(" peer=") + PEER("peer"),
    samples=[("TLS handshake failed for service=smtpd peer=[192.0.2.8]:40000",
              {"service": "smtpd", "peer": "[192.0.2.8]:40000"})],
)

RULES = [
    PROXY_CONNECT,
    PROXY_DISCONNECT,
    *tls.RULES,
    HANDSHAKE_FAILED,
    DIAGNOSTIC,
    *tls.DETAIL_RULES,
    tls.PEER_NOTE,
]
