"""Drive SMTP sessions into the private Postfix and write one truth row per session and per relayed recipient.

A truth row says what the driver asked for (listener, client address, STARTTLS, protocol, cipher, client
certificate, recipient) and what the client observed (replies, negotiated protocol and cipher, the queue id
in "250 ... queued as", the state of the relayed message in the queue directory). The maillog is never read
to decide a verdict: after the run, :func:`join` reads only message-id and delivery-status lines to add the
sink's queue id and ``conn_use`` (join keys, as in the realpostfix truth.jsonl schema).

Every network step has a timeout: swaks ``--timeout`` inside a subprocess timeout, socket timeouts, and a
bounded wait for each relayed message to leave the active queue. Traffic goes to 127.0.0.0/8 and ::1 only.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import select
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .postfix import ROUTES, SASL_USERS, PostfixInstance

V4, V6 = "127.0.0.1", "::1"
SWAKS_TIMEOUT = 10  # per SMTP step, inside swaks
CLIENT_TIMEOUT = 25  # whole client process
DELIVERY_TIMEOUT = 20  # one relayed message leaving the active queue
REPLY = re.compile(r"^<[-~*]{1,2}\s+(\d{3}) ", re.M)  # swaks: "<-  250 ...", "<~* 550 ..." (last line of a reply)
QUEUED_AS = re.compile(r"queued as ([0-9A-Za-z]+)")

# What the Postfix SMTP client must negotiate per recipient domain (routes: postfix.ROUTES):
# domain -> (TLS expected, protocol, cipher or None for the library's choice, client-side trust, outcome,
#            trust the sink logs for the same connection)
OUTBOUND: dict[str, tuple[bool, str | None, str | None, str | None, str, str | None]] = {
    "tls.example": (True, "TLSv1.3", None, "Trusted", "sent", "Trusted"),
    "tls6.example": (True, "TLSv1.3", None, "Trusted", "sent", "Trusted"),
    "plain.example": (False, None, None, None, "sent", None),
    "plain6.example": (False, None, None, None, "sent", None),
    "verify.example": (True, "TLSv1.3", None, "Verified", "sent", "Trusted"),
    "tls12.example": (True, "TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384", "Trusted", "sent", "Trusted"),
    "aes128.example": (True, "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", "Trusted", "sent", "Trusted"),
    "anon.example": (True, "TLSv1.3", None, "Trusted", "sent", "Anonymous"),  # no client certificate
    "selfsigned.example": (True, "TLSv1.3", None, "Untrusted", "sent", "Anonymous"),
    "badverify.example": (True, "TLSv1.3", None, "Untrusted", "deferred_cert_not_trusted", "Anonymous"),
    # the <=TLSv1.2 sink asks for no client certificate, so at level "may" both sides allow aNULL: ADH wins
    "adh.example": (True, "TLSv1.2", "ADH-AES256-GCM-SHA384", "Anonymous", "sent", "Anonymous"),
    "ecdsa.example": (True, "TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384", "Trusted", "sent", "Anonymous"),
    "mismatch.example": (False, None, None, None, "deferred_tls_handshake_failure", None),
    "encrypt.example": (False, None, None, None, "deferred_tls_not_offered", None),
    "dead.example": (False, None, None, None, "deferred_connection_refused", None),
    "cache.example": (True, "TLSv1.3", None, "Trusted", "sent", "Trusted"),
    "cache6.example": (True, "TLSv1.3", None, "Trusted", "sent", "Trusted"),
    "plaincache.example": (False, None, None, None, "sent", None),
}
SINK_OF_PORT = {"sink_tls": "sink-tls", "sink_plain": "sink-plain", "sink_selfsigned": "sink-selfsigned",
                "sink_tls12": "sink-tls12", "dead": None}
# the reason Postfix keeps in the queue's defer log for each deferred outcome
DEFER_REASON = {"deferred_cert_not_trusted": "Server certificate not verified",
                "deferred_tls_handshake_failure": "Cannot start TLS: handshake failure",
                "deferred_tls_not_offered": "TLS is required, but was not offered",
                "deferred_connection_refused": "Connection refused"}
REJECT_CODE = {"rejected_rcpt_550": "550", "relay_denied_554": "554",
               "rejected_mail_530_starttls_required": "530", "auth_failed_535": "535"}


@dataclass(frozen=True)
class Scenario:
    """One session to drive. ``option``: cipher, TLS 1.3 suite, protocol, SASL mechanism or relay domain;
    ``tls``: use STARTTLS where the kind leaves it open; ``rcpts``: recipients of a relayed message."""

    kind: str
    v6: bool = False
    option: str | None = None
    tls: bool = False
    rcpts: int = 1


def now() -> str:
    return dt.datetime.now().isoformat(timespec="microseconds")


# ------------------------------------------------------------------ clients

def run_swaks(args: list[str]) -> dict[str, Any]:
    """Run swaks; observe reply codes, the negotiated TLS parameters and the queue id."""
    try:
        done = subprocess.run(["swaks", "--timeout", str(SWAKS_TIMEOUT), *args], capture_output=True, text=True,
                              timeout=CLIENT_TIMEOUT)
        out, rc = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = _text(e.stdout) + _text(e.stderr), 124
    obs: dict[str, Any] = {"client_tool": "swaks", "client_rc": rc, "client_replies": REPLY.findall(out)}
    tls = re.search(r"TLS started with cipher (\S+?):(\S+?):(\d+)", out)
    if tls:
        obs["client_observed_protocol"], obs["client_observed_cipher"] = tls.group(1), tls.group(2)
    error = re.search(r"^\*\*\*.*$", out, re.M)
    if error:
        obs["client_error"] = error.group(0)[:200]
    return obs | _queued(out)


def run_s_client(host: str, port: int, suite: str, helo: str, commands: list[str]) -> dict[str, Any]:
    """A TLS 1.3 session with a chosen cipher suite (swaks cannot choose 1.3 suites): openssl s_client.

    One command at a time (no command pipelining): each is sent once the reply to the one before is complete
    (its last line ``NNN text``), each wait bounded by SWAKS_TIMEOUT and the whole client by CLIENT_TIMEOUT.
    """
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    cmd = ["openssl", "s_client", "-brief", "-starttls", "smtp", "-name", helo, "-connect", target, "-tls1_3",
           "-ciphersuites", suite, "-crlf", "-ign_eof"]
    obs: dict[str, Any] = {"client_tool": "openssl s_client"}
    out = bytearray()
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as p:
        assert p.stdin is not None and p.stdout is not None
        deadline = time.monotonic() + CLIENT_TIMEOUT
        fd = p.stdout.fileno()
        try:
            # after the handshake (-brief prints "Ciphersuite: ..."), OpenSSL 3.0 prints the last line of the
            # EHLO reply it read before STARTTLS ("250 CHUNKING"): wait for it, so it answers no command of ours
            if _read_until(fd, out, 0, CIPHERSUITE_LINE, min(deadline, time.monotonic() + SWAKS_TIMEOUT)):
                marker = CIPHERSUITE_LINE.search(out)
                _read_until(fd, out, marker.end() if marker else 0, FINAL_REPLY_LINE, time.monotonic() + 1)
            for command in commands:
                seen = len(out)
                p.stdin.write(command.encode() + b"\n")
                p.stdin.flush()
                if not _read_until(fd, out, seen, FINAL_REPLY_LINE, min(deadline, time.monotonic() + SWAKS_TIMEOUT)):
                    obs["client_error"] = f"no complete reply to {command.split()[0]!r}"
                    break
            p.stdin.close()
            _read_until(fd, out, len(out), None, deadline)  # to EOF: the server closes after QUIT
            obs["client_rc"] = p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except (subprocess.TimeoutExpired, BrokenPipeError) as e:
            p.kill()
            obs["client_error"] = repr(e)[:200]
    text = out.decode(errors="replace")
    obs["client_replies"] = re.findall(r"^(\d{3}) ", text, re.M)
    for key, label in (("client_observed_protocol", "Protocol version"), ("client_observed_cipher", "Ciphersuite")):
        m = re.search(rf"^{label}: (\S+)", text, re.M)
        if m:
            obs[key] = m.group(1)
    return obs | _queued(text)


FINAL_REPLY_LINE = re.compile(rb"^\d{3} [^\n]*\n", re.M)
CIPHERSUITE_LINE = re.compile(rb"^Ciphersuite: [^\n]*\n", re.M)


def _read_until(fd: int, out: bytearray, since: int, pattern: re.Pattern[bytes] | None, deadline: float) -> bool:
    """Read into ``out`` until ``pattern`` occurs after offset ``since`` (None: until EOF).

    False on timeout, and on EOF before the pattern.
    """
    while pattern is None or not pattern.search(out, since):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return False
        chunk = os.read(fd, 65536)
        if not chunk:
            return pattern is None
        out += chunk
    return True


def run_raw(host: str, port: int, source: str | None, helo: str, mode: str) -> dict[str, Any]:
    """Sessions no SMTP client makes on purpose.

    ``drop_after_tls``: STARTTLS, handshake, then close TCP without QUIT; ``garbage``: non-TLS bytes after
    "220 Ready to start TLS"; ``drop_plain``: EHLO and close; ``plain_on_tls``: EHLO on an implicit-TLS port.
    """
    obs: dict[str, Any] = {"client_tool": f"python socket ({mode})"}
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(SWAKS_TIMEOUT)
            if source:
                s.bind((source, 0))
            s.connect((host, port))
            if mode == "plain_on_tls":
                s.sendall(f"EHLO {helo}\r\n".encode())
                obs["client_received"] = s.recv(200).decode(errors="replace")[:100]
                return obs
            with s.makefile("rb") as f:
                replies = [_reply(f)]
                s.sendall(f"EHLO {helo}\r\n".encode())
                replies.append(_reply(f))
                if mode != "drop_plain":
                    s.sendall(b"STARTTLS\r\n")
                    replies.append(_reply(f))
            obs["client_replies"] = replies
            if mode == "garbage":
                s.sendall(b"GET / HTTP/1.0\r\nHost: mx.local.test\r\n\r\n")
                _wait_closed(s)
            elif mode == "drop_after_tls":
                _handshake_and_drop(s, obs)
    except OSError as e:
        obs["client_error"] = repr(e)[:200]
    return obs


def _handshake_and_drop(s: socket.socket, obs: dict[str, Any]) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with context.wrap_socket(s, server_hostname="mx.local.test") as tls:
        obs["client_observed_protocol"] = tls.version()
        obs["client_observed_cipher"] = (tls.cipher() or ("?",))[0]
        time.sleep(0.1)
    # closing an SSLSocket sends no close_notify (only unwrap() would), and no QUIT was sent


def _reply(f: Any) -> str:
    """Read one (possibly multi-line) SMTP reply and return its code."""
    while True:
        line: bytes = f.readline()
        if not line or line[3:4] != b"-":
            return line[:3].decode(errors="replace")


def _wait_closed(s: socket.socket) -> None:
    """Give the server time to fail the handshake and hang up (bounded by the socket timeout)."""
    ready, _, _ = select.select([s], [], [], SWAKS_TIMEOUT)
    if ready:
        with contextlib.suppress(OSError):
            s.recv(4096)


def _queued(text: str) -> dict[str, Any]:
    m = QUEUED_AS.search(text)
    return {"client_queue_id": m.group(1)} if m else {}


def _text(data: bytes | str | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else data or ""


# ------------------------------------------------------------------ sessions

class Driver:
    """Runs scenarios one after another against one instance and collects the truth rows."""

    def __init__(self, pf: PostfixInstance, run_id: str) -> None:
        self.pf, self.run_id = pf, run_id
        self.rows: list[dict[str, Any]] = []
        self._count = 0

    def run(self, scenarios: list[Scenario]) -> list[dict[str, Any]]:
        for scenario in scenarios:
            self.rows += self.session(scenario)
        return self.rows

    def session(self, scenario: Scenario) -> list[dict[str, Any]]:
        self._count += 1
        sid = f"{self.run_id}-{self._count:03d}"
        s = _Session(self, sid, scenario)
        HANDLERS[scenario.kind](s)
        return [s.row, *s.out_rows]

    def source_address(self) -> str:
        """A distinct 127.0.0.x per session (x >= 10), so sessions without a queue id are told apart."""
        return f"127.0.0.{10 + self._count % 240}"


class _Session:
    """One session being driven: its truth row, its client, and the rows of the mail it relays."""

    def __init__(self, driver: Driver, sid: str, scenario: Scenario) -> None:
        self.driver, self.scenario = driver, scenario
        pf = driver.pf
        server = V6 if scenario.v6 else V4
        self.row: dict[str, Any] = dict(
            id=sid, kind=scenario.kind, direction="in", listener="smtpd", server_ip=server,
            server_port=pf.ports.mx, client_ip=server if scenario.v6 else driver.source_address(),
            ip_version=6 if scenario.v6 else 4, starttls=False, implicit_tls=False, tls_expected=False,
            expected_protocol=None, expected_cipher=None, expected_trust=None, client_cert=None,
            mail_from=f"sender-{sid}@client.test", rcpt="alice@local.test", helo=f"{sid}.client.test",
            message_id=f"{sid}@harness.test", outcome="delivered", client_name="unknown",
            tls_loglevel=pf.tls_loglevel)
        self.out_rows: list[dict[str, Any]] = []

    # ---- expectations
    def listen(self, listener: str, port: int) -> None:
        self.row.update(listener=listener, server_port=port)

    def expect_tls(self, protocol: str = "TLSv1.3", cipher: str | None = None, trust: str = "Anonymous") -> None:
        self.row.update(starttls=not self.row["implicit_tls"], tls_expected=True, expected_protocol=protocol,
                        expected_cipher=cipher, expected_trust=trust)

    def expect_no_message(self, outcome: str) -> None:
        self.row.update(outcome=outcome, message_id=None)

    # ---- clients
    def swaks(self, *extra: str) -> None:
        row = self.row
        args = ["--server", row["server_ip"], "--port", str(row["server_port"]), "--helo", row["helo"],
                "--from", row["mail_from"], "--to", ",".join(self.recipients()),
                "--header", f"Message-Id: <{row['message_id'] or row['id'] + '@harness.test'}>",
                "--header", f"Subject: tlslog e2e {row['id']} {row['kind']}"]
        args += ["-6"] if self.scenario.v6 else ["--local-interface", row["client_ip"]]
        self._observe(lambda: run_swaks(args + list(extra)))

    def s_client(self, suite: str) -> None:
        row = self.row
        body = f"Message-Id: <{row['message_id']}>\nSubject: tlslog e2e {row['id']}\n\nhello\n."
        commands = [f"EHLO {row['helo']}", f"MAIL FROM:<{row['mail_from']}>", f"RCPT TO:<{row['rcpt']}>", "DATA",
                    body, "QUIT"]
        self._observe(lambda: run_s_client(row["server_ip"], row["server_port"], suite, row["helo"], commands))

    def raw(self, mode: str) -> None:
        row = self.row
        source = None if self.scenario.v6 else row["client_ip"]
        self._observe(lambda: run_raw(row["server_ip"], row["server_port"], source, row["helo"], mode))

    def recipients(self) -> list[str]:
        return [r["rcpt"] for r in self.out_rows] or [self.row["rcpt"]]

    def _observe(self, client: Callable[[], dict[str, Any]]) -> None:
        self.row["start"] = now()
        observed = client()
        self.row["end"] = now()
        self.row.update(observed)
        self.row["log_queue_id"] = observed.get("client_queue_id")
        if self.row["tls_expected"] and not self.row["expected_cipher"]:
            # not forced: the truth is what the client saw negotiated
            self.row["expected_cipher"] = observed.get("client_observed_cipher")
        if self.out_rows:
            self._follow_delivery()

    # ---- relaying
    def relay_to(self, domain: str, count: int) -> None:
        """Plan one outbound row per recipient of ``domain``; the message goes out after the session."""
        tls, protocol, cipher, trust, outcome, sink_trust = OUTBOUND[domain]
        address, port = self.driver.pf.route(domain)
        sink = SINK_OF_PORT[ROUTES[domain][2]]
        sid = self.row["id"]
        for k in range(1, count + 1):
            self.out_rows.append(dict(
                id=f"{sid}-out{k if k > 1 else ''}", parent=sid, kind="smtp_client_delivery", direction="out",
                listener="smtp-client", client_ip=address, server_ip=address, server_port=port,
                ip_version=6 if ":" in address else 4, starttls=tls, tls_expected=tls, expected_protocol=protocol,
                expected_cipher=cipher, expected_trust=trust, rcpt=f"user{k}-{sid}@{domain}",
                message_id=self.row["message_id"], dest_domain=domain, outcome=outcome, sink=sink,
                sink_expected_trust=sink_trust, sink_expected_client_name="unknown" if sink else None,
                expected_relay="none" if outcome == "deferred_connection_refused" else f"{address}[{address}]:{port}",
                client_cert=None if domain == "anon.example" else "client.test (CA-signed)",
                tls_loglevel=self.row["tls_loglevel"]))

    def _follow_delivery(self) -> None:
        """Wait until the relayed message left the active queue; record what the queue shows."""
        queue_id = self.row["log_queue_id"]
        state = "not queued"
        if queue_id:
            deadline = time.monotonic() + DELIVERY_TIMEOUT
            while (state := self.driver.pf.queue_state(queue_id)) == "pending" and time.monotonic() < deadline:
                time.sleep(0.02)
        reasons = self.driver.pf.defer_reasons(queue_id) if state == "deferred" else ""
        for out in self.out_rows:
            out.update(start=self.row["start"], end=now(), delivery_observed=state in ("done", "deferred"),
                       observed_queue_state=state, observed_defer_reason=_reason_for(reasons, out["rcpt"]),
                       log_queue_id=queue_id)


def _reason_for(defer_log: str, rcpt: str) -> str | None:
    """The ``reason=`` of one recipient's record in Postfix's defer log."""
    for record in defer_log.split("\n\n"):
        if f"recipient={rcpt}\n" in record + "\n":
            m = re.search(r"^reason=(.*)$", record, re.M)
            return m.group(1) if m else None
    return None


# ------------------------------------------------------------------ session kinds

def _plain(s: _Session) -> None:
    s.swaks()


def _starttls(s: _Session) -> None:
    s.expect_tls()
    s.swaks("-tls")


def _tls12_cipher(s: _Session) -> None:
    cipher = s.scenario.option or ""
    s.expect_tls("TLSv1.2", cipher)
    s.swaks("-tls", "--tls-protocol", "tlsv1_2", "--tls-cipher", cipher)


def _tls13_suite(s: _Session) -> None:
    suite = s.scenario.option or ""
    s.row["client_ip"] = s.row["server_ip"]  # s_client cannot choose its source address
    s.expect_tls("TLSv1.3", suite)
    s.s_client(suite)


def _ccert(trust: str, cert: str | None) -> Callable[[_Session], None]:
    def handler(s: _Session) -> None:
        pki = s.driver.pf.pki
        s.listen("ccert", s.driver.pf.ports.ccert)
        s.expect_tls(trust=trust)
        s.row["client_cert"] = cert
        extra = ["--tls-cert", str(pki.crt(cert)), "--tls-key", str(pki.key(cert))] if cert else []
        s.swaks("-tls", *extra)
    return handler


def _quit_after_tls(s: _Session) -> None:
    s.expect_tls()
    s.expect_no_message("quit_after_tls")
    s.swaks("-tls", "--quit-after", "TLS")


def _drop_after_tls(s: _Session) -> None:
    s.expect_tls()
    s.expect_no_message("lost_connection_after_tls")
    s.raw("drop_after_tls")


def _garbage_after_starttls(s: _Session) -> None:
    s.row["starttls"] = True
    s.expect_no_message("handshake_failed")
    s.raw("garbage")


def _tls_no_shared_cipher(s: _Session) -> None:
    s.row["starttls"] = True
    s.expect_no_message("handshake_failed")  # the server's certificate is RSA: no ECDSA suite can work
    s.swaks("-tls", "--tls-protocol", "tlsv1_2", "--tls-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")


def _tls_bad_protocol(s: _Session) -> None:
    s.row["starttls"] = True
    s.expect_no_message("handshake_failed")  # TLSv1/1.1 are below OpenSSL 3's default security level
    s.swaks("-tls", "--tls-protocol", s.scenario.option or "tlsv1")


def _drop_plain(s: _Session) -> None:
    s.expect_no_message("lost_connection_after_ehlo")
    s.raw("drop_plain")


def _reject_rcpt(s: _Session) -> None:
    s.row["rcpt"] = f"nosuchuser-{s.row['id']}@local.test"
    _optional_tls(s, "rejected_rcpt_550")


def _relay_denied(s: _Session) -> None:
    s.row["rcpt"] = f"someone-{s.row['id']}@tls.example"  # the client address is outside mynetworks
    _optional_tls(s, "relay_denied_554")


def _optional_tls(s: _Session, outcome: str) -> None:
    if s.scenario.tls:
        s.expect_tls()
    s.expect_no_message(outcome)
    s.swaks(*(["-tls"] if s.scenario.tls else []))


def _submission_plain(s: _Session) -> None:
    s.listen("submission", s.driver.pf.ports.submission)
    s.expect_no_message("rejected_mail_530_starttls_required")
    s.swaks()


def _submission_tls(s: _Session) -> None:
    s.listen("submission", s.driver.pf.ports.submission)
    s.expect_tls()
    s.swaks("-tls")


def _sasl(listener: str, ok: bool) -> Callable[[_Session], None]:
    def handler(s: _Session) -> None:
        pf, user = s.driver.pf, "alice@local.test" if ok else "bob@local.test"
        implicit = listener == "smtps"
        s.listen(listener, pf.ports.smtps if implicit else pf.ports.msa)
        s.row.update(implicit_tls=implicit, sasl_username=user, sasl_method=s.scenario.option or "PLAIN", sasl_ok=ok)
        s.expect_tls()
        if not ok:
            s.expect_no_message("auth_failed_535")
        password = SASL_USERS[user] if ok else "wrong-password"
        s.swaks("--tls-on-connect" if implicit else "-tls", "--auth", s.row["sasl_method"], "--auth-user", user,
                "--auth-password", password)
    return handler


def _plaintext_on_smtps(s: _Session) -> None:
    s.listen("smtps", s.driver.pf.ports.smtps)
    s.row.update(implicit_tls=True)
    s.expect_no_message("handshake_failed_plaintext_client_on_tls_port")
    s.raw("plain_on_tls")


def _relay_out(s: _Session) -> None:
    s.row["client_ip"] = s.row["server_ip"]  # relaying is allowed from 127.0.0.1 and ::1 only
    s.row["outcome"] = "accepted_for_relay"
    s.relay_to(s.scenario.option or "tls.example", s.scenario.rcpts)
    s.row["rcpt"] = s.out_rows[0]["rcpt"]
    if len(s.out_rows) > 1:
        s.row["rcpts"] = s.recipients()
    if s.scenario.tls:
        s.expect_tls()
    s.swaks(*(["-tls"] if s.scenario.tls else []))


HANDLERS: dict[str, Callable[[_Session], None]] = {
    "in_plain": _plain,
    "in_starttls": _starttls,
    "in_tls12_cipher": _tls12_cipher,
    "in_tls13_suite": _tls13_suite,
    "in_ccert_none": _ccert("Anonymous", None),
    "in_ccert_untrusted": _ccert("Untrusted", "rogueclient"),
    "in_ccert_trusted": _ccert("Trusted", "client"),
    "in_quit_after_tls": _quit_after_tls,
    "in_drop_after_tls": _drop_after_tls,
    "in_garbage_after_starttls": _garbage_after_starttls,
    "in_tls_no_shared_cipher": _tls_no_shared_cipher,
    "in_tls_bad_protocol": _tls_bad_protocol,
    "in_drop_plain": _drop_plain,
    "in_reject_rcpt": _reject_rcpt,
    "in_relay_denied": _relay_denied,
    "in_sub_plain_reject": _submission_plain,
    "in_sub_tls": _submission_tls,
    "in_msa_auth_ok": _sasl("msa", True),
    "in_msa_auth_fail": _sasl("msa", False),
    "in_smtps_auth_ok": _sasl("smtps", True),
    "in_smtps_auth_fail": _sasl("smtps", False),
    "in_smtps_plain_client": _plaintext_on_smtps,
    "relay_out": _relay_out,
}


# ------------------------------------------------------------------ after the run

def observation_problems(rows: list[dict[str, Any]]) -> list[str]:
    """Where what the clients observed contradicts what the truth row says: a harness problem, not tlslog's."""
    return [f"{row['id']} ({row['kind']}): {problem}" for row in rows
            for problem in (_inbound_problems(row) if row["direction"] == "in" else _outbound_problems(row))]


