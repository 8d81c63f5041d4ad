"""Verdicts: small logs in, one row per session or delivery out (see tlslog/fold.py)."""

from __future__ import annotations

import pytest

from tlslog.analysis import Options, analyze
from tlslog.render import session_records

TLS13 = "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519"
TLS12 = "TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)"
A = "unknown[192.0.2.1]"
B = "client.example[2001:db8::2]"
MX = "mx.example.net[203.0.113.25]:25"
MX2 = "mx2.example.net[203.0.113.26]:25"
STATUS = "to=<bob@example.net>, relay={relay}, delay=0.5, delays=0.1/0/0.2/0.2, dsn={dsn}, status={status} ({why})"


def sent(queue_id: str, relay: str = MX, extra: str = "", rcpt: str = "bob@example.net") -> str:
    return (f"{queue_id}: to=<{rcpt}>, relay={relay}, {extra}delay=0.5, delays=0.1/0/0.2/0.2, dsn=2.0.0,"
            " status=sent (250 2.0.0 Ok)")


def deferred(queue_id: str, why: str, relay: str = MX, dsn: str = "4.7.5") -> str:
    return f"{queue_id}: to=<bob@example.net>, relay={relay}, delay=1, delays=0/0/1/0, dsn={dsn}, status=deferred ({why})"


def rows(log: list[tuple], tmp_path, **options) -> list[dict]:
    """Lines are (second, tag[pid], message); one file, folded, exported."""
    text = "".join(f"Nov 25 10:{t // 60:02d}:{t % 60:02d} mx {tag}: {msg}\n" for t, tag, msg in log)
    path = tmp_path / "maillog"
    path.write_text(text, encoding="utf-8")
    analysis = analyze([str(path)], Options(jobs=1, year=2026, **options))
    return list(session_records(analysis.sessions))


def brief(row: dict) -> tuple:
    return row["kind"], row["encryption"], row["evidence"], row["protocol"], row["trust"]


SMTPD = "postfix/smtpd[100]"
SMTP = "postfix/smtp[200]"

