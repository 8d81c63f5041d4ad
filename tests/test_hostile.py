"""Messy input never crashes, hangs or silently loses a line; the process behaves like a Unix tool."""

from __future__ import annotations

import fcntl
import functools
import gzip
import json
import os
import random
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
import zlib

import pytest

from tlslog import fold
from tlslog.errors import EXIT_NO_POSTFIX
from tlslog.analysis import Options, analyze

from .conftest import ROOT, SAMPLES, tlslog

LOG = SAMPLES / "realpostfix" / "default" / "maillog"
SESSION = (
    "Nov 25 10:00:00 mx postfix/smtpd[7]: connect from unknown[192.0.2.1]\n"
    "Nov 25 10:00:01 mx postfix/smtpd[7]: Anonymous TLS connection established from unknown[192.0.2.1]: "
    "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\n"
    "Nov 25 10:00:02 mx postfix/smtpd[7]: disconnect from unknown[192.0.2.1] ehlo=2 starttls=1 quit=1 commands=4\n"
)


def report(*args: str, stdin: bytes | None = None, code: int = 0) -> dict:
    run = tlslog("report", "--format", "json", *args, stdin=stdin)
    assert run.code == code, run.stderr
    assert "Traceback" not in run.stderr
    if code == 0:
        assert run.stderr == ""
    data = json.loads(run.stdout)
    lines = data["lines"]
    assert lines["read"] == lines["postfix"] + lines["other"] + lines["unrecognized"]
    return data


@functools.cache
def _log_report() -> dict:
    """The report of LOG, which several tests compare with (do not change it)."""
    return report(str(LOG))


def test_random_bytes(tmp_path):
    path = tmp_path / "junk"
    path.write_bytes(random.Random(1).randbytes(3_000_000))
    data = report(str(path), code=EXIT_NO_POSTFIX)
    assert data["lines"]["read"] == path.read_bytes().count(b"\n") + 1 == 11664
    # every line that does not decode as UTF-8 (checked with bytes.decode): 11558 of the 11664
    assert data["lines"]["invalid_utf8"] == 11558


def test_invalid_utf8_is_kept_and_counted(tmp_path):
    path = tmp_path / "log"
    bad = b"Nov 25 10:00:01 mx postfix/smtpd[8]: warning: hostname \xff\xfe does not resolve\n"
    path.write_bytes(bad + SESSION.encode() + b"\xc3\x28 garbage\n")
    data = report(str(path))
    assert data["lines"]["invalid_utf8"] == 2
    assert (data["inbound"]["total"], data["inbound"]["tls"]) == (1, 1)


def test_nul_bytes(tmp_path):
    path = tmp_path / "log"
    path.write_bytes(b"\x00" * 100 + b"\n" + SESSION.encode().replace(b"quit=1", b"quit=1\x00") + b"\x00\x00\n")
    data = report(str(path))
    assert data["lines"]["read"] == 5
    # the two NUL-only lines are unrecognised; the disconnect line with a NUL inside still parses
    assert (data["lines"]["unrecognized"], data["lines"]["parsed"]) == (2, 3)
    assert (data["inbound"]["total"], data["inbound"]["tls"]) == (1, 1)


def test_crlf_line_endings_give_the_same_report(tmp_path):
    path = tmp_path / "log"
    path.write_bytes(LOG.read_bytes().replace(b"\n", b"\r\n"))
    assert report(str(path)) == _log_report()


def test_a_10_mb_line_neither_crashes_nor_hangs(tmp_path):
    path = tmp_path / "log"
    path.write_bytes(SESSION.encode() + b"Nov 25 10:00:03 mx postfix/smtpd[7]: " + b"x" * 10_000_000 + b"\n")
    started = time.monotonic()
    for data in (report(str(path)), report(stdin=path.read_bytes())):
        assert (data["lines"]["read"], data["lines"]["unrecognized"]) == (4, 1)
        assert data["inbound"]["tls"] == 1
    assert time.monotonic() - started < 60


def test_endless_junk_without_newline_on_stdin():
    """A stream with no newline at all is cut into long lines instead of held in memory."""
    data = report(stdin=b"\x00" * 70_000_000, code=EXIT_NO_POSTFIX)
    assert data["lines"]["read"] == 2 and data["lines"]["unrecognized"] == 2


