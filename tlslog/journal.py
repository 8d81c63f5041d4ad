"""Read the journal by running ``journalctl -o json`` (``tlslog report --journal``).

Debian's Postfix daemons log under the ``postfix@-.service`` instance (``postfix.service``
only starts it), so ``journalctl -u postfix`` finds none of their lines: both units are read
by default. The command's output is streamed like standard input (`tlslog.sources.read_blocks`);
tlslog still filters rows itself, so ``--since`` given to journalctl (`journal_since`) only saves
reading.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import tempfile
import time
from collections.abc import Generator, Iterator, Sequence
from typing import IO

from .errors import InputError, NoEntries
from .fold import DEFAULT_TIMEOUT
from .sources import Source

__all__ = ["DEFAULT_UNITS", "journal_command", "journal_moment", "journal_since", "journal_source", "read_command"]

DEFAULT_UNITS = ("postfix@-.service", "postfix.service")

#: What some journalctl versions print (to stdout or stderr) when nothing matches: no log line.
_NO_ENTRIES = b"-- No entries --"
#: How long a child asked to stop may take before it is killed.
_STOP_GRACE = 5.0


def journal_command(units: Sequence[str] = DEFAULT_UNITS, since: str | None = None,
                    journalctl: str = "journalctl", cursor_file: str | None = None) -> list[str]:
    """The journalctl argv: JSON records (exact stamps, host, PID) of the units, never paged;
    with ``cursor_file``, only the entries after the cursor in it (which journalctl updates)."""
    command = [journalctl, "-o", "json", "--no-pager"]
    for unit in units or DEFAULT_UNITS:
        command += ["-u", unit]
    if since is not None:
        command += ["--since", since]
    if cursor_file is not None:
        command.append(f"--cursor-file={cursor_file}")
    return command


def journal_source(units: Sequence[str] = DEFAULT_UNITS, since: str | None = None,
                   journalctl: str = "journalctl", cursor_file: str | None = None) -> Source:
    """A `Source` that runs journalctl; named after the units, so messages about it say which
    (no units: the default ones). ``since`` is journalctl's form (`journal_since`)."""
    units = tuple(units) or DEFAULT_UNITS
    return Source(f"journal ({', '.join(units)})", None,
                  command=tuple(journal_command(units, since, journalctl, cursor_file)))


def journal_since(text: str | None, *, now: dt.datetime | None = None,
                  margin: float = DEFAULT_TIMEOUT) -> str | None:
    """journalctl's ``--since`` for tlslog's (``7d``, ``last-week``, ``2026-10-01``…); None for
    None or a value `tlslog.filters.parse_when` refuses (the CLI reports that itself).

    tlslog reads journal stamps as UTC wall-clock time, so the moment is given in UTC. It is
    ``margin`` seconds (the session timeout) early, so that a session or delivery begun before
    the moment is read whole, and tlslog's own filter, not the cut, decides which rows are kept:
    a delivery whose TLS line came just before ``--since`` keeps its verdict.
    """
    from .filters import parse_when  # (and pandas) only when asked

    if text is None:
        return None
    try:
        seconds = parse_when(text, now or dt.datetime.now())
    except ValueError:
        return None
    return journal_moment(seconds, margin=margin)


def journal_moment(seconds: float, *, margin: float = DEFAULT_TIMEOUT) -> str:
    """journalctl's ``--since`` for a moment in tlslog's wall-clock seconds (see `journal_since`)."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds - margin))


def read_command(source: Source, block_size: int) -> Iterator[bytes]:
    """The stdout of the source's command in blocks; then its failure, if it failed, as an
    `InputError` (`NoEntries` when it printed nothing). Closing the generator early (an error
    downstream, Ctrl-C) stops the process and reaps it."""
    assert source.command is not None
    program = source.command[0]
    if shutil.which(program) is None:
        raise InputError(source.name, _not_found(program))
    with tempfile.TemporaryFile() as stderr:  # a file, not a pipe: a chatty stderr cannot block it
        process = subprocess.Popen(source.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=stderr)
        try:
            assert process.stdout is not None
            printed = yield from _stream(process.stdout, block_size)
            code = process.wait()
        finally:
            _stop(process)
        stderr.seek(0)
        said = _first_line(stderr.read())
    if code != 0:
        raise InputError(source.name, f"{program} failed (exit {code})" + (f": {said}" if said else ""))
    if not printed:
        raise NoEntries(source.name, _no_entries(source.command, said))


def _stream(stdout: IO[bytes], block_size: int) -> Generator[bytes, None, bool]:
    """The blocks of the output, without a lone ``-- No entries --``; returns whether it had any."""
    first = stdout.read(block_size)
    if first.strip() == _NO_ENTRIES:
        first = stdout.read(block_size)
    if not first:
        return False
    yield first
    yield from iter(lambda: stdout.read(block_size), b"")
    return True


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End the child (only if still running) and reap it, so no zombie is left."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(_STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


def _first_line(stderr: bytes) -> str:
    """The first thing said on stderr, but the no-entries notice (that is no failure)."""
    for line in stderr.splitlines():
        line = line.strip()
        if line and line != _NO_ENTRIES:
            return line.decode("utf-8", "replace")
    return ""


def _not_found(program: str) -> str:
    return (f"{program} not found: is this a systemd machine? pipe the log instead: "
            "tlslog report < /var/log/mail.log, or ssh HOST journalctl -o json -u postfix@-.service | tlslog report")


def _no_entries(command: tuple[str, ...], said: str) -> str:
    since = f" since {command[command.index('--since') + 1]}" if "--since" in command[:-1] else ""
    why = f" (journalctl said: {said})" if said else ""
    return (f"no journal entries{since}{why}; check the unit names (systemctl list-units 'postfix*') "
            "and that this user may read the journal (groups systemd-journal, adm)")
