"""Reading the journal by running journalctl: its argv, the same analysis as the records in a
file, and what the user is told when journalctl is missing, fails or finds nothing.

journalctl is faked by a script put first on PATH: it records its argv and prints journal JSON
records made of the lines of a real Postfix log.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import os
import pickle
import re
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tlslog.analysis import Analysis, Options, analyze
from tlslog.errors import EXIT_INPUT, EXIT_NO_POSTFIX, InputError, NoEntries
from tlslog.filters import Filter, parse_when
from tlslog.journal import DEFAULT_UNITS, journal_command, journal_since, journal_source
from tlslog.sources import Source, read_blocks

from .conftest import SAMPLES

LOG = SAMPLES / "realpostfix" / "default" / "maillog"
NAME = "journal (postfix@-.service, postfix.service)"
ARGV = ["-o", "json", "--no-pager", "-u", "postfix@-.service", "-u", "postfix.service"]
NOW = dt.datetime(2026, 10, 14, 15, 30)  # a Wednesday
_SYSLOG = re.compile(r"(\w{3}) +(\d+) (\d\d):(\d\d):(\d\d) (\S+) ([^\[]+)\[(\d+)\]: (.*)")


def _records(path: Path) -> Path:
    """The log's lines as ``journalctl -o json`` records (stamps of 2026, as UTC), in a file."""
    out = []
    for line in LOG.read_text().splitlines():
        m = _SYSLOG.match(line)
        assert m, line
        month = list(calendar.month_abbr).index(m[1])
        micros = calendar.timegm((2026, month, int(m[2]), int(m[3]), int(m[4]), int(m[5]))) * 1_000_000
        out.append(json.dumps({"__REALTIME_TIMESTAMP": str(micros), "_HOSTNAME": m[6], "SYSLOG_IDENTIFIER": m[7],
                               "_PID": m[8], "PRIORITY": "6", "_SYSTEMD_UNIT": "postfix@-.service",
                               "MESSAGE": m[9]}))
    path.write_text("\n".join(out) + "\n")
    return path


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _records(tmp_path_factory.mktemp("journal") / "records.json")


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``fake(body)``: a journalctl first on PATH that saves its argv in ``argv`` and runs the
    shell ``body``; returns the argv file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def make(body: str) -> Path:
        argv = tmp_path / "argv"
        script = bin_dir / "journalctl"
        script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > '{argv}'\n{body}\n")
        script.chmod(0o755)
        return argv

    return make


def _argv(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _journal(*, units=DEFAULT_UNITS, since: str | None = None, options: Options | None = None) -> Analysis:
    return analyze([], options or Options(jobs=1), sources=[journal_source(units, since)])


# -- the command ------------------------------------------------------------------------------------

def test_the_command_reads_both_postfix_units_as_json():
    assert journal_command() == ["journalctl", *ARGV]
    assert journal_command(["postfix@*"], "2026-10-01 00:00:00 UTC", "/usr/bin/journalctl") == [
        "/usr/bin/journalctl", "-o", "json", "--no-pager", "-u", "postfix@*", "--since", "2026-10-01 00:00:00 UTC"]


def test_the_source_is_named_after_its_units_and_pickles():
    source = journal_source()
    assert source == Source(NAME, None, command=("journalctl", *ARGV))
    assert pickle.loads(pickle.dumps(source)) == source
    assert not source.seekable
    assert journal_source([]).name == NAME  # no units: the default ones
    assert journal_source(["postfix@out.service"]).name == "journal (postfix@out.service)"


@pytest.mark.parametrize(("since", "expected"), [
    ("7d", "2026-10-07 14:30:00 UTC"),
    ("12h", "2026-10-14 02:30:00 UTC"),
    ("30m", "2026-10-14 14:00:00 UTC"),
    ("today", "2026-10-13 23:00:00 UTC"),
    ("yesterday", "2026-10-12 23:00:00 UTC"),
    ("this-week", "2026-10-11 23:00:00 UTC"),
    ("last-week", "2026-10-04 23:00:00 UTC"),
    ("this-month", "2026-09-30 23:00:00 UTC"),
    ("last-month", "2026-08-31 23:00:00 UTC"),
    ("2026-10-01", "2026-09-30 23:00:00 UTC"),
    ("2026-10-01T12:30", "2026-10-01 11:30:00 UTC"),
    (None, None),
    ("soon", None),  # the CLI's own --since check reports it
])
def test_since_is_passed_in_utc_one_session_timeout_early(since, expected):
    assert journal_since(since, now=NOW) == expected


def test_since_without_margin_is_the_exact_moment():
    assert journal_since("last-week", now=NOW, margin=0) == "2026-10-05 00:00:00 UTC"


# -- reading -------------------------------------------------------------------------------------

def _values(frame: pd.DataFrame, *drop: str) -> pd.DataFrame:
    """The table's values: categories in the order they were met depend on the chunks."""
    frame = frame.drop(columns=list(drop))
    return frame.astype({c: object for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)})