def _inbound_problems(row: dict[str, Any]) -> list[str]:
    problems = []
    observed = row.get("client_observed_protocol")
    if row["tls_expected"] and observed != row["expected_protocol"]:
        problems.append(f"asked for {row['expected_protocol']}, client saw {observed}")
    if row["tls_expected"] and row["expected_cipher"] != row.get("client_observed_cipher"):
        problems.append(f"asked for cipher {row['expected_cipher']}, client saw {row.get('client_observed_cipher')}")
    if not row["tls_expected"] and observed:
        problems.append(f"TLS was not expected, client saw {observed}")
    if row["message_id"] and not row.get("log_queue_id"):
        problems.append(f"message not queued (replies {row.get('client_replies')}, {row.get('client_error')})")
    if not row["message_id"] and row.get("client_queue_id"):
        problems.append("a message was queued where none should be")
    code = REJECT_CODE.get(row["outcome"])
    if code and code not in (row.get("client_replies") or []):
        problems.append(f"expected a {code} reply, client saw {row.get('client_replies')}")
    return problems


def _outbound_problems(row: dict[str, Any]) -> list[str]:
    problems = []
    state, outcome = row.get("observed_queue_state"), row["outcome"]
    if state != ("done" if outcome == "sent" else "deferred"):
        problems.append(f"outcome {outcome}, but the queue shows {state}")
    reason = DEFER_REASON.get(outcome)
    if reason and reason not in (row.get("observed_defer_reason") or ""):
        problems.append(f"outcome {outcome}, but the defer reason is {row.get('observed_defer_reason')!r}")
    return problems


