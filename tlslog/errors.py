"""Errors tlslog reports to the user, and the exit codes they map to (see README, Exit codes)."""

from __future__ import annotations

__all__ = [
    "EXIT_DAMAGED",
    "EXIT_ENGINE",
    "EXIT_FAIL_UNDER",
    "EXIT_FINDINGS",
    "EXIT_INPUT",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_NO_POSTFIX",
    "EXIT_OK",
    "EXIT_STORE",
    "EXIT_STRICT",
    "EXIT_USAGE",
    "DamagedInput",
    "EngineError",
    "InputError",
    "StoreError",
    "NoEntries",
    "TlslogError",
]

EXIT_OK = 0
#: An input could not be read at all (missing, unreadable, a directory); the others were used.
EXIT_INPUT = 1
#: Bad command-line usage (typer/click's own code).
EXIT_USAGE = 2
#: An input was damaged (truncated or corrupt compressed data); what could be read was used.
EXIT_DAMAGED = 3
#: ``--strict``: some smtp/smtpd/tlsproxy lines matched no grammar rule.
EXIT_STRICT = 4
#: ``report --fail-under``: coverage of mail below the threshold.
EXIT_FAIL_UNDER = 5
#: The input held no Postfix line at all (an empty or wrong file, the journal of another unit).
EXIT_NO_POSTFIX = 6
#: The history store (``--db``) cannot be used: not a tlslog store, read-only, full disk, newer
#: schema. Nothing stored before is lost.
EXIT_STORE = 7
#: ``doctor``: the configuration has findings of severity warning or error.
EXIT_FINDINGS = 8
#: ``--engine dask``/``--scheduler``: Dask is not installed, the scheduler cannot be reached, or a
#: worker lacks this tlslog version.
EXIT_ENGINE = 9
#: A bug in tlslog (an unexpected exception; ``--debug`` shows the traceback).
EXIT_INTERNAL = 70
#: Interrupted with Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


class TlslogError(Exception):
    """Base class: an error with a one-line message meant for the user."""

    exit_code = 1


class InputError(TlslogError):
    """An input that could not be read; the run goes on with the other inputs."""

    exit_code = EXIT_INPUT

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


class DamagedInput(InputError):
    """An input read only in part: its lines up to the damage were used."""

    exit_code = EXIT_DAMAGED


class NoEntries(InputError):
    """A journal read that printed nothing (wrong unit, no permission): like a file without any
    Postfix line, exit `EXIT_NO_POSTFIX`, with a message that says where to look."""

    exit_code = EXIT_NO_POSTFIX


class StoreError(TlslogError):
    """The history store cannot be opened or written; a failed write is rolled back."""

    exit_code = EXIT_STORE

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class EngineError(TlslogError):
    """The distributed engine cannot be used (not installed, scheduler unreachable)."""

    exit_code = EXIT_ENGINE