INBOUND_CASES = {
    "starttls with summary line": (
        [(0, SMTPD, f"connect from {A}"), (1, SMTPD, f"Anonymous TLS connection established from {A}: {TLS13}"),
         (2, SMTPD, f"disconnect from {A} ehlo=2 starttls=1 quit=1 commands=4")],
        [("inbound", "tls", "tls-line", "TLSv1.3", "Anonymous")],
    ),
    "loglevel 0: the counter tells": (
        [(0, SMTPD, f"connect from {A}"), (2, SMTPD, f"disconnect from {A} ehlo=2 starttls=1 quit=1 commands=4")],
        [("inbound", "tls", "starttls-counter", None, None)],
    ),
    "failed handshake": (
        [(0, SMTPD, f"connect from {A}"), (1, SMTPD, f"SSL_accept error from {A}: -1"),
         (1, SMTPD, "warning: TLS library problem: error:0A000102:SSL routines::unsupported protocol:x.c:1:"),
         (1, SMTPD, f"lost connection after STARTTLS from {A}"),
         (1, SMTPD, f"disconnect from {A} ehlo=1 starttls=0/1 commands=1/2")],
        [("inbound", "tls-failed", "starttls-counter", None, None)],
    ),
    "plaintext with counters": (
        [(0, SMTPD, f"connect from {A}"), (1, SMTPD, f"disconnect from {A} ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5")],
        [("inbound", "plaintext", "no-starttls-counter", None, None)],
    ),
    "wrapper mode (port 465): TLS line, no starttls counter": (
        [(0, "postfix/smtps/smtpd[5]", f"connect from {A}"),
         (0, "postfix/smtps/smtpd[5]", f"Anonymous TLS connection established from {A}: {TLS12}"),
         (1, "postfix/smtps/smtpd[5]", f"disconnect from {A} ehlo=1 auth=1 quit=1 commands=3")],
        [("inbound", "tls", "tls-line", "TLSv1.2", "Anonymous")],
    ),
    "dropped right after a good handshake": (
        [(0, SMTPD, f"connect from {A}"), (1, SMTPD, f"lost connection after STARTTLS from {A}"),
         (1, SMTPD, f"disconnect from {A} ehlo=1 starttls=1 commands=2")],
        [("inbound", "tls", "starttls-counter", None, None)],
    ),
    "cut off after the TLS line: evidence wins": (
        [(0, SMTPD, f"connect from {A}"), (1, SMTPD, f"Trusted TLS connection established from {A}: {TLS13}")],
        [("inbound", "tls", "tls-line", "TLSv1.3", "Trusted")],
    ),
    "cut off with no evidence": (
        [(0, SMTPD, f"connect from {A}"), (1, SMTPD, f"4F1A23E0C7: client={A}")],
        [("inbound", "unknown", "cut-off", None, None)],
    ),
    "log starts mid-session: the counters cover the whole session": (
        [(0, SMTPD, f"4F1A23E0C7: client={A}"), (1, SMTPD, f"disconnect from {A} ehlo=2 starttls=1 commands=4")],
        [("inbound", "tls", "starttls-counter", None, None)],
    ),
    "log starts and ends mid-session, no evidence": (
        [(0, SMTPD, f"4F1A23E0C7: client={A}"), (1, SMTPD, f"lost connection after DATA from {A}")],
        [("inbound", "unknown", "cut-off", None, None)],
    ),
    "pid reused without a disconnect line": (
        [(0, SMTPD, f"connect from {A}"), (5, SMTPD, f"connect from {B}"),
         (6, SMTPD, f"disconnect from {B} ehlo=1 quit=1 commands=2")],
        [("inbound", "unknown", "cut-off", None, None), ("inbound", "plaintext", "no-starttls-counter", None, None)],
    ),
    "lines of another client on the same pid close the first session": (
        [(0, SMTPD, f"connect from {A}"), (1, SMTPD, f"disconnect from {B} ehlo=2 starttls=1 commands=4")],
        [("inbound", "unknown", "cut-off", None, None), ("inbound", "tls", "starttls-counter", None, None)],
    ),
    "silence longer than the timeout closes a session": (
        [(0, SMTPD, f"connect from {A}"), (3000, SMTPD, f"disconnect from {A} ehlo=2 starttls=1 commands=4")],
        [("inbound", "unknown", "cut-off", None, None), ("inbound", "tls", "starttls-counter", None, None)],
    ),
    "same pid on two hosts or services are different sessions": (
        [(0, SMTPD, f"connect from {A}"), (0, "postfix/submission/smtpd[100]", f"connect from {B}"),
         (1, "postfix/submission/smtpd[100]", f"disconnect from {B} ehlo=2 starttls=1 commands=4"),
         (2, SMTPD, f"disconnect from {A} ehlo=1 commands=1")],
        [("inbound", "plaintext", "no-starttls-counter", None, None), ("inbound", "tls", "starttls-counter", None, None)],
    ),
}


@pytest.mark.parametrize(("log", "expected"), INBOUND_CASES.values(), ids=INBOUND_CASES.keys())
def test_inbound_verdicts(log, expected, tmp_path):
    assert [brief(r) for r in rows(log, tmp_path, timeout=600)] == expected


def test_pre_3_0_disconnect_without_counters(tmp_path):
    """No counters and no TLS line: plaintext only if this service logs TLS lines at all."""
    plain = [(0, SMTPD, f"connect from {A}"), (1, SMTPD, f"disconnect from {A}")]
    assert [brief(r) for r in rows(plain, tmp_path)] == [("inbound", "unknown", "no-tls-logging", None, None)]
    with_tls = plain + [(2, SMTPD, f"connect from {B}"),
                        (3, SMTPD, f"Anonymous TLS connection established from {B}: {TLS12}"),
                        (4, SMTPD, f"disconnect from {B}")]
    assert [brief(r)[:3] for r in rows(with_tls, tmp_path)] == [
        ("inbound", "plaintext", "no-tls-line"), ("inbound", "tls", "tls-line")]


