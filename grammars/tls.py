"""Messages of the Postfix TLS engine, shared by smtpd, smtp and tlsproxy.

The summary line (``tls_log_summary()``, Postfix >= 3.4; older per-version formats too)::

    Anonymous TLS connection established from unknown[192.0.2.1]: TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)
    Verified TLS connection established to mx.example.net[203.0.113.25]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature ECDSA (P-256) server-digest SHA256
    Trusted TLS connection reused to mx.example.net[203.0.113.25]:25: TLSv1.3 with cipher ...
    Untrusted TLS connection established from client.example[192.0.2.1] to server.example: TLSv1.3 ...   (SNI)
    TLS connection established from unknown[203.0.113.7]: TLSv1 with cipher DHE-RSA-AES256-SHA (256/256 bits)   (2.2-2.4)
    TLS connection established to mx.example.net: TLSv1 with cipher DHE-RSA-AES256-SHA (256/256 bits)         (2.2-2.4 client)

The TLS 1.3 tail is read token by token, in any order; an unknown or truncated remainder lands
in ``tail_rest`` instead of failing the line, so the TLS evidence is never lost.

Failures and other engine messages::

    SSL_accept error from unknown[203.0.113.9]: -1
    SSL_connect error to mail.example.com[192.0.2.41]:25: lost connection
    warning: TLS library problem: error:0A000102:SSL routines::unsupported protocol:ssl/statem/statem_srvr.c:1720:
    server certificate verification failed for mx.example.org[192.0.2.51]:25: num=62:hostname mismatch
    setting up TLS connection from unknown[192.0.2.1]
    mx.example.net[203.0.113.25]:25: Matched DANE EE certificate at depth 0: 3 1 1 0C72...
    Host offered STARTTLS: [mail.example.com]
    TLSRPT: status=success, domain=example.com, receiving_mx=mail.example.com[ipaddr]
"""

from __future__ import annotations

import pyparsing as pp

from .common import DIGITS, PEER, PEER_OR_HOST, REST, SP, Rule, lit

TRUST = (lit("Anonymous") | lit("Untrusted") | lit("Trusted") | lit("Verified")).set_name("trust level")
USAGE = (lit("established") | lit("reused")).set_name("usage")
DIRECTION = (lit("from") | lit("to")).set_name("direction")
PROTOCOL = pp.Word(pp.alphanums + "._-").set_name("protocol")
TOKEN = pp.CharsNotIn(" ").set_name("token")
DETAIL = pp.CharsNotIn(")").set_name("detail")
SNI = pp.Regex(r"[^\s:]+").set_name("SNI name")


def _tail_item(keyword: str, name: str, *, detail: bool) -> pp.ParserElement:
    item = lit(keyword + " ") + TOKEN(name)
    if detail:
        item = item + pp.Opt(lit(" (") + DETAIL(name + "_detail") + lit(")"))
    return item.set_name(keyword)


TLS13_TAIL = (
    pp.ZeroOrMore(
        SP
        + (
            _tail_item("key-exchange", "key_exchange", detail=True)
            | _tail_item("server-signature", "server_signature", detail=True)
            | _tail_item("server-digest", "server_digest", detail=False)
            | _tail_item("client-signature", "client_signature", detail=True)
            | _tail_item("client-digest", "client_digest", detail=False)
        )
    )
    + pp.Opt(SP + REST("tail_rest"))
).set_name("TLS 1.3 details")

TLS_SUMMARY = Rule.define(
    "tls_summary",
    pp.Opt(TRUST("trust") + SP)
    + lit("TLS connection ")
    + USAGE("usage")
    + SP
    + DIRECTION("direction")
    + SP
    + PEER_OR_HOST("peer")
    + pp.Opt(lit(" to ") + SNI("sni"))
    + lit(": ")
    + PROTOCOL("protocol")
    + lit(" with cipher ")
    + TOKEN("cipher")
    + lit(" (")
    + DIGITS("usebits")
    + lit("/")
    + DIGITS("algbits")
    + lit(" bits)")
    + TLS13_TAIL,
    samples=[
        (
            "Anonymous TLS connection established from unknown[192.168.1.115]: TLSv1.3 with cipher"
            " TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature ECDSA (P-256)"
            " server-digest SHA256",
            {"trust": "Anonymous", "usage": "established", "direction": "from",
             "peer": "unknown[192.168.1.115]", "protocol": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384",
             "usebits": "256", "algbits": "256", "key_exchange": "X25519", "server_signature": "ECDSA",
             "server_signature_detail": "P-256", "server_digest": "SHA256", "tail_rest": None},
        ),
        (
            "Verified TLS connection established to mx2.comcast.net[2001:558:fe21:2a::6]:25: TLSv1.2"
            " with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)",
            {"trust": "Verified", "direction": "to", "peer": "mx2.comcast.net[2001:558:fe21:2a::6]:25",
             "protocol": "TLSv1.2", "key_exchange": None},
        ),
        (
            "Untrusted TLS connection established from client.example[192.0.2.1] to server.example:"
            " TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519"
            " server-signature RSA-PSS (2048 bits) server-digest SHA256 client-signature ECDSA (P-256)"
            " client-digest SHA256",
            {"peer": "client.example[192.0.2.1]", "sni": "server.example", "client_signature": "ECDSA",
             "client_signature_detail": "P-256", "client_digest": "SHA256"},
        ),
        (
            "TLS connection established to mx.example.net: TLSv1 with cipher DHE-RSA-AES256-SHA"
            " (256/256 bits)",
            {"trust": None, "peer": "mx.example.net", "protocol": "TLSv1"},
        ),
        (
            "Trusted TLS connection reused to 127.0.0.1[127.0.0.1]:20035: TLSv1.3 with cipher"
            " TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519",
            {"usage": "reused", "key_exchange": "X25519"},
        ),
        (
            "Untrusted TLS connection established to old.example.com[192.0.2.11]:25: TLSv1 with cipher"
            " DES-CBC3-SHA (112/168 bits)",
            {"usebits": "112", "algbits": "168"},
        ),
        (
            "Anonymous TLS connection established from peer.example[192.0.2.30]: TLSv1.3 with cipher"
            " TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange ECDHE (P-256) server-signature ECDSA"
            " (P-256 raw public key) server-digest SHA256",
            {"key_exchange": "ECDHE", "key_exchange_detail": "P-256",
             "server_signature_detail": "P-256 raw public key"},
        ),
        (
            # cut by a relay inside the TLS 1.3 tail: still TLS evidence
            "Anonymous TLS connection established from unknown[192.0.2.1]: TLSv1.3 with cipher"
            " TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signa",
            {"key_exchange": "X25519", "tail_rest": "server-signa"},
        ),
    ],
)