def _same(journal: Analysis, file: Analysis) -> None:
    assert journal.errors == [] and journal.sources == [NAME]
    assert set(journal.sessions["source"]) == {NAME}
    pd.testing.assert_frame_equal(_values(journal.sessions, "source"), _values(file.sessions, "source"))
    assert journal.stats == file.stats
    assert journal.postfix_versions == file.postfix_versions


def test_the_journal_reads_like_the_same_records_in_a_file(fake, records):
    argv = fake(f"cat '{records}'")
    journal = _journal(since=journal_since("2026-10-01", now=NOW))
    assert _argv(argv) == [*ARGV, "--since", "2026-09-30 23:00:00 UTC"]
    file = analyze([str(records)], Options(jobs=1))
    assert len(file.sessions) == 368
    _same(journal, file)


def test_in_small_chunks_and_workers_too(fake, records):
    fake(f"cat '{records}'")
    options = Options(jobs=2, chunk_size=1 << 16)
    _same(_journal(options=options), analyze([str(records)], options))


def test_a_cut_before_the_moment_keeps_every_row_and_verdict(tmp_path, monkeypatch, records):
    """A journalctl that honours --since: with the margin, the rows tlslog keeps are those of
    the whole journal (``epoch`` counts the Postfix starts read before a row: fewer when cut);
    without it, a session begun before the moment is read from its middle, a row of its own."""
    script = tmp_path / "bin" / "journalctl"
    script.parent.mkdir()
    script.write_text(f"""#!{sys.executable}
import calendar, json, sys, time
since = calendar.timegm(time.strptime(sys.argv[sys.argv.index("--since") + 1], "%Y-%m-%d %H:%M:%S UTC"))
for line in open({str(records)!r}):
    if int(json.loads(line)["__REALTIME_TIMESTAMP"]) >= since * 1_000_000:
        sys.stdout.write(line)
""")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    moment = "2026-11-25T03:44:10"  # 20 s into a log of 46 s whose sessions last seconds
    rows = Filter(since=parse_when(moment, NOW))
    whole = analyze([str(records)], Options(jobs=1))
    cut = _journal(since=journal_since(moment, now=NOW, margin=10))
    assert (cut.stats.read, whole.stats.read) == (1686, 2086)
    assert len(rows.apply(whole.sessions)) == 224
    pd.testing.assert_frame_equal(_values(rows.apply(cut.sessions), "source", "line", "epoch"),
                                  _values(rows.apply(whole.sessions), "source", "line", "epoch"))
    exact = _journal(since=journal_since(moment, now=NOW, margin=0))
    assert len(rows.apply(exact.sessions)) == 225


def test_a_custom_unit_goes_to_journalctl(fake, records):
    argv = fake(f"cat '{records}'")
    journal = _journal(units=["postfix@-.service"])
    assert _argv(argv) == ["-o", "json", "--no-pager", "-u", "postfix@-.service"]
    assert journal.sources == ["journal (postfix@-.service)"] and len(journal.sessions) == 368


# -- what goes wrong -------------------------------------------------------------------------------

def _error(analysis: Analysis) -> InputError:
    assert analysis.sources == []  # so no "no Postfix line in ..." warning on top of the error
    assert len(analysis.errors) == 1
    return analysis.errors[0]


