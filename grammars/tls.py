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
    certificate verification failed for smtp.gmail.com: num=20:unable to get local issuer certificate   (2.3-2.4 client)
    mx.example.net[203.0.113.25]:25: Matched DANE EE certificate at depth 0: 3 1 1 0C72...
    Host offered STARTTLS: [mail.example.com]
    TLSRPT: status=success, domain=example.com, receiving_mx=mail.example.com[ipaddr]

TLS log level 2 (``smtpd_tls_loglevel``/``smtp_tls_loglevel``): engine set-up, OpenSSL handshake
states and alerts, the peer's certificate chain, session cache and ticket operations (rule name,
then the line)::

    tls_engine_init      initializing the server-side TLS engine
    tls_setup            setting up TLS connection from unknown[127.0.0.1]
    tls_cipher_list      unknown[127.0.0.1]: TLS cipher list "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH"
    tls_state            SSL_accept:before SSL initialization
    tls_state            SSL_connect:SSLv3/TLS write client hello
    tls_state            SSL_accept:error in error
    tls_alert            SSL3 alert write:fatal:handshake failure
    tls_cert_name        subject=/CN=client.test
    tls_cert_name        issuer=/CN=Harness Test CA
    tls_verify_depth     127.0.0.1[127.0.0.1]:20035: depth=0 verify=1 subject=/CN=mx.local.test
    tls_peer_cert        unknown[127.0.0.1]: subject_CN=client.test, issuer=Harness Test CA, fingerprint=D3:58:..., pkey_fingerprint=DF:C1:...
    tls_session_cache    unknown[127.0.0.1]: save session 9C1F...&s=127.0.0.1:25&l=805306672 to smtpd cache
    tls_session_cache    looking for session smtp&[127.0.0.1]:36035&127.0.0.1&127.0.0.1&&5D0E7C in smtp cache
    tls_session_ticket   unknown[127.0.0.1]: Issuing session ticket, key expiration: 1796168053
    tls_session_reused   unknown[127.0.0.1]: Reusing old session (RFC 5077 session ticket)
    tls_cert_match       mx.example.net[192.0.2.25]:25 Matched CommonName mx.example.net        (2.9-3.5)

Level 3 adds a hex/ASCII dump of the handshake, level 4 of everything after STARTTLS plus the
first 40 characters of each plaintext read and write::

    tls_bio              read from 56419D1FEA60 [56419D21AB83] (5 bytes => 5 (0x5))
    tls_bio              read from 56419D1FEA60 [56419D21AB83] (5 bytes => -1)
    tls_hex_dump         0000 16 03 01 02                                      ....
    tls_hex_dump_padding 0004 - <SPACES/NULLS>
    tls_stream_data      Read 27 chars: EHLO s9-00001.client.test??