def test_session_fields(tmp_path):
    log = [(0, SMTPD, f"connect from {B}:40512"),
           (1, SMTPD, f"Anonymous TLS connection established from {B}:40512: {TLS13}"),
           (2, SMTPD, f"AB12CD34EF: client={B}:40512, sasl_method=PLAIN, sasl_username=alice"),
           (3, SMTPD, f"BC23DE45F0: client={B}:40512"),
           (4, SMTPD, f"disconnect from {B}:40512 ehlo=2 starttls=1 auth=1 mail=2 rcpt=2 data=2 quit=1 commands=11")]
    (row,) = rows(log, tmp_path)
    assert row["peer_name"] == "client.example" and row["peer_ip"] == "2001:db8::2" and row["peer_port"] == 40512
    assert row["ip_version"] == 6 and row["pid"] == 100 and row["host"] == "mx"
    assert row["queue_ids"] == ["AB12CD34EF", "BC23DE45F0"]
    assert (row["sasl_method"], row["sasl_username"]) == ("PLAIN", "alice")
    assert (row["cipher"], row["cipher_bits"], row["key_exchange"]) == ("TLS_AES_256_GCM_SHA384", 256, "X25519")
    assert (row["start"], row["end"], row["complete"]) == ("2026-11-25T10:00:00", "2026-11-25T10:00:04", True)


OUT_TLS = f"Verified TLS connection established to {MX}: {TLS13}"
OUTBOUND_CASES = {
    "TLS line, then the delivery": (
        [(0, SMTP, OUT_TLS), (1, SMTP, sent("1A2B3C4D5E"))],
        [("outbound", "tls", "tls-line", "TLSv1.3", "Verified")],
    ),
    "several recipients share one TLS line": (
        [(0, SMTP, OUT_TLS), (1, SMTP, sent("1A2B3C4D5E")), (1, SMTP, sent("1A2B3C4D5E", rcpt="carol@example.net"))],
        [("outbound", "tls", "tls-line", "TLSv1.3", "Verified")] * 2,
    ),
    "the next message on the same connection without a TLS line was plaintext": (
        [(0, SMTP, OUT_TLS), (1, SMTP, sent("1A2B3C4D5E")), (2, SMTP, sent("2B3C4D5E6F", extra="conn_use=2, "))],
        [("outbound", "tls", "tls-line", "TLSv1.3", "Verified"),
         ("outbound", "plaintext", "cached-connection", None, None)],
    ),
    "tlsproxy reuse": (
        [(0, SMTP, OUT_TLS), (1, SMTP, sent("1A2B3C4D5E")),
         (2, "postfix/smtp[201]", f"Verified TLS connection reused to {MX}: {TLS13}"),
         (3, "postfix/smtp[201]", sent("2B3C4D5E6F", extra="conn_use=2, "))],
        [("outbound", "tls", "tls-line", "TLSv1.3", "Verified")] * 2,
    ),
    "TLS to one MX, delivery by another": (
        [(0, SMTP, OUT_TLS), (1, SMTP, "1A2B3C4D5E: host mx.example.net[203.0.113.25] said: 451 try later"),
         (2, SMTP, sent("1A2B3C4D5E", relay=MX2))],
        [("outbound", "plaintext", "no-tls-line", None, None)],
    ),
    "handshake failure": (
        [(0, SMTP, f"SSL_connect error to {MX}: -1"),
         (0, SMTP, "warning: TLS library problem: error:0A00042E:SSL routines::tlsv1 alert protocol version:x.c:1:"),
         (1, SMTP, deferred("1A2B3C4D5E", "Cannot start TLS: handshake failure"))],
        [("outbound", "tls-failed", "ssl-connect-error", None, None)],
    ),
    "handshake failure, then plaintext fallback": (
        [(0, SMTP, f"SSL_connect error to {MX}: lost connection"), (1, SMTP, sent("1A2B3C4D5E"))],
        [("outbound", "plaintext", "plaintext-after-tls-failure", None, None)],
    ),
    "certificate not verified (loglevel 0)": (
        [(0, SMTP, f"certificate verification failed for {MX}: self-signed certificate"),
         (1, SMTP, deferred("1A2B3C4D5E", "Server certificate not verified"))],
        [("outbound", "tls", "certificate-not-verified", None, "Untrusted")],
    ),
    "TLS required but not offered": (
        [(1, SMTP, deferred("1A2B3C4D5E", "TLS is required, but was not offered by host mx.example.net[203.0.113.25]",
                            dsn="4.7.4"))],
        [("outbound", "plaintext", "starttls-not-offered", None, None)],
    ),
    "no connection at all": (
        [(0, SMTP, "connect to mx.example.net[203.0.113.25]:25: Connection refused"),
         (1, SMTP, deferred("1A2B3C4D5E", "connect to mx.example.net[203.0.113.25]:25: Connection refused",
                            relay="none", dsn="4.4.1"))],
        [("outbound", "unknown", "no-connection", None, None)],
    ),
    "3.11 tls= field on a sent delivery": (
        [(1, SMTP, sent("1A2B3C4D5E", extra="tls=dane, ")), (2, SMTP, sent("2B3C4D5E6F", extra="tls=may:none, ")),
         (3, SMTP, sent("3C4D5E6F7A", extra="tls=may, "))],
        [("outbound", "tls", "tls-feature", None, None), ("outbound", "plaintext", "tls-feature", None, None),
         ("outbound", "unknown", "no-tls-logging", None, None)],
    ),
    "tlsproxy's own copy of the summary is no delivery": (
        [(0, "postfix/tlsproxy[300]", "CONNECT to [203.0.113.25]:25"), (0, "postfix/tlsproxy[300]", OUT_TLS),
         (0, SMTP, OUT_TLS), (1, SMTP, sent("1A2B3C4D5E")), (9, "postfix/tlsproxy[300]", "DISCONNECT [203.0.113.25]:25")],
        [("outbound", "tls", "tls-line", "TLSv1.3", "Verified")],
    ),
}


