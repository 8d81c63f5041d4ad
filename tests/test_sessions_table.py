"""The ``sessions`` table: columns chosen by width, the verdict never cut, one line per row when
piped, and log text (attacker-controlled) shown literally."""

from __future__ import annotations

import fcntl
import functools
import io
import json
import os
import re
import struct
import subprocess
import sys
import termios

import pandas as pd
import pytest
from rich.cells import cell_len
from rich.console import Console

from tlslog.analysis import Analysis, Options, analyze
from tlslog.render import _safe, _service_labels, print_renderable, sessions_table

from .conftest import REAL_SAMPLES, ROOT, SAMPLES, maillogs, tlslog

VERDICTS = {"tls", "plaintext", "tls-failed", "unknown"}
#: Reading order of the columns on screen (any shown subset keeps it).
READING_ORDER = ["start", "service", "peer", "encryption", "protocol", "cipher", "trust", "recipient"]
SGR = re.compile(r"\x1b\[[0-9;]*m")

#: A log whose peer names, recipient and service carry rich markup and terminal control characters.
HOSTILE = "".join(
    f"Nov 25 10:00:0{pid} mx {service}[{pid}]: {text}\n"
    for pid, service, texts in (
        (1, "postfix/smtpd", ["connect from evil\x1bc\x1b(0red.example[192.0.2.1]",
                              "disconnect from evil\x1bc\x1b(0red.example[192.0.2.1] ehlo=1 quit=1 commands=2"]),
        (2, "postfix/smtpd", ["connect from a\rb\x07c\x7fd\x85e\x9bf[192.0.2.2]",
                              "disconnect from a\rb\x07c\x7fd\x85e\x9bf[192.0.2.2] ehlo=1 quit=1 commands=2"]),
        (3, "postfix\x1b/smtpd", ["connect from unknown[192.0.2.3]",
                                  "disconnect from unknown[192.0.2.3] ehlo=1 quit=1 commands=2"]),
        (4, "postfix/qmgr", ["ABC123: from=<s@example.org>, size=10, nrcpt=1 (queue active)"]),
        (5, "postfix/smtp", ["Trusted TLS connection established to mx.example.com[198.51.100.1]:25: "
                             "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)",
                             'ABC123: to=<"[link=http://x]a[/link][bold]b"@example.com>, '
                             "relay=mx.example.com[198.51.100.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, "
                             "status=sent (250 ok)"]),
    )
    for text in texts
)
LITERAL = ('"[link=http://x]a[/link][bold]b"@example.com', "evil\\x1bc\\x1b(0red.example[192.0.2.1]",
           "a\\x0db\\x07c\\x7fd\\x85e\\x9bf[192.0.2.2]", "postfix\\x1b/smtpd")


@functools.cache
def _analysis(name: str) -> Analysis:
    return analyze([str(p) for p in maillogs(SAMPLES / "realpostfix" / name)], Options(year=2026, jobs=1))


def render(frame: pd.DataFrame, width: int | None) -> list[str]:
    out = io.StringIO()
    print_renderable(sessions_table(frame, width=width), out, width=width or sys.maxsize)
    return out.getvalue().splitlines()


def columns(header: str) -> dict[str, int]:
    """Each column's start offset in the header line, by name."""
    return {m.group(): m.start() for m in re.finditer(r"\S+", header)}


def cell(line: str, header: str, name: str) -> str:
    starts = sorted(columns(header).values())
    start = columns(header)[name]
    end = next((s for s in starts if s > start), None)
    return line[start:end].strip()


@pytest.mark.parametrize("name", [p.name for p in REAL_SAMPLES])
@pytest.mark.parametrize("width", [40, 60, 80, 100, 132])
def test_fits_the_width_and_keeps_every_verdict_whole(name, width):
    frame = _analysis(name).sessions
    lines = render(frame, width)
    header, rule, rows = lines[0], lines[1], lines[2:]
    assert len(rows) == len(frame)
    assert max(cell_len(line) for line in lines) <= width
    assert set(rule) == {"─"}
    shown = list(columns(header))
    assert {"encryption", "protocol", "peer"} <= set(shown)
    assert shown == [c for c in READING_ORDER if c in shown]
    assert [cell(line, header, "encryption") for line in rows] == frame["encryption"].tolist()


def test_columns_by_width():
    frame = _analysis("e2e-loglevel1").sessions
    shown = {width: list(columns(render(frame, width)[0])) for width in (40, 60, 80, 100, 200)}
    assert shown[40] == ["peer", "encryption", "protocol"]
    assert shown[60] == ["start", "peer", "encryption", "protocol"]
    assert shown[80] == ["start", "service", "peer", "encryption", "protocol", "trust"]
    assert shown[100] == ["start", "service", "peer", "encryption", "protocol", "trust", "recipient"]
    assert shown[200] == READING_ORDER


def test_at_80_columns_services_keep_their_daemon():
    frame = _analysis("e2e-loglevel1").sessions
    lines = render(frame, 80)
    services = [cell(line, lines[0], "service") for line in lines[2:]]
    assert "smtpd" in services and "smtp" in services  # postfix/ dropped
    assert all(s.endswith(("/smtpd", "/smtp")) or s in ("smtpd", "smtp") for s in services), services