These are `DETAIL_RULES` (`DETAIL_NAMES`): recognised, so never unparsed, but none of them
carries a verdict on the connection.
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
    + PEER_OR_HOST("peer")
    + lit(": ")
    + REST("reason"),
    samples=[
        ("certificate verification failed for mail.example.com[113.169.17.115]:25: self-signed certificate.",
         {"cert_role": None, "peer": "mail.example.com[113.169.17.115]:25", "reason": "self-signed certificate."}),
        ("server certificate verification failed for mx.example.org[192.0.2.51]:25: num=62:hostname mismatch",
         {"cert_role": "server", "reason": "num=62:hostname mismatch"}),
        ("certificate verification failed for [2001:db8::25]:25: self-signed certificate",
         {"peer": "[2001:db8::25]:25", "reason": "self-signed certificate"}),
        # Postfix 2.3-2.4 clients name the server by its bare host name (no [addr]:port)
        ("certificate verification failed for smtp.gmail.com: num=20:unable to get local issuer certificate",
         {"cert_role": None, "peer": "smtp.gmail.com", "reason": "num=20:unable to get local issuer certificate"}),
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

#: Postfix 3.10+ with TLSRPT support, one line per new TLS connection (``tlsrpt_wrapper.c``):
#: the policy domain, the server (no port), and for a failure its type in underscore form
#: (``starttls_not_supported``, ``validation_failure``...; `tlslog.tlsrpt` maps them to RFC 8460).
TLSRPT = Rule.define(
    "tlsrpt",
    lit("TLSRPT: status=") + pp.Word(pp.alphas)("status") + lit(", domain=") + pp.CharsNotIn(",")("domain")
    + lit(", receiving_mx=") + pp.Opt(pp.CharsNotIn("[,")("mx_name")) + lit("[") + pp.CharsNotIn("]")("mx_addr")
    + lit("]") + pp.Opt(lit(", failure_type=") + pp.CharsNotIn(",")("failure_type"))
    + pp.Opt(lit(", failure_reason=") + REST("failure_reason")),
    samples=[("TLSRPT: status=success, domain=example.com, receiving_mx=mail.example.com[ipaddr]",
              {"status": "success", "domain": "example.com", "mx_name": "mail.example.com", "mx_addr": "ipaddr",
               "failure_type": None}),
             ("TLSRPT: status=failure, domain=example.net, receiving_mx=mail.example.net[192.0.2.1], "
              "failure_type=validation_failure, failure_reason=self-signed_certificate",
              {"status": "failure", "failure_type": "validation_failure",
               "failure_reason": "self-signed_certificate"})],
)

#: A TLSRPT line of another shape (a later Postfix): recognised, not counted.
TLSRPT_NOTE = Rule.define(
    "tlsrpt_note",
    lit("TLSRPT: ") + REST("detail"),
    samples=[("TLSRPT: status=maybe, domain=example.com", {"detail": "status=maybe, domain=example.com"})],
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

# -- TLS log level 2-4 detail: handshake progress, session cache, packet dumps ---------------
#
# Written by the TLS library in smtpd, smtp and tlsproxy (``tls_misc.c``, ``tls_server.c``,
# ``tls_client.c``, ``tls_verify.c``, ``tls_stream.c``). None of them says how a connection
# ended: the summary, failure and verification lines above do. See `DETAIL_RULES`.

#: ``tls_info_callback()``: ``msg_info("%s:%s", str, SSL_state_string_long(s))`` per handshake
#: step, ``"%s:failed in %s"`` (``ret == 0``) and ``"%s:error in %s"`` (``ret < 0``) at its exit;
#: ``str`` is ``SSL_accept``, ``SSL_connect`` or ``unknown``. State names are OpenSSL's:
#: ``SSLv3/TLS read client hello`` (1.1+), ``SSLv3 read client hello A`` (1.0), ``error``.
HANDSHAKE_STATE = Rule.define(
    "tls_state",
    (lit("SSL_") + (lit("accept") | lit("connect"))("operation") | lit("unknown"))
    + lit(":")
    + pp.Opt((lit("error") | lit("failed"))("outcome") + lit(" in "))
    + REST("state"),
    samples=[
        ("SSL_accept:before SSL initialization",
         {"operation": "accept", "outcome": None, "state": "before SSL initialization"}),
        ("SSL_accept:SSLv3/TLS read client hello", {"state": "SSLv3/TLS read client hello"}),
        ("SSL_accept:TLSv1.3 early data", {"state": "TLSv1.3 early data"}),
        ("SSL_connect:SSLv3/TLS write client hello",
         {"operation": "connect", "state": "SSLv3/TLS write client hello"}),
        ("SSL_connect:SSL negotiation finished successfully", {"state": "SSL negotiation finished successfully"}),
        ("SSL_accept:error in error", {"operation": "accept", "outcome": "error", "state": "error"}),
        ("SSL_connect:error in SSLv3/TLS read server hello",
         {"outcome": "error", "state": "SSLv3/TLS read server hello"}),
        ("SSL_accept:failed in SSLv3 read client certificate A",
         {"outcome": "failed", "state": "SSLv3 read client certificate A"}),
        ("SSL_accept:before/accept initialization", {"state": "before/accept initialization"}),
        ("unknown:SSL negotiation finished successfully", {"operation": None}),
    ],
)

#: ``"SSL3 alert %s:%s:%s"``: read or write, ``SSL_alert_type_string_long()`` (``warning``,
#: ``fatal``), ``SSL_alert_desc_string_long()``. A close-notify alert is never logged.
ALERT = Rule.define(
    "tls_alert",
    lit("SSL3 alert ")
    + (lit("read") | lit("write"))("io")
    + lit(":")
    + pp.CharsNotIn(":")("level")
    + lit(":")
    + REST("description"),
    samples=[
        ("SSL3 alert write:fatal:handshake failure",
         {"io": "write", "level": "fatal", "description": "handshake failure"}),
        ("SSL3 alert read:fatal:internal error", {"io": "read", "description": "internal error"}),
        ("SSL3 alert write:fatal:protocol version", {"description": "protocol version"}),
        ("SSL3 alert read:warning:user canceled", {"level": "warning", "description": "user canceled"}),
    ],
)

#: The server's view of a client certificate, without the peer (``tls_server.c``, verbose):
#: ``msg_info("subject=%s", ...)`` then ``msg_info("issuer=%s", ...)``, ``X509_NAME_oneline`` form.
CERT_NAME = Rule.define(
    "tls_cert_name",
    (lit("subject") | lit("issuer"))("which") + lit("=") + REST("dn"),
    samples=[
        ("subject=/CN=client.test", {"which": "subject", "dn": "/CN=client.test"}),
        ("issuer=/CN=Harness Test CA", {"which": "issuer", "dn": "/CN=Harness Test CA"}),
        ("issuer=/C=US/O=Example Corp/CN=Example Internal CA", {"dn": "/C=US/O=Example Corp/CN=Example Internal CA"}),
    ],
)

#: ``tls_verify_certificate()``, one line per certificate of the chain (``tls_verify.c``):
#: ``"%s: depth=%d verify=%d subject=%s"`` (2.11+), ``"%s: certificate verification depth=%d
#: verify=%d subject=%s"`` (2.5-2.10), ``"certificate verification depth=%d subject=%s"`` (2.3-2.4,
#: no peer), and 3.9+ ``"%s: depth=%d verify=%d"`` (no certificate) / ``"%s: verify=%d raw public key"``.
#: ``verify`` is OpenSSL's preverify result, not the verdict: that is the summary's trust word.
VERIFY_DEPTH = Rule.define(
    "tls_verify_depth",
    pp.Opt(PEER("peer") + lit(": "))
    + pp.Opt(lit("certificate verification "))
    + pp.FollowedBy(lit("depth=") | lit("verify="))
    + pp.Opt(lit("depth=") + DIGITS("depth") + SP)
    + pp.Opt(lit("verify=") + DIGITS("verify") + pp.Opt(SP))
    + pp.Opt(lit("subject=") + REST("subject") | lit("raw public key")("raw_public_key")),
    samples=[
        ("127.0.0.1[127.0.0.1]:20035: depth=0 verify=1 subject=/CN=mx.local.test",
         {"peer": "127.0.0.1[127.0.0.1]:20035", "depth": "0", "verify": "1", "subject": "/CN=mx.local.test"}),
        ("unknown[127.0.0.1]: depth=1 verify=1 subject=/CN=Harness Test CA",
         {"peer": "unknown[127.0.0.1]", "depth": "1", "subject": "/CN=Harness Test CA"}),
        ("unknown[127.0.0.1]: depth=0 verify=0 subject=/CN=rogue-client.test", {"verify": "0"}),
        ("mx.example.net[192.0.2.25]:25: certificate verification depth=0 verify=1 subject=/CN=mx.example.net",
         {"peer": "mx.example.net[192.0.2.25]:25", "depth": "0", "verify": "1"}),
        ("certificate verification depth=0 subject=/CN=smtp.gmail.com",
         {"peer": None, "depth": "0", "verify": None, "subject": "/CN=smtp.gmail.com"}),
        ("mx.example.net[192.0.2.25]:25: depth=0 verify=1", {"depth": "0", "verify": "1", "subject": None}),
        ("mx.example.net[192.0.2.25]:25: verify=1 raw public key",
         {"depth": None, "verify": "1", "raw_public_key": "raw public key"}),
    ],
)

#: ``"%s: TLS cipher list \"%s\""`` (``tls_server.c``, ``tls_client.c``, verbose).
CIPHER_LIST = Rule.define(
    "tls_cipher_list",
    PEER("peer") + lit(': TLS cipher list "') + pp.Regex(r'[^"]*')("cipher_list") + lit('"'),
    samples=[
        ('unknown[127.0.0.1]: TLS cipher list "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH"',
         {"peer": "unknown[127.0.0.1]", "cipher_list": "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH"}),
        ('127.0.0.1[127.0.0.1]:20035: TLS cipher list "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH:!aNULL"',
         {"peer": "127.0.0.1[127.0.0.1]:20035"}),
        ('snt004-omc1s40.hotmail.com[65.54.61.77]: TLS cipher list "aNULL:-aNULL:ALL:+RC4:@STRENGTH"',
         {"cipher_list": "aNULL:-aNULL:ALL:+RC4:@STRENGTH"}),
    ],
)

#: Value of a peer-certificate item: runs over commas unless the next item starts.
_CERT_VALUE = pp.Regex(
    r"[^,]*(?:,(?! (?:issuer(?:_CN)?=|(?:cert |pkey[_ ])?fingerprint[= ]))[^,]*)*"
).set_name("certificate name")
_FINGERPRINT = pp.Regex(r"[^,\s]+").set_name("fingerprint")

#: The peer certificate summary (verbose/peercert): server ``"%s: subject_CN=%s, issuer=%s,
#: fingerprint=%s, pkey_fingerprint=%s"``, client ``"%s: subject_CN=%s, issuer_CN=%s, ..."``
#: (2.9-3.8; 2.9 client ``fingerprint %s``), 3.9+ ``"%s: subject_CN=%s, issuer=%s, cert
#: fingerprint=%s, pkey fingerprint=%s"``. The <= 2.8 form with a trust word before
#: ``subject_CN`` (``Untrusted: subject_CN=...``) stays a `PEER_NOTE`.
PEER_CERT = Rule.define(
    "tls_peer_cert",
    PEER("peer")
    + lit(": subject_CN=")
    + _CERT_VALUE("subject_cn")
    + lit(", ")
    + (lit("issuer_CN=") | lit("issuer="))
    + _CERT_VALUE("issuer_cn")
    + pp.Opt(lit(", ") + (lit("cert fingerprint=") | lit("fingerprint=") | lit("fingerprint "))
             + _FINGERPRINT("fingerprint"))
    + pp.Opt(lit(", ") + (lit("pkey_fingerprint=") | lit("pkey fingerprint=")) + _FINGERPRINT("pkey_fingerprint")),
    samples=[
        ("unknown[127.0.0.1]: subject_CN=client.test, issuer=Harness Test CA, fingerprint=D3:58:B5:49:"
         "D8:78:E4:73:15:67:4C:31:01:D3:BF:87:FB:32:40:D5:18:62:C6:B3:B2:F1:75:1B:08:CF:80:64,"
         " pkey_fingerprint=DF:C1:8C:62:74:29:CD:0D:03:6C:38:F5:EA:21:B8:C1:03:B2:CA:FF:BF:2B:8F:31:5C:2D:"
         "E1:AB:7D:9E:A8:10",
         {"peer": "unknown[127.0.0.1]", "subject_cn": "client.test", "issuer_cn": "Harness Test CA",
          "fingerprint": "D3:58:B5:49:D8:78:E4:73:15:67:4C:31:01:D3:BF:87:FB:32:40:D5:18:62:C6:B3:B2:F1:75:1B:"
                         "08:CF:80:64"}),
        ("127.0.0.1[127.0.0.1]:20035: subject_CN=mx.local.test, issuer_CN=Harness Test CA,"
         " fingerprint=11:22:33, pkey_fingerprint=AA:BB:CC",
         {"peer": "127.0.0.1[127.0.0.1]:20035", "subject_cn": "mx.local.test", "pkey_fingerprint": "AA:BB:CC"}),
        ("mx.example.net[192.0.2.25]:25: subject_CN=mx.example.net, issuer=Example CA, cert"
         " fingerprint=11:22:33, pkey fingerprint=AA:BB:CC",
         {"fingerprint": "11:22:33", "pkey_fingerprint": "AA:BB:CC"}),
        ("mx.example.net[192.0.2.25]:25: subject_CN=mx.example.net, issuer_CN=Example CA,"
         " fingerprint 11:22:33, pkey_fingerprint=AA:BB:CC", {"fingerprint": "11:22:33"}),
        ("unknown[192.0.2.1]: subject_CN=Doe, John, issuer=Example, Inc. CA",
         {"subject_cn": "Doe, John", "issuer_cn": "Example, Inc. CA", "fingerprint": None}),
    ],
)

#: Session cache lookups (TLS_LOG_CACHE). Server, keyed by session id + ``&s=service&l=version``:
#: ``"%s: looking up session %s in %s cache"``, ``"%s: reloaded session %s from %s cache"``,
#: ``"%s: save session %s to %s cache"``, ``"%s: remove session %s from %s cache"`` (2.3-2.4
#: without the peer). Client, keyed by the server id, with no peer: ``"looking for session %s in
#: %s cache"``, ``"reloaded session %s from %s cache"``, ``"save session %s to %s cache"``,
#: ``"remove session %s from client cache"``.
SESSION_CACHE = Rule.define(
    "tls_session_cache",
    pp.Opt(PEER("peer") + lit(": "))
    + (lit("looking up") | lit("looking for") | lit("reloaded") | lit("save") | lit("remove"))("cache_action")
    + lit(" session ")
    + TOKEN("session_id")
    + (lit(" in ") | lit(" from ") | lit(" to "))
    + TOKEN("cache_type")
    + lit(" cache"),
    samples=[
        ("unknown[127.0.0.1]: save session 9C1F0E6A2B&s=127.0.0.1:36025&l=805306672 to smtpd cache",
         {"peer": "unknown[127.0.0.1]", "cache_action": "save",
          "session_id": "9C1F0E6A2B&s=127.0.0.1:36025&l=805306672", "cache_type": "smtpd"}),
        ("unknown[127.0.0.1]: looking up session 9C1F0E6A2B&s=127.0.0.1:36035&l=805306672 in smtpd cache",
         {"cache_action": "looking up"}),
        ("unknown[::1]: reloaded session 9C1F0E6A2B&s=[::1]:36035&l=805306672 from smtpd cache",
         {"peer": "unknown[::1]", "cache_action": "reloaded", "session_id": "9C1F0E6A2B&s=[::1]:36035&l=805306672"}),
        ("looking for session smtp&[127.0.0.1]:36035&127.0.0.1&127.0.0.1&&5D0E7C in smtp cache",
         {"peer": None, "cache_action": "looking for",
          "session_id": "smtp&[127.0.0.1]:36035&127.0.0.1&127.0.0.1&&5D0E7C", "cache_type": "smtp"}),
        ("save session smtp-nocert&[127.0.0.1]:36035&127.0.0.1&127.0.0.1&&5D0E7C to smtp cache",
         {"cache_action": "save"}),
        ("remove session smtp:192.0.2.25:25:mx.example.net from client cache",
         {"cache_action": "remove", "cache_type": "client"}),
        ("unknown[192.0.2.1]: remove session 9C1F0E6A2B&s=smtpd from smtpd cache", {"cache_action": "remove"}),
    ],
)

#: RFC 5077 session tickets (server): ``"%s: Issuing session ticket, key expiration: %ld"`` and
#: ``"%s: Decrypting session ticket, key expiration: %ld"``.
SESSION_TICKET = Rule.define(
    "tls_session_ticket",
    PEER("peer")
    + lit(": ")
    + (lit("Issuing") | lit("Decrypting"))("ticket_action")
    + lit(" session ticket, key expiration: ")
    + DIGITS("key_expiration"),
    samples=[
        ("unknown[127.0.0.1]: Issuing session ticket, key expiration: 1796168053",
         {"peer": "unknown[127.0.0.1]", "ticket_action": "Issuing", "key_expiration": "1796168053"}),
        ("unknown[::1]: Decrypting session ticket, key expiration: 1796168053", {"ticket_action": "Decrypting"}),
    ],
)

#: TLS session resumption (not connection reuse: that is ``TLS connection reused``):
#: ``"%s: Reusing old session"`` (client), ``"%s: Reusing old session%s"`` (server, with
#: `` (RFC 5077 session ticket)``), ``"Reusing old session"`` (2.3-2.4, no peer).
SESSION_REUSED = Rule.define(
    "tls_session_reused",
    pp.Opt(PEER("peer") + lit(": "))
    + lit("Reusing old session")
    + pp.Opt(lit(" (") + pp.CharsNotIn(")")("resumed_by") + lit(")")),
    samples=[
        ("127.0.0.1[127.0.0.1]:36035: Reusing old session", {"peer": "127.0.0.1[127.0.0.1]:36035", "resumed_by": None}),
        ("unknown[127.0.0.1]: Reusing old session (RFC 5077 session ticket)",
         {"peer": "unknown[127.0.0.1]", "resumed_by": "RFC 5077 session ticket"}),
        ("Reusing old session", {"peer": None}),
    ],
)

#: ``tls_bio_dump_cb()`` (level 3+): ``"read from %08lX [%08lX] (%ld bytes => %ld (0x%lX))"`` and
#: ``write to ...``: the BIO, the buffer, the bytes asked for and the result; with OpenSSL 3 a
#: result <= 0 is written without the hex copy: ``(5 bytes => -1)``.
BIO_DUMP = Rule.define(
    "tls_bio",
    (lit("read") | lit("write"))("io")
    + (lit(" from ") | lit(" to "))
    + pp.Word(pp.hexnums)("bio")
    + lit(" [")
    + pp.Word(pp.hexnums)("buffer")
    + lit("] (")
    + DIGITS("requested")
    + lit(" bytes => ")
    + pp.Regex(r"-?[0-9]+")("result")
    + pp.Opt(lit(" (0x") + pp.Word(pp.hexnums)("result_hex") + lit(")"))
    + lit(")"),
    samples=[
        ("read from 56419D1FEA60 [56419D21AB83] (5 bytes => 5 (0x5))",
         {"io": "read", "bio": "56419D1FEA60", "buffer": "56419D21AB83", "requested": "5", "result": "5",
          "result_hex": "5"}),
        ("read from 56419D1FEA60 [56419D21AB83] (5 bytes => -1)", {"result": "-1", "result_hex": None}),
        ("write to 56419D1FEA60 [56419D223D60] (2249 bytes => 2249 (0x8C9))",
         {"io": "write", "requested": "2249", "result_hex": "8C9"}),
        ("read from 7F04A4A693C0 [7F04A4A6F45D] (71 bytes => -1 (0xFFFFFFFFFFFFFFFF))",
         {"result": "-1", "result_hex": "FFFFFFFFFFFFFFFF"}),
        ("read from 55D2A3D0 [55D2A7B0] (5 bytes => 5 (0x5))", {"bio": "55D2A3D0"}),
    ],
)


def _hex_area() -> str:
    """``tls_dump_buffer()`` writes 16 columns of 3 characters: ``%02x`` and a space (``|``
    after the 8th byte) per byte, three spaces per column past the end of the data."""
    rows = []
    for n in range(16, 0, -1):
        if n > 8:
            present = rf"(?:[0-9a-f]{{2}} ){{7}}[0-9a-f]{{2}}\|(?:[0-9a-f]{{2}} ){{{n - 8}}}"
        elif n == 8:
            present = r"(?:[0-9a-f]{2} ){7}[0-9a-f]{2}\|"
        else:
            present = rf"(?:[0-9a-f]{{2}} ){{{n}}}"
        rows.append(present + (f"(?: {{3}}){{{16 - n}}}" if n < 16 else ""))
    return "(?:" + "|".join(rows) + ")"


#: ``tls_dump_buffer()`` (level 3: the handshake, level 4: everything): ``"%04lx "``, the hex
#: columns, a space, then the bytes as ASCII (``.`` for unprintable, a space after the 8th):
#: ``0000 16 03 01 02 00 01 00 01|fc 03 03 54 15 49 ab 09  ........ ..T.I..``.
HEX_DUMP = Rule.define(
    "tls_hex_dump",
    pp.Regex(r"[0-9a-f]{4,}")("offset") + SP + pp.Regex(_hex_area())("hex") + SP + REST("ascii"),
    samples=[
        ("0000 01 00 01 fc 03 03 54 15|49 ab 09 22 90 5f 28 3e  ......T. I..\"._(>",
         {"offset": "0000", "hex": "01 00 01 fc 03 03 54 15|49 ab 09 22 90 5f 28 3e ",
          "ascii": "......T. I..\"._(>"}),
        ("0000 16 03 01 02                                      ....",
         {"offset": "0000", "hex": "16 03 01 02" + " " * 37, "ascii": "...."}),
        ("0120 2a b7 a6 7f 00 15 00 d8|                         *....... ", {"offset": "0120", "ascii": "*....... "}),
        ("0000 16 03 03 00 7c 01 00 00|78 03 03                 ....|... x..", {"ascii": "....|... x.."}),
        ("0020 be 34 c5 40 2d 4c 20 4d|c0 1f 6a 8f a4 5e 99 16  .4.@-L M ..j..^..",
         {"ascii": ".4.@-L M ..j..^.."}),
        ("10000 20 20 20 41 42 43 44 45|46 47 48 49 4a 4b 4c 4d     ABCDE FGHIJKLM",
         {"offset": "10000", "ascii": "   ABCDE FGHIJKLM"}),
    ],
)

#: The end of a dump whose last bytes were all spaces or NULs: ``"%04lx - <SPACES/NULLS>"``.
HEX_DUMP_PADDING = Rule.define(
    "tls_hex_dump_padding",
    pp.Regex(r"[0-9a-f]{4,}")("offset") + lit(" - <SPACES/NULLS>"),
    samples=[("0004 - <SPACES/NULLS>", {"offset": "0004"}), ("0128 - <SPACES/NULLS>", {"offset": "0128"})],
)

#: ``tls_stream.c`` (level 4): the first 40 characters of every plaintext read or write after
#: STARTTLS, ``"Read %ld chars: %.*s"`` / ``"Write %ld chars: %.*s"`` (CR LF logged as ``??``).
STREAM_DATA = Rule.define(
    "tls_stream_data",
    (lit("Read") | lit("Write"))("io") + SP + DIGITS("length") + lit(" chars: ") + REST("data"),
    samples=[
        ("Read 27 chars: EHLO s9-00001.client.test??", {"io": "Read", "length": "27", "data": "EHLO s9-00001.client.test??"}),
        ("Write 150 chars: 250-mx.local.test??250-PIPELINING??250-S", {"io": "Write", "length": "150"}),
        ("Read 5 chars: ", {"data": ""}),
    ],
)

#: Older client certificate matching (verbose), the peer then a space (no colon): 2.9-3.5
#: ``"%s %sCommonName %s"`` (``Matched `` when it matched) and 2.5-2.8 ``"%s %s%s fingerprint %s"``
#: (``Matched ``, digest name). 3.6 dropped both (``matched peername`` is a `PEER_NOTE`).
CERT_MATCH_OLD = Rule.define(
    "tls_cert_match",
    PEER("peer")
    + SP
    + pp.Opt(lit("Matched")("matched") + SP)
    + (lit("CommonName ") + REST("common_name") | TOKEN("digest") + lit(" fingerprint ") + REST("fingerprint")),
    samples=[
        ("mx.example.net[192.0.2.25]:25 Matched CommonName mx.example.net",
         {"peer": "mx.example.net[192.0.2.25]:25", "matched": "Matched", "common_name": "mx.example.net"}),
        ("mx.example.net[192.0.2.25]:25 CommonName mail.example.net", {"matched": None, "common_name": "mail.example.net"}),
        ("mx.example.net[192.0.2.25]:25 Matched md5 fingerprint 3F:1A:2B:4C",
         {"matched": "Matched", "digest": "md5", "fingerprint": "3F:1A:2B:4C"}),
    ],
)

#: Rules every TLS-speaking program shares, most specific first.
RULES = [
    TLS_SUMMARY,
    SSL_ERROR,
    TLS_LIBRARY_PROBLEM,
    CERT_VERIFY_FAILED,
    STARTTLS_OFFERED,
    TLSRPT,
    TLSRPT_NOTE,
    TLS_SNI,
]

#: TLS log level 2-4 detail: recognised (never unparsed), but no line of these rules says how a
#: connection ended or how much it can be trusted, so a reader may skip them. smtpd, smtp,
#: tlsproxy (and the tag-less rule lists) try them after `RULES` and before `PEER_NOTE`.
#: ``setting up TLS connection`` and ``initializing the ... TLS engine`` are level 2 from 2.9 on.
DETAIL_RULES = [
    SETTING_UP,
    ENGINE_INIT,
    HANDSHAKE_STATE,
    ALERT,
    CERT_NAME,
    VERIFY_DEPTH,
    CIPHER_LIST,
    PEER_CERT,
    SESSION_CACHE,
    SESSION_TICKET,
    SESSION_REUSED,
    BIO_DUMP,
    HEX_DUMP,
    HEX_DUMP_PADDING,
    STREAM_DATA,
    CERT_MATCH_OLD,
]
#: The names of `DETAIL_RULES`.
DETAIL_NAMES = frozenset(rule.name for rule in DETAIL_RULES)