@pytest.mark.parametrize(("cut", "unparsed", "sessions"), [
    # in an IPv6 address: unparsed, no session of pid 9; the session of pid 7 stays intact
    ("connect from unknown[2001:db8:4864:", 1, 1),
    # in the TLS 1.3 tail: still TLS evidence, a (cut-off) TLS session of pid 9 besides pid 7's
    ("Anonymous TLS connection established from unknown[192.0.2.1]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 "
     "(256/256 bits) key-exchange X25519 server-sig", 0, 2),
], ids=["in-an-ipv6-address", "in-the-tls13-tail"])
def test_lines_cut_short(tmp_path, cut, unparsed, sessions):
    path = tmp_path / "log"
    path.write_text(f"Nov 25 10:00:00 mx postfix/smtpd[9]: {cut}\n" + SESSION)
    data = report(str(path))
    assert (data["lines"]["read"], data["lines"]["unparsed"]) == (4, unparsed)
    assert (data["inbound"]["total"], data["inbound"]["tls"]) == (sessions, sessions)


def test_directory_missing_and_unreadable_inputs_among_good_ones(tmp_path):
    unreadable = tmp_path / "unreadable.log"
    if os.geteuid() == 0:  # root reads every file: a symlink loop cannot be opened by anyone
        os.symlink(unreadable.name, unreadable)
        why = "Too many levels of symbolic links"
    else:
        unreadable.write_text(SESSION)
        unreadable.chmod(0)
        why = "Permission denied"
    run = tlslog("report", "--format", "json", "--internal", "none", str(tmp_path), str(tmp_path / "missing.log"),
                 str(unreadable), str(LOG))
    assert run.code == 1
    assert run.stderr == (f"tlslog: {tmp_path}: is a directory (use {tmp_path}/* to read the files in it)\n"
                          f"tlslog: {tmp_path / 'missing.log'}: No such file or directory\n"
                          f"tlslog: {unreadable}: {why}\n")
    assert json.loads(run.stdout)["inbound"]["total"] == 308


def test_a_file_that_vanishes_after_planning(tmp_path):
    path = tmp_path / "log"
    path.write_text(SESSION * 2000)
    from tlslog.engine.plan import Planner
    from tlslog.engine.scan import scan
    from tlslog.sources import resolve

    tasks = list(Planner(chunk_size=4096).tasks(resolve([str(path)])[0]))
    path.unlink()
    result = scan(tasks[1])
    assert str(result.error) == f"{path}: No such file or directory"


def test_duplicated_lines_are_folded_once(tmp_path):
    """A log where every line appears twice (copied logs, double syslog rules)."""
    doubled = "".join(line + "\n" + line + "\n" for line in LOG.read_text().splitlines())
    path = tmp_path / "log"
    path.write_text(doubled)
    once, twice = _log_report(), report(str(path))
    for direction in ("inbound", "outbound"):
        assert once[direction] == twice[direction]
    assert twice["lines"]["read"] == 2 * once["lines"]["read"]
    # every second copy repeats the line before it; the sample itself has no repeated line
    assert (once["lines"]["duplicate"], twice["lines"]["duplicate"]) == (0, once["lines"]["read"])


def test_sessions_interleaved_across_two_hosts(tmp_path):
    lines = SESSION.splitlines()
    other = [line.replace(" mx ", " mx2 ").replace("starttls=1 ", "") for line in lines]
    other[1] = other[1].replace("Anonymous TLS connection established", "warning: nothing")
    path = tmp_path / "log"
    path.write_text("\n".join(x for pair in zip(lines, other) for x in pair) + "\n")
    data = report(str(path))
    assert (data["inbound"]["total"], data["inbound"]["tls"], data["inbound"]["plaintext"]) == (2, 1, 1)