def test_service_labels_stay_distinct():
    labels = _service_labels({"postfix/smtpd", "postfix/submission/smtpd", "submission/smtpd", "sink/smtp"})
    assert labels == {"postfix/smtpd": "smtpd", "postfix/submission/smtpd": "postfix/submission/smtpd",
                      "submission/smtpd": "submission/smtpd", "sink/smtp": "sink/smtp"}


@pytest.mark.parametrize("width", [10, 19])
def test_narrower_than_the_first_three_still_shows_the_verdict(width):
    frame = _analysis("e2e-loglevel1").sessions
    lines = render(frame, width)
    assert list(columns(lines[0])) == ["encryption"]
    assert [line.strip() for line in lines[2:]] == frame["encryption"].tolist()


def test_limit_adds_a_caption():
    frame = _analysis("e2e-loglevel1").sessions
    lines = render(frame, 80)
    out = io.StringIO()
    print_renderable(sessions_table(frame, width=80, limit=3), out, width=80)
    got = out.getvalue().splitlines()
    assert got[:5] == lines[:5]
    assert got[5].strip() == f"first 3 of {len(frame)} rows"


@pytest.mark.parametrize("name", ["e2e-loglevel1", "hostnames-sasl", "default"])
def test_piped_output_is_one_whole_line_per_row(name):
    files = [str(p.relative_to(ROOT)) for p in maillogs(SAMPLES / "realpostfix" / name)]
    jsonl = tlslog("sessions", *files, "--year", "2026", "--format", "jsonl").stdout
    records = [json.loads(line) for line in jsonl.splitlines()]
    run = tlslog("sessions", *files, "--year", "2026")
    assert run.code == 0
    lines = run.stdout.splitlines()
    assert len(lines) == len(records) + 2  # the header and its rule
    header = lines[0]
    assert list(columns(header)) == READING_ORDER
    assert "…" not in run.stdout
    for line, record in zip(lines[2:], records):
        assert cell(line, header, "encryption") == record["encryption"]
        assert cell(line, header, "service") == record["service"]
        assert cell(line, header, "recipient") == (record["recipient"] or "")
        assert cell(line, header, "peer") == f"{record['peer_name'] or ''}[{record['peer_ip']}]"


def test_safe_escapes_every_control_character():
    controls = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))]
    assert all(_safe(c) == f"\\x{ord(c):02x}" for c in controls)
    assert _safe("\x1b[31mred\r\n") == "\\x1b[31mred\\x0d\\x0a"
    kept = "plain é ü … \u00a0 \\x1b [bold] 日本"
    assert _safe(kept) == kept
    assert _safe(_safe("".join(controls))) == _safe("".join(controls))


def _no_raw_controls(text: str) -> None:
    assert not [c for c in text if c != "\n" and (ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0)]


def test_hostile_log_prints_literally_when_piped(tmp_path):
    log = tmp_path / "hostile.log"
    log.write_text(HOSTILE, encoding="utf-8")
    run = tlslog("sessions", str(log), "--year", "2026", "--internal", "none")
    assert run.code == 0
    lines = run.stdout.splitlines()
    assert len(lines) == 4 + 2
    _no_raw_controls(run.stdout)
    for text in LITERAL:
        assert text in run.stdout


@pytest.mark.parametrize("width", [80, 200])
def test_hostile_log_on_a_colour_terminal(tmp_path, width):
    """Rich markup in log text stays text (no hyperlink, no style), and the only escape
    sequences are the table's own colours."""
    log = tmp_path / "hostile.log"
    log.write_text(HOSTILE, encoding="utf-8")
    frame = analyze([str(log)], Options(year=2026, jobs=1)).sessions
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system="truecolor", highlight=False,
                      legacy_windows=False, _environ={})
    console.print(sessions_table(frame, width=width))
    plain = SGR.sub("", out.getvalue())
    _no_raw_controls(plain)
    assert "\x1b]8" not in out.getvalue()  # no OSC 8 hyperlink
    assert max(cell_len(line) for line in plain.splitlines()) <= width
    if width == 200:
        for text in LITERAL:
            assert text in plain


def test_terminal_width_in_a_real_process():
    """The command fits the terminal it writes to (a pseudo-terminal of 80 columns here)."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    files = [str(p) for p in maillogs(SAMPLES / "realpostfix" / "hostnames-sasl")]
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR", "COLUMNS")}
    proc = subprocess.Popen([sys.executable, "-m", "tlslog", "sessions", *files, "--year", "2026"], cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.PIPE, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    lines = SGR.sub("", b"".join(chunks).decode()).replace("\r\n", "\n").splitlines()
    assert max(cell_len(line) for line in lines) <= 80
    assert list(columns(lines[0])) == ["start", "service", "peer", "encryption", "protocol", "trust"]
    assert {cell(line, lines[0], "encryption") for line in lines[2:]} <= VERDICTS