MESSAGE_ID_LINE = re.compile(r" ([0-9A-Za-z]+): message-id=<([^>]*)>")
DELIVERY_LINE = re.compile(r" postfix/smtp\[(\d+)\]: ([0-9A-Za-z]+): to=<([^>]*)>, relay=\S+?,"
                           r"(?: conn_use=(\d+),)?.* status=\w+(?: \(.*queued as ([0-9A-Za-z]+)\))?")


def join(rows: list[dict[str, Any]], maillog: Path) -> list[dict[str, Any]]:
    """Add the join keys the log alone knows: the sink's queue id, ``conn_use`` and the smtp pid.

    Reads message-id lines (queue ids of each copy of a message) and delivery status lines only.
    """
    queue_ids: dict[str, list[str]] = {}
    deliveries: dict[tuple[str, str], re.Match[str]] = {}
    for line in maillog.read_text(errors="replace").splitlines():
        if m := MESSAGE_ID_LINE.search(line):
            queue_ids.setdefault(m.group(2), []).append(m.group(1))
        elif m := DELIVERY_LINE.search(line):
            deliveries.setdefault((m.group(2), m.group(3)), m)
    for row in rows:
        copies = queue_ids.get(row.get("message_id") or "", [])
        if row["direction"] == "in":
            row["log_message_queue_ids"] = copies
            continue
        delivery = deliveries.get((row.get("log_queue_id") or "", row["rcpt"]))
        row["log_smtp_pid"] = int(delivery.group(1)) if delivery else None
        row["log_conn_use"] = int(delivery.group(4)) if delivery and delivery.group(4) else None
        row["log_sink_queue_id"] = delivery.group(5) if delivery and delivery.group(5) else None
    return rows


def write_jsonl(rows: list[dict[str, Any]], path: Path) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