SSL_ERROR = Rule.define(
    "ssl_error",
    lit("SSL_")
    + (lit("accept") | lit("connect"))("operation")
    + lit(" error ")
    + DIRECTION("direction")
    + SP
    + PEER_OR_HOST("peer")
    + lit(": ")
    + REST("error"),
    samples=[
        ("SSL_accept error from unknown[203.0.113.9]: -1",
         {"operation": "accept", "direction": "from", "peer": "unknown[203.0.113.9]", "error": "-1"}),
        ("SSL_connect error to mail.example.org[112.63.65.2]:25: lost connection",
         {"operation": "connect", "peer": "mail.example.org[112.63.65.2]:25", "error": "lost connection"}),
        ("SSL_connect error to mail.example.com: 0", {"peer": "mail.example.com", "error": "0"}),
    ],
)

TLS_LIBRARY_PROBLEM = Rule.define(
    "tls_library_problem",
    lit("warning: TLS library problem: ") + REST("error"),
    samples=[
        (
            "warning: TLS library problem: error:0A000412:SSL routines::sslv3 alert bad certificate:"
            "../ssl/record/rec_layer_s3.c:1584:SSL alert number 42:",
            {"error": "error:0A000412:SSL routines::sslv3 alert bad certificate:"
                      "../ssl/record/rec_layer_s3.c:1584:SSL alert number 42:"},
        ),
    ],
)

CERT_VERIFY_FAILED = Rule.define(
    "cert_verify_failed",
    pp.Opt((lit("server") | lit("client") | lit("CA"))("cert_role") + SP)
    + lit("certificate verification failed for ")
    + PEER("peer")
    + lit(": ")
    + REST("reason"),
    samples=[
        ("certificate verification failed for mail.example.com[113.169.17.115]:25: self-signed certificate.",
         {"cert_role": None, "peer": "mail.example.com[113.169.17.115]:25", "reason": "self-signed certificate."}),
        ("server certificate verification failed for mx.example.org[192.0.2.51]:25: num=62:hostname mismatch",
         {"cert_role": "server", "reason": "num=62:hostname mismatch"}),
    ],
)

SETTING_UP = Rule.define(
    "tls_setup",
    lit("setting up TLS connection ") + DIRECTION("direction") + SP + PEER_OR_HOST("peer"),
    samples=[("setting up TLS connection from unknown[IP]", {"direction": "from", "peer": "unknown[IP]"})],
)

ENGINE_INIT = Rule.define(
    "tls_engine_init",
    lit("initializing the ") + (lit("server") | lit("client"))("side") + lit("-side TLS engine"),
    samples=[("initializing the server-side TLS engine", {"side": "server"})],
)

STARTTLS_OFFERED = Rule.define(
    "starttls_offered",
    lit("Host offered STARTTLS: [") + pp.CharsNotIn("]")("host") + lit("]"),
    samples=[("Host offered STARTTLS: [mail.example.com]", {"host": "mail.example.com"})],
)

TLSRPT = Rule.define(
    "tlsrpt",
    lit("TLSRPT: status=") + pp.Word(pp.alphas)("status") + pp.Opt(lit(", ") + REST("detail")),
    samples=[("TLSRPT: status=success, domain=example.com, receiving_mx=mail.example.com[ipaddr]",
              {"status": "success"})],
)

TLS_SNI = Rule.define(
    "tls_sni",
    lit("TLS SNI ") + REST("detail"),
    samples=[("TLS SNI mail.example from unknown[192.0.2.1] not matched, using default chain", {})],
)

#: ``peer: text`` lines of the TLS library at higher log levels (certificate matches, cipher
#: lists, session reuse notes) and old peer-certificate summaries. Known, carry no verdict.
PEER_NOTE = Rule.define(
    "peer_note",
    PEER("peer") + lit(": ") + REST("note"),
    samples=[
        ("mx.example.net[203.0.113.25]:25: Matched DANE EE certificate at depth 0: 3 1 1 0C72AC70",
         {"peer": "mx.example.net[203.0.113.25]:25"}),
        ("mail.example.org[ipaddr]:25: re-using session with untrusted peer credential, look for details"
         " earlier in the log", {"peer": "mail.example.org[ipaddr]:25"}),
        ("client.example[192.0.2.20]: Untrusted: subject_CN=client.example, issuer=Example CA",
         {"note": "Untrusted: subject_CN=client.example, issuer=Example CA"}),
    ],
)

#: Rules every TLS-speaking program shares, most specific first.
RULES = [
    TLS_SUMMARY,
    SSL_ERROR,
    TLS_LIBRARY_PROBLEM,
    CERT_VERIFY_FAILED,
    SETTING_UP,
    ENGINE_INIT,
    STARTTLS_OFFERED,
    TLSRPT,
    TLS_SNI,
]