def test_journalctl_not_found(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    error = _error(_journal())
    assert str(error) == (f"{NAME}: journalctl not found: is this a systemd machine? pipe the log instead: "
                          "tlslog report < /var/log/mail.log, or ssh HOST journalctl -o json -u postfix@-.service "
                          "| tlslog report")
    assert error.exit_code == EXIT_INPUT


def test_journalctl_failing_says_its_first_stderr_line(fake):
    fake("echo \"Failed to add match 'nope': Invalid argument\" >&2\necho second line >&2\nexit 1")
    error = _error(_journal(units=["nope"]))
    assert str(error) == "journal (nope): journalctl failed (exit 1): Failed to add match 'nope': Invalid argument"
    assert error.exit_code == EXIT_INPUT


def test_journalctl_failing_after_some_records_keeps_them(fake, records):
    fake(f"head -n 300 '{records}'\necho 'Error was encountered while opening journal files: Bad message' >&2\n"
         "exit 1")
    journal = _journal()
    assert [str(e) for e in journal.errors] == [
        f"{NAME}: journalctl failed (exit 1): Error was encountered while opening journal files: Bad message"]
    assert journal.stats.read == 300 and len(journal.sessions) > 0


NO_ENTRIES = (f"{NAME}: no journal entries; check the unit names (systemctl list-units 'postfix*') and that this "
              "user may read the journal (groups systemd-journal, adm)")


@pytest.mark.parametrize("body", [":", "echo '-- No entries --'", "echo '-- No entries --' >&2"],
                         ids=["nothing", "stdout", "stderr"])
def test_no_entries(fake, body):
    fake(body)
    error = _error(_journal())
    assert isinstance(error, NoEntries) and error.exit_code == EXIT_NO_POSTFIX
    assert str(error) == NO_ENTRIES


def test_no_entries_since_and_what_journalctl_said(fake):
    fake("echo 'Hint: You are currently not seeing messages from other users and the system.' >&2\n"
         "echo \"      Users in groups 'adm', 'systemd-journal' can see all messages.\" >&2")
    error = _error(_journal(since="2026-10-12 23:00:00 UTC"))
    assert str(error) == (
        f"{NAME}: no journal entries since 2026-10-12 23:00:00 UTC (journalctl said: Hint: You are currently not "
        "seeing messages from other users and the system.); check the unit names (systemctl list-units "
        "'postfix*') and that this user may read the journal (groups systemd-journal, adm)")


def test_records_of_no_postfix_line_are_read_not_an_error(fake):
    """Entries of the units but none of a Postfix daemon (systemd's own start/stop lines): read,
    so the CLI's "no Postfix line in journal (...)" warning and exit 6 tell it."""
    fake("""echo '{"__REALTIME_TIMESTAMP":"1780566727123456","SYSLOG_IDENTIFIER":"systemd","MESSAGE":"Started."}'""")
    journal = _journal()
    assert journal.errors == [] and journal.sources == [NAME]
    assert journal.stats.read == 1 and journal.stats.postfix == 0


# -- stopping early -------------------------------------------------------------------------------

def _gone(pid: int) -> bool:
    """Neither running nor a zombie: ended and reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("stop", ["close", "interrupt"])
def test_a_reader_closed_early_ends_and_reaps_journalctl(fake, tmp_path, stop):
    pid_file = tmp_path / "pid"
    fake(f"echo $$ > '{pid_file}'\nprintf 0123456789abcdef0123456789abcdef\nexec sleep 60")
    blocks = read_blocks(journal_source(), 16)
    assert next(blocks) == b"0123456789abcdef"
    pid = int(pid_file.read_text())
    assert not _gone(pid)
    started = time.monotonic()
    if stop == "close":
        blocks.close()
    else:
        with pytest.raises(KeyboardInterrupt):
            blocks.throw(KeyboardInterrupt)
    assert _gone(pid)
    assert time.monotonic() - started < 2  # asked to stop (SIGTERM), not killed after the grace period


# -- the command line: --journal, --unit, ingest --journal ------------------------------------------

def test_report_journal_reads_like_the_records_file(fake, records):
    from .conftest import tlslog

    argv = fake(f"cat '{records}'")
    journal = tlslog("report", "--journal", "--format", "json", "--since", "2026-10-01", "--internal", "none")
    assert journal.code == 0, journal.stderr
    assert _argv(argv)[:len(ARGV)] == ARGV and _argv(argv)[len(ARGV)] == "--since"
    file = json.loads(tlslog("report", str(records), "--format", "json", "--since", "2026-10-01", "--internal",
                             "none").stdout)
    data = json.loads(journal.stdout)
    assert (data["inbound"], data["outbound"], data["lines"]) == (file["inbound"], file["outbound"], file["lines"])
    assert data["inbound"]["total"] == 308


def test_ingest_journal_then_report_from_the_store(fake, records, tmp_path):
    from .conftest import tlslog

    argv = fake(f"cat '{records}'")
    db = str(tmp_path / "history.db")
    run = tlslog("ingest", "--journal", "--unit", "postfix@mx.service", "--db", db)
    assert run.code == 0, run.stderr
    assert _argv(argv)[:-1] == ["-o", "json", "--no-pager", "-u", "postfix@mx.service"]
    assert _argv(argv)[-1].startswith("--cursor-file=")
    assert "368 sessions added" in run.stderr
    again = tlslog("ingest", "--journal", "--unit", "postfix@mx.service", "--db", db)  # (this fake ignores the cursor)
    assert "0 sessions added, 0 completed, 368 already stored" in again.stderr
    stored = json.loads(tlslog("report", "--db", db, "--format", "json").stdout)
    assert stored["inbound"] == json.loads(tlslog("report", str(records), "--format", "json").stdout)["inbound"]


@pytest.mark.parametrize(("args", "message"), [
    (("report", "--unit", "postfix.service"), "--unit needs --journal"),
    (("report", "--journal", "maillog"), "give log files or --journal, not both"),
    (("ingest", "--since", "7d", "maillog"), "--since needs --journal"),
])
def test_journal_options_that_do_not_go_together(args, message):
    from .conftest import tlslog

    run = tlslog(*args)
    assert run.code == 2
    assert message in run.stderr


def test_ingest_journal_goes_on_after_the_cursor_the_store_keeps(tmp_path, monkeypatch, records):
    """journalctl --cursor-file, faked: it prints the records after the cursor in the file and
    writes the last one's. Each ingest reads only what is new; the store ends with every session."""
    from .conftest import tlslog

    lines = records.read_text().splitlines()
    journal = tmp_path / "journal.json"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "journalctl"
    script.write_text(f"""#!{sys.executable}
import json, sys
argv = sys.argv[1:]
open({str(tmp_path / "argv")!r}, "a").write(" ".join(argv) + "\\n")
path = next(a.split("=", 1)[1] for a in argv if a.startswith("--cursor-file="))
after = open(path).read().strip() if __import__("os").path.exists(path) else ""
records = [json.loads(l) for l in open({str(journal)!r})]
start = next((i + 1 for i, r in enumerate(records) if r["__CURSOR"] == after), 0)
for r in records[start:]:
    print(json.dumps(r))
if records[start:]:
    open(path, "w").write(records[-1]["__CURSOR"])
""")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def write(upto: int) -> None:
        journal.write_text("".join(json.dumps({**json.loads(line), "__CURSOR": f"c{i}"}) + "\n"
                                   for i, line in enumerate(lines[:upto])))

    db = str(tmp_path / "history.db")
    write(1000)
    first = tlslog("ingest", "--journal", "--db", db)
    assert first.code == 0, first.stderr
    assert first.stderr.startswith(f"tlslog: {db}: 1,000 lines of 1 input(s)")
    write(len(lines))
    second = tlslog("ingest", "--journal", "--db", db)
    assert second.code == 0, second.stderr
    assert second.stderr.startswith(f"tlslog: {db}: {len(lines) - 1000:,} lines of 1 input(s)")
    assert [line.split()[-1].startswith("--cursor-file=") for line in (tmp_path / "argv").read_text().splitlines()] \
        == [True, True]
    stored = json.loads(tlslog("report", "--db", db, "--format", "json", "--internal", "none").stdout)
    whole = json.loads(tlslog("report", str(records), "--format", "json", "--internal", "none").stdout)
    assert (stored["inbound"], stored["outbound"]) == (whole["inbound"], whole["outbound"])
