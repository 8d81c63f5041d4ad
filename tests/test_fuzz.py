"""Property tests over generated logs: at least 100,000 generated lines per run, bounded in time.

Each hypothesis example is a seed for a generator of a whole log (plausible Postfix sessions
from a few processes that reuse pids, other programs, every prefix format, cut and corrupted
lines, junk), so a failure reproduces from the seed hypothesis prints. Properties:

* nothing raises, and the line accounting always adds up;
* the hot loop reads every line as the reference path does (sampled);
* the fold does not depend on chunk boundaries or on the number of workers.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tlslog.analysis import Options, analyze
from tlslog.engine.plan import Task
from tlslog.engine.scan import scan
from tlslog.render import session_records

from .test_pipeline import hot_stats, reference_stats

LINES_PER_EXAMPLE = 1000
EXAMPLES = 110  # 110,000 generated lines

TRUST = ["Anonymous ", "Untrusted ", "Trusted ", "Verified ", ""]
TAILS = ["", " key-exchange X25519", " key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256",
         " key-exchange ECDHE (P-256) server-signature ECDSA (P-256 raw public key)", " key-exchange X25519 server-sig"]
COUNTERS = [" ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7", " ehlo=1 starttls=0/1 commands=1/2",
            " ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4", " commands=0/0", "", " ehlo=2 starttls=1 commands=3",
            " ehlo=1 auth=1 mail=1 commands=3", " ehlo=1 starttls=0/"]
JUNK = ["\x00\x01\x02", "\ufffd\ufffd", "Nov 31 99:99:99 x", "", " ", "{\"MESSAGE\": 1}", "<13>1 - - - - - -",
        "postfix/smtpd[]: connect from", "[::1]:25", "\t\t"]


def _peer(r: random.Random) -> str:
    kind = r.random()
    if kind < 0.5:
        return f"unknown[192.0.2.{r.randrange(256)}]"
    if kind < 0.8:
        return f"mx{r.randrange(9)}.example.net[2001:db8::{r.randrange(4096):x}]"
    if kind < 0.9:
        return f"host[{r.choice(['ipaddr', 'IP', 'x.x.x.x', ''])}]"
    return f"[198.51.100.{r.randrange(256)}]:{r.randrange(1, 65535)}"


def _message(r: random.Random, program: str) -> str:
    peer = _peer(r)
    qid = f"{r.getrandbits(40):010X}"
    tls = f"{r.choice(TRUST)}TLS connection {r.choice(['established', 'reused'])} " \
          f"{'from' if program == 'smtpd' else 'to'} {peer}: {r.choice(['TLSv1.3', 'TLSv1.2', 'TLSv1'])} " \
          f"with cipher TLS_AES_256_GCM_SHA384 ({r.choice(['256/256', '112/168'])} bits){r.choice(TAILS)}"
    if program == "smtpd":
        return r.choice([
            f"connect from {peer}", f"disconnect from {peer}{r.choice(COUNTERS)}", tls, f"{qid}: client={peer}",
            f"lost connection after {r.choice(['STARTTLS', 'EHLO', 'DATA'])} from {peer}",
            f"SSL_accept error from {peer}: -1", "warning: TLS library problem: error:0A000102:x:1:",
            f"NOQUEUE: reject: RCPT from {peer}: 554 5.7.1 denied; from=<a@b> to=<c@d> proto=ESMTP helo=<x>",
            f"{qid}: client={peer}, sasl_method=PLAIN, sasl_username=u@example.org",
        ])
    return r.choice([
        tls, f"SSL_connect error to {peer}: lost connection",
        f"{qid}: to=<u{r.randrange(9)}@example.net>, relay={r.choice([peer, 'none'])}, "
        f"{r.choice(['', 'conn_use=2, '])}delay=1, delays=0/0/1/0, dsn=2.0.0, "
        f"status={r.choice(['sent', 'deferred', 'bounced'])} ({r.choice(['250 ok', 'Cannot start TLS: handshake failure', 'TLS is required, but was not offered by host x[192.0.2.1]'])})",
        f"certificate verification failed for {peer}: self-signed certificate",
        f"connect to {peer}: Connection refused",
    ])


def generate_log(seed: int, n: int = LINES_PER_EXAMPLE) -> list[str]:
    r = random.Random(seed)
    second = r.randrange(86400 * 300)
    lines = []
    for _ in range(n):
        second += r.choice([0, 0, 0, 1, 1, 2, 30, 4000]) if r.random() < 0.98 else -r.randrange(100)
        stamp = f"{['Dec', 'Jan', 'Jun'][second // 86400 % 3]} {second // 3600 % 28 + 1:2d} " \
                f"{second // 3600 % 24:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
        program = r.choice(["smtpd", "smtpd", "smtp", "tlsproxy", "qmgr"])
        tag = f"postfix{r.choice(['', '', '/submission', '-out'])}/{program}[{r.randrange(100, 106)}]"
        message = _message(r, "smtp" if program == "tlsproxy" else program)
        shape = r.random()
        if shape < 0.80:
            line = f"{stamp} {r.choice(['mx', 'mx', 'mx2'])} {tag}: {message}"
        elif shape < 0.85:
            line = f"2026-06-04T11:52:{second % 60:02d}+02:00 mx {tag}: {message}"
        elif shape < 0.88:
            line = f"<22>1 2026-11-24T12:00:00Z mx postfix {r.randrange(100, 106)} - - {message}"
        elif shape < 0.91:
            line = '{"MESSAGE": "%s", "SYSLOG_IDENTIFIER": "postfix/smtpd", "_PID": "101"}' % message.replace('"', "")
        elif shape < 0.95:
            whole = f"{stamp} mx {tag}: {message}"
            line = whole[: r.randrange(len(whole) + 1)]
        elif shape < 0.98:
            whole = f"{stamp} mx {tag}: {message}"
            at = r.randrange(len(whole) + 1)
            line = whole[:at] + r.choice(JUNK) + whole[at:]
        else:
            line = r.choice(JUNK) + "".join(chr(r.randrange(1, 0x2FF)) for _ in range(r.randrange(30)))
        lines.append(line.replace("\n", " "))
        if r.random() < 0.02:
            lines.append(lines[-1])  # a doubled line
    return lines


@pytest.mark.slow
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.integers(0, 2**32))
def test_generated_logs(tmp_path_factory, seed):
    lines = generate_log(seed)
    text = "\n".join(lines) + "\n"
    stats = scan(Task(0, "log", 2026, None, data=text.encode("utf-8", "surrogatepass"), columns=())).stats
    assert stats.read == len(lines)
    assert stats.read == stats.postfix + stats.other + stats.unrecognized
    assert stats.parsed + stats.unparsed <= stats.postfix
    assert hot_stats(lines[:150]) == reference_stats(lines[:150])

    path = tmp_path_factory.mktemp("fuzz") / "log"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    whole = list(session_records(analyze([str(path)], Options(jobs=1, year=2026)).sessions))
    size = random.Random(seed).choice([512, 3000, 20000])
    chunked = list(session_records(analyze([str(path)], Options(jobs=1, year=2026, chunk_size=size)).sessions))
    assert chunked == whole