def test_fifo_and_process_substitution_are_read_as_streams(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    payload = gzip.compress(LOG.read_bytes())  # compressed, and the stream is sniffed

    def feed() -> None:
        with open(fifo, "wb") as handle:
            handle.write(payload)

    writer = threading.Thread(target=feed)
    writer.start()
    data = report(str(fifo))
    writer.join(10)
    assert data == _log_report()


def test_compressed_stdin():
    assert report(stdin=gzip.compress(LOG.read_bytes())) == _log_report()


def test_closed_stdout_ends_quietly():
    """``tlslog sessions … | head -1``: exit 141 like other tools, no BrokenPipe traceback."""
    big = SAMPLES / "synthetic" / "maillog.gz"
    proc = subprocess.Popen([sys.executable, "-m", "tlslog", "sessions", str(big), "--format", "jsonl"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    first = proc.stdout.readline()  # type: ignore[union-attr]
    proc.stdout.close()  # type: ignore[union-attr]
    _, err = proc.communicate(timeout=60)
    row = json.loads(first)  # the first delivery of the log (its status line is line 8, its TLS line line 6)
    assert (row["kind"], row["line"], row["queue_ids"], row["recipient"], row["encryption"], row["trust"]) == (
        "outbound", 8, ["5BA419D58A"], "dave@aol.com", "tls", "Trusted")
    assert proc.returncode == 128 + signal.SIGPIPE
    assert err == b""


def _unread(pipe) -> int:  # noqa: ANN001
    """Bytes written to a pipe that its reader has not read yet."""
    return struct.unpack("i", fcntl.ioctl(pipe.fileno(), termios.FIONREAD, b"\0" * 4))[0]


def _ctrl_c_delivered() -> None:
    """A shell without job control starts background jobs with SIGINT ignored, and Python then
    keeps it ignored: give the child the terminal's default, as Ctrl-C finds it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_interrupt_exits_130_with_one_line():
    proc = subprocess.Popen([sys.executable, "-m", "tlslog", "report"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, preexec_fn=_ctrl_c_delivered)
    proc.stdin.write(LOG.read_bytes())  # type: ignore[union-attr]
    proc.stdin.flush()  # type: ignore[union-attr]  # stdin stays open: tlslog waits for more
    deadline = time.monotonic() + 30
    while _unread(proc.stdin) and time.monotonic() < deadline:  # until tlslog has read it all
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, err.decode().strip(), out[:200]) == (130, "tlslog: interrupted", b"")


def test_sessions_that_never_end_are_closed_and_counted(monkeypatch, tmp_path):
    """Bounded state: with a cap of 300 open sessions, 5000 unfinished ones are all counted."""
    monkeypatch.setattr(fold, "MAX_OPEN", 300)
    path = tmp_path / "log"
    path.write_text("".join(f"Nov 25 10:00:00 mx postfix/smtpd[{pid}]: connect from unknown[192.0.2.{pid % 250}]\n"
                            for pid in range(1000, 6000)))
    from tlslog.report import COLUMNS, build_report

    analysis = analyze([str(path)], Options(jobs=1, columns=COLUMNS, chunk_size=16384))
    inbound = build_report(analysis.sessions, analysis.stats)["inbound"]
    assert (inbound["total"], inbound["unknown"]) == (5000, 5000)


@pytest.mark.slow
def test_a_million_endless_sessions_run_in_bounded_memory():
    """1M ``connect from`` lines, never a disconnect: peak memory stays small (see README)."""
    lines = (f"Nov 25 {10 + i // 360000:02d}:{i // 6000 % 60:02d}:{i // 100 % 60:02d} mx postfix/smtpd[{i}]: "
             f"connect from unknown[198.51.100.{i % 250}]\n" for i in range(1_000_000))
    payload = "".join(lines).encode()
    proc = subprocess.Popen([sys.executable, "-m", "tlslog", "report", "--format", "json"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)

    def feed() -> None:
        proc.stdin.write(payload)  # type: ignore[union-attr]
        proc.stdin.close()  # type: ignore[union-attr]

    writer = threading.Thread(target=feed)
    writer.start()
    out = proc.stdout.read()  # type: ignore[union-attr]
    proc.stdout.close()  # type: ignore[union-attr]
    writer.join(300)
    _, status, usage = os.wait4(proc.pid, 0)  # this process and its workers: the largest peak
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0
    inbound = json.loads(out)["inbound"]
    assert (inbound["total"], inbound["unknown"]) == (1_000_000, 1_000_000)
    assert usage.ru_maxrss / 1024 < 600, f"peak RSS {usage.ru_maxrss / 1024:.0f} MiB"


MIB = 1 << 20


def _gzip_bomb(unit: bytes, repeat: int) -> bytes:
    """One gzip member that inflates to ``unit * repeat``, built in a fraction of a second.

    After a full flush, deflate starts afresh on a byte boundary, so every copy of the unit
    compresses to the same bytes: one segment, repeated, then the end block and the trailer.
    """
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    segments = [deflate.compress(unit) + deflate.flush(zlib.Z_FULL_FLUSH) for _ in range(2)]
    if segments[0] == segments[1]:
        body = segments[0] * repeat
    else:  # a zlib that does not repeat itself: compress every copy (slow, still right)
        body = b"".join(segments + [deflate.compress(unit) + deflate.flush(zlib.Z_FULL_FLUSH)
                                    for _ in range(repeat - 2)])
    crc = 0
    for _ in range(repeat):
        crc = zlib.crc32(unit, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + body + deflate.flush() + struct.pack("<II", crc, len(unit) * repeat & 0xFFFFFFFF)


#: Runs tlslog with the arguments given, then prints its exit code, the peak RSS of it and its
#: workers (KiB), and its output.
_MEASURED_RUN = """
import resource, subprocess, sys
run = subprocess.run([sys.executable, "-m", "tlslog", *sys.argv[1:]], stdout=subprocess.PIPE,
                     stderr=subprocess.DEVNULL)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
sys.stdout.buffer.write(b"%d %d\\n" % (run.returncode, peak) + run.stdout)
"""


def _peak_run(*args: str) -> tuple[int, dict | None, float]:
    """Exit code, JSON output and peak RSS (MiB) of tlslog and its workers.

    Measured from a fresh, small Python process: a child's ``ru_maxrss`` also counts the peak
    of the process it was spawned from (Linux keeps the high-water mark across exec), and this
    one would be pytest, already large after the other tests.
    """
    out = subprocess.run([sys.executable, "-c", _MEASURED_RUN, *args], capture_output=True, cwd=ROOT,
                         check=True, timeout=600).stdout
    head, _, body = out.partition(b"\n")
    code, peak = map(int, head.split())
    return code, json.loads(body) if body else None, peak / 1024


@pytest.mark.parametrize(("unit", "repeat", "lines"), [
    # 1 GiB of 1 MiB lines in one member: one 1 MiB block of it inflates to 1 GiB at once
    pytest.param((b"x" * (MIB - 1) + b"\n") * 16, 64, 1024, id="1-MiB-lines", marks=pytest.mark.slow),
    # 512 MiB without a newline: cut into lines of 64 MiB (see README)
    pytest.param(b"x" * (16 * MIB), 32, 8, id="no-newline"),
])
def test_a_gzip_bomb_runs_in_bounded_memory(tmp_path, unit, repeat, lines):
    """A gzip member of a megabyte that inflates to a gigabyte: bounded memory, every line counted."""
    path = tmp_path / "bomb.gz"
    path.write_bytes(_gzip_bomb(unit, repeat))
    code, data, peak = _peak_run("report", str(path), "--format", "json", "--jobs", "2")
    assert code == EXIT_NO_POSTFIX  # read to the end, and not one Postfix line in it
    counts = data["lines"]  # type: ignore[index]
    assert (counts["read"], counts["unrecognized"], counts["postfix"], counts["other"]) == (lines, lines, 0, 0)
    assert counts["invalid_utf8"] == 0
    assert peak <= 400, f"peak RSS {peak:.0f} MiB"


def test_a_file_ending_in_an_empty_line_before_another(tmp_path):
    """The line before a chunk can be empty (a blank last line of the previous file)."""
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    first.write_text(SESSION + "\n")
    second.write_text("\n" + SESSION)
    data = report(str(first), str(second))
    assert (data["lines"]["read"], data["lines"]["unrecognized"], data["lines"]["duplicate"]) == (8, 2, 1)
    assert data["inbound"]["total"] == 2


@pytest.mark.parametrize("how", ["file", "gzip"])
def test_an_overlong_line_between_sessions_is_counted_in_pieces(tmp_path, how):
    """A 150 MiB line in the middle of a log: three unrecognised pieces of at most 64 MiB (README),
    the sessions around it intact, and never the whole line in memory."""
    payload = SESSION.encode() + b"y" * (150 * MIB) + b"\n" + SESSION.replace("[7]", "[8]").encode()
    path = tmp_path / ("log.gz" if how == "gzip" else "log")
    path.write_bytes(gzip.compress(payload, 1) if how == "gzip" else payload)
    code, data, peak = _peak_run("report", str(path), "--format", "json", "--jobs", "2")
    assert code == 0
    lines = data["lines"]  # type: ignore[index]
    assert (lines["read"], lines["unrecognized"], lines["postfix"]) == (9, 3, 6)
    assert (data["inbound"]["total"], data["inbound"]["tls"]) == (2, 2)  # type: ignore[index]
    assert peak <= 400, f"peak RSS {peak:.0f} MiB"


def test_overlong_lines_do_not_depend_on_the_chunk_size(tmp_path):
    payload = (SESSION + "z" * 300_000 + "\n" + SESSION + "\xff" * 10 + "w" * 70_000 + "\n").encode("latin-1")
    path = tmp_path / "log"
    path.write_bytes(payload)
    reports = [analyze([str(path)], Options(jobs=1, chunk_size=size)).stats for size in (512, 4096, 65536, 8 << 20)]
    assert all(r == reports[0] for r in reports)
    assert (reports[0].read, reports[0].unrecognized, reports[0].invalid_utf8) == (8, 2, 1)