@pytest.mark.parametrize(("log", "expected"), OUTBOUND_CASES.values(), ids=OUTBOUND_CASES.keys())
def test_outbound_verdicts(log, expected, tmp_path):
    assert [brief(r) for r in rows(log, tmp_path)] == expected


def test_outbound_without_any_tls_logging_is_unknown_not_plaintext(tmp_path):
    (row,) = rows([(1, SMTP, sent("1A2B3C4D5E"))], tmp_path)
    assert (row["encryption"], row["evidence"]) == ("unknown", "no-tls-logging")


def test_delivery_fields(tmp_path):
    log = [(0, SMTP, OUT_TLS), (1, SMTP, sent("1A2B3C4D5E", rcpt="Bob@Example.NET"))]
    (row,) = rows(log, tmp_path)
    assert row["recipient"] == "Bob@Example.NET" and row["recipient_domain"] == "example.net"
    assert (row["relay"], row["peer_name"], row["peer_ip"], row["peer_port"]) == (
        MX, "mx.example.net", "203.0.113.25", 25)
    assert (row["status"], row["dsn"], row["queue_ids"]) == ("sent", "2.0.0", ["1A2B3C4D5E"])
    assert (row["start"], row["end"]) == ("2026-11-25T10:00:00", "2026-11-25T10:00:01")


def test_relay_none_takes_the_tried_server_from_the_reason(tmp_path):
    log = [(1, SMTP, deferred("1A2B3C4D5E", "connect to mx6.example.net[2001:db8::25]:25: Connection timed out",
                              relay="none", dsn="4.4.1"))]
    (row,) = rows(log, tmp_path)
    assert (row["relay"], row["peer_ip"], row["ip_version"]) == ("none", "2001:db8::25", 6)


SMTPS = "postfix/smtps/smtpd[300]"


def test_implicit_tls_service_at_loglevel_0(tmp_path):
    """Wrapper mode has no STARTTLS: a session with a successful command was TLS anyway."""
    log = [(0, SMTPS, f"connect from {A}"), (0, SMTPS, f"AB12CD34EF: client={A}, sasl_method=LOGIN, sasl_username=a"),
           (1, SMTPS, f"disconnect from {A} ehlo=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=6"),
           (2, SMTPS, f"connect from {B}"), (3, SMTPS, f"disconnect from {B} commands=0/0")]
    assert [brief(r)[:3] for r in rows(log, tmp_path)] == [
        ("inbound", "tls", "implicit-tls"), ("inbound", "unknown", "implicit-tls")]


def test_implicit_tls_learned_from_a_tls_line_without_starttls(tmp_path):
    svc = "postfix/port465/smtpd[301]"
    log = [(0, svc, f"connect from {A}"), (0, svc, f"Anonymous TLS connection established from {A}: {TLS13}"),
           (1, svc, f"disconnect from {A} ehlo=1 quit=1 commands=2"),
           (2, svc, f"connect from {B}"), (3, svc, f"disconnect from {B} ehlo=1 quit=1 commands=2")]
    assert [brief(r)[:3] for r in rows(log, tmp_path)] == [
        ("inbound", "tls", "tls-line"), ("inbound", "tls", "implicit-tls")]


def test_a_starttls_counter_means_not_implicit_tls(tmp_path):
    log = [(0, SMTPS, f"connect from {A}"), (1, SMTPS, f"disconnect from {A} ehlo=1 quit=1 commands=2"),
           (2, SMTPS, f"connect from {B}"), (3, SMTPS, f"disconnect from {B} ehlo=2 starttls=1 quit=1 commands=4")]
    assert [brief(r)[:3] for r in rows(log, tmp_path)] == [
        ("inbound", "plaintext", "no-starttls-counter"), ("inbound", "tls", "starttls-counter")]


def test_a_session_cut_off_at_the_start_without_counters_is_unknown(tmp_path):
    """Postfix < 3.0 writes no counters: a session whose start is before the log may have lost its
    TLS line, so it is unknown even when the service logs TLS lines (a cut-off session has the
    verdict of its evidence)."""
    log = [(0, SMTPD, f"disconnect from {A}"),
           (1, SMTPD, f"connect from {B}"), (2, SMTPD, f"Anonymous TLS connection established from {B}: {TLS12}"),
           (3, SMTPD, f"disconnect from {B}"),
           (4, SMTPD, f"connect from {A}"), (5, SMTPD, f"disconnect from {A}")]
    assert [brief(r)[:3] for r in rows(log, tmp_path)] == [
        ("inbound", "unknown", "cut-off"), ("inbound", "tls", "tls-line"), ("inbound", "plaintext", "no-tls-line")]


FAILURE_CASES = {
    "handshake failure: the library's reason": (
        [(0, SMTPD, f"connect from {A}"), (1, SMTPD, f"SSL_accept error from {A}: -1"),
         (1, SMTPD, "warning: TLS library problem: error:0A0000C1:SSL routines::no shared cipher:"
                    "../ssl/statem/statem_srvr.c:2226:"),
         (1, SMTPD, f"lost connection after STARTTLS from {A}"),
         (2, SMTPD, f"disconnect from {A} ehlo=1 starttls=0/1 commands=1/2")],
        [("tls-failed", "no shared cipher")],
    ),
    "Postfix 2.x thread id in the library line": (
        [(0, SMTPD, f"connect from {A}"), (1, SMTPD, f"SSL_accept error from {A}: -1"),
         (1, SMTPD, "warning: TLS library problem: 3682:error:1408A10B:SSL routines:ssl3_get_client_hello:"
                    "wrong version number:s3_srvr.c:1071:"),
         (2, SMTPD, f"disconnect from {A}")],
        [("tls-failed", "wrong version number")],
    ),
    "lost right after STARTTLS": (
        [(0, SMTPD, f"connect from {A}"), (1, SMTPD, f"lost connection after STARTTLS from {A}"),
         (2, SMTPD, f"disconnect from {A} ehlo=1 starttls=0/1 commands=1/2")],
        [("tls-failed", "lost connection after STARTTLS")],
    ),
    "only the counter says so": (
        [(0, SMTPD, f"connect from {A}"), (2, SMTPD, f"disconnect from {A} ehlo=1 starttls=0/1 commands=1/2")],
        [("tls-failed", "STARTTLS failed")],
    ),
    "client certificate required": (
        [(0, SMTPD, f"connect from {A}"), (1, SMTPD, f"Anonymous TLS connection established from {A}: {TLS13}"),
         (1, SMTPD, f"NOQUEUE: abort: TLS from {A}: No client certificate presented"),
         (2, SMTPD, f"disconnect from {A} ehlo=2 starttls=1 commands=3")],
        [("tls", "No client certificate presented")],
    ),
    "outbound handshake failure": (
        [(0, SMTP, f"SSL_connect error to {MX}: -1"),
         (0, SMTP, "warning: TLS library problem: error:0A00042E:SSL routines::tlsv1 alert protocol version:"
                   "../ssl/record/rec_layer_s3.c:1602:SSL alert number 70:"),
         (1, SMTP, deferred("1A2B3C4D5E", "Cannot start TLS: handshake failure"))],
        [("tls-failed", "tlsv1 alert protocol version")],
    ),
    "outbound: the reason of the deferral": (
        [(1, SMTP, deferred("1A2B3C4D5E", "Cannot start TLS: handshake failure"))],
        [("tls-failed", "Cannot start TLS: handshake failure")],
    ),
    "outbound: TLS required, host left out so that reasons group": (
        [(1, SMTP, deferred("1A2B3C4D5E", "TLS is required, but was not offered by host mx.example.net[203.0.113.25]",
                            dsn="4.7.4"))],
        [("plaintext", "TLS is required, but was not offered")],
    ),
    "outbound: the certificate check": (
        [(0, SMTP, f"server certificate verification failed for {MX}: num=62:hostname mismatch"),
         (1, SMTP, deferred("1A2B3C4D5E", "Server certificate not verified"))],
        [("tls", "certificate verification failed: num=62:hostname mismatch")],
    ),
    "a good session has none": (
        [(0, SMTP, OUT_TLS), (1, SMTP, sent("1A2B3C4D5E"))],
        [("tls", None)],
    ),
}


@pytest.mark.parametrize(("log", "expected"), FAILURE_CASES.values(), ids=FAILURE_CASES.keys())
def test_failure_reason(log, expected, tmp_path):
    assert [(r["encryption"], r["failure_reason"]) for r in rows(log, tmp_path)] == expected


def test_messages_source_and_fold_verdict(tmp_path):
    log = [(0, SMTPD, f"connect from {A}"), (1, SMTPD, f"AB12CD34EF: client={A}"), (2, SMTPD, f"BC23DE45F0: client={A}"),
           (3, SMTPD, f"disconnect from {A} ehlo=1 mail=2 rcpt=2 data=2 quit=1 commands=8"),
           (4, SMTP, OUT_TLS), (5, SMTP, sent("1A2B3C4D5E")),
           (6, SMTP, deferred("2B3C4D5E6F", "Cannot start TLS: handshake failure", relay=MX2))]
    found = [(r["messages"], r["source"], r["fold_encryption"], r["fold_evidence"], r["encryption"])
             for r in rows(log, tmp_path)]
    source = str(tmp_path / "maillog")
    assert found == [(2, source, "pending", "no-starttls-counter", "plaintext"),
                     (1, source, "tls", "tls-line", "tls"),
                     (0, source, "tls-failed", "tls-failure-reason", "tls-failed")]
