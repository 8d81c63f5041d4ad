"""Command line: parse options, call the library, hand the result to a writer. Nothing more.

Errors become one line on stderr and an exit code (`tlslog.errors`); a traceback only with
``--debug``.
"""

from __future__ import annotations

import contextlib
import enum
import os
import signal
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from . import __version__
from .errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_STRICT, TlslogError

if TYPE_CHECKING:
    from .analysis import Analysis
    from .classify import Classifier
    from .schema import Projection

HELP = """\
How much of your mail crosses the wire encrypted? tlslog reads Postfix logs and tells, for
every inbound SMTP session and every outbound delivery, whether it used TLS.

\b
Examples:
  tlslog report /var/log/maillog
  tlslog report /var/log/maillog*            (rotated logs, .gz/.bz2/.xz, oldest first)
  zcat maillog.*.gz | tlslog report
  journalctl -u postfix -o json | tlslog report --format json
  tlslog sessions maillog --format jsonl > sessions.jsonl
  tlslog unparsed maillog                    (lines tlslog did not understand)
"""

app = typer.Typer(help=HELP, add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  pretty_exceptions_enable=False, context_settings={"help_option_names": ["-h", "--help"]})


class SessionFormat(str, enum.Enum):
    table = "table"
    jsonl = "jsonl"
    csv = "csv"


class Period(str, enum.Enum):
    day = "day"
    week = "week"
    month = "month"


class ReportFormat(str, enum.Enum):
    table = "table"
    json = "json"


Files = Annotated[Optional[list[str]], typer.Argument(
    help="Log files or globs (rotated and compressed logs welcome). Standard input if none, or '-'.",
    show_default=False)]
Jobs = Annotated[int, typer.Option("--jobs", "-j", min=0, help="Worker processes; 0 = one per CPU core.")]
Year = Annotated[Optional[int], typer.Option(
    help="Year of the first syslog line (syslog stamps have none). Default: this year, or last year "
         "if that would put the log in the future.", show_default=False)]
Timeout = Annotated[float, typer.Option(
    min=1, help="Seconds of silence after which an unfinished session is closed (verdict by evidence).")]
Strict = Annotated[bool, typer.Option(
    help=f"Exit with code {EXIT_STRICT} if any smtp/smtpd/tlsproxy line was not understood.")]
Debug = Annotated[bool, typer.Option(help="Show tracebacks of unexpected errors.")]
Internal = Annotated[Optional[list[str]], typer.Option(
    "--internal", metavar="CIDR,...|none",
    help="Networks whose peers are hops inside the mail system, besides loopback (counted apart from mail "
         "on the wire); 'none': count every row as mail on the wire.", show_default=False)]
InternalService = Annotated[Optional[list[str]], typer.Option(
    "--internal-service", metavar="NAME",
    help="A service whose rows are internal hops (as logged, e.g. postfix/10025/smtpd); repeatable.",
    show_default=False)]
SubmissionService = Annotated[Optional[list[str]], typer.Option(
    "--submission-service", metavar="NAME",
    help="A service that takes submission (besides …/submission, …/submissions, …/smtps, …/msa); repeatable.",
    show_default=False)]


def _classifier(internal: list[str] | None, internal_service: list[str] | None,
                submission_service: list[str] | None) -> Classifier:
    """The roles-and-hops rules of the command line; a bad network is a usage error."""
    from .classify import Classifier, parse_networks

    texts = internal or []
    hops = "none" not in [t.strip().lower() for t in texts]
    networks: tuple[str, ...] = ()
    for text in texts:
        if text.strip().lower() == "none":
            continue
        try:
            networks += parse_networks(text)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="'--internal'") from None
    return Classifier(networks, frozenset(internal_service or ()), frozenset(submission_service or ()), hops)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tlslog {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """How much of your mail crosses the wire encrypted?"""


_debug = False


def _run(files: list[str] | None, jobs: int, year: int | None, timeout: float, strict: bool, debug: bool,
         *, columns: tuple[str, ...] | Projection | None = None, ordered: bool = True,
         keep_unparsed: int = 0, classifier: Classifier | None = None) -> Analysis:
    global _debug
    _debug = debug
    from .analysis import Options, analyze  # the engine (and pandas) only when a command runs
    from .progress import progress_for

    from .classify import Classifier

    options = Options(jobs=jobs, year=year, timeout=timeout, keep_unparsed=keep_unparsed, columns=columns,
                      ordered=ordered, classifier=classifier or Classifier())
    with progress_for(files or []) as progress:
        analysis = analyze(files or [], options, progress=progress)
    for error in analysis.errors:
        typer.echo(f"tlslog: {error}", err=True)
    return analysis


def _exit_code(analysis: Analysis, strict: bool) -> int:
    codes = [e.exit_code for e in analysis.errors]
    if strict and analysis.stats.unparsed:
        typer.echo(f"tlslog: --strict: {analysis.stats.unparsed} lines were not understood "
                   "(see: tlslog unparsed FILES)", err=True)
        codes.append(EXIT_STRICT)
    return min(codes) if codes else EXIT_OK


@app.command()
def report(
    files: Files = None,
    format: Annotated[ReportFormat, typer.Option("--format", "-f", help="Output format.")] = ReportFormat.table,
    peers: Annotated[int, typer.Option(min=0, help="How many top plaintext peers to list.")] = 10,
    by: Annotated[Optional[Period], typer.Option(
        "--by", help="Also show coverage per period (ISO weeks, Monday first), with the trend.",
        show_default=False)] = None,
    internal: Internal = None,
    internal_service: InternalService = None,
    submission_service: SubmissionService = None,
    jobs: Jobs = 0,
    year: Year = None,
    timeout: Timeout = 3600.0,
    strict: Strict = False,
    debug: Debug = False,
) -> None:
    """TLS coverage report: inbound and outbound verdict counts, protocols, trust, peers.

    \b
    Examples:
      tlslog report /var/log/maillog
      tlslog report --format json maillog.1 maillog
    """
    from .render import print_renderable, report_renderable, write_json
    from .report import COLUMNS, build_report

    classifier = _classifier(internal, internal_service, submission_service)
    with _user_errors():
        analysis = _run(files, jobs, year, timeout, strict, debug, columns=COLUMNS, ordered=False,
                        classifier=classifier)
        data = build_report(analysis.sessions, analysis.stats, peers=peers, by=by.value if by else None)
        if format is ReportFormat.json:
            write_json(data, sys.stdout)
        else:
            print_renderable(report_renderable(data), sys.stdout)
    raise typer.Exit(_exit_code(analysis, strict))


@app.command()
def sessions(
    files: Files = None,
    format: Annotated[SessionFormat, typer.Option("--format", "-f", help="Output format.")] = SessionFormat.table,
    internal: Internal = None,
    internal_service: InternalService = None,
    submission_service: SubmissionService = None,
    jobs: Jobs = 0,
    year: Year = None,
    timeout: Timeout = 3600.0,
    strict: Strict = False,
    debug: Debug = False,
) -> None:
    """One row per inbound session and per outbound delivery, with its TLS verdict.

    \b
    Examples:
      tlslog sessions maillog --format jsonl > sessions.jsonl
      tlslog sessions maillog --format csv > sessions.csv
    """
    from .render import print_renderable, sessions_table, write_sessions_csv, write_sessions_jsonl

    classifier = _classifier(internal, internal_service, submission_service)
    with _user_errors():
        analysis = _run(files, jobs, year, timeout, strict, debug, classifier=classifier)
        frame = analysis.sessions
        if format is SessionFormat.jsonl:
            write_sessions_jsonl(frame, sys.stdout)
        elif format is SessionFormat.csv:
            write_sessions_csv(frame, sys.stdout)
        else:
            print_renderable(sessions_table(frame), sys.stdout, width=None if sys.stdout.isatty() else 160)
    raise typer.Exit(_exit_code(analysis, strict))


@app.command()
def unparsed(
    files: Files = None,
    examples: Annotated[int, typer.Option(min=1, help="Example lines shown per shape.")] = 2,
    jobs: Jobs = 0,
    year: Year = None,
    debug: Debug = False,
) -> None:
    """List the smtp/smtpd/tlsproxy lines no rule understood, grouped by shape.

    Send the output to the tlslog developers: every shape becomes a grammar rule.

    \b
    Example:
      tlslog unparsed /var/log/maillog
    """
    from .shapes import group_by_shape

    with _user_errors():
        analysis = _run(files, jobs, year, 3600.0, False, debug, columns=(), ordered=False, keep_unparsed=100_000)
        for shape, items in group_by_shape(analysis.unparsed):
            print(f"{len(items):>8}  {shape}")
            for item in items[:examples]:
                print(f"          line {item.line + 1}: {item.tag}: {item.message}")
        stats = analysis.stats
        print(f"tlslog: {stats.unparsed} unparsed of {stats.postfix} Postfix lines ({stats.read} read)",
              file=sys.stderr)
    raise typer.Exit(_exit_code(analysis, False))


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Turn everything that can go wrong in a command into a message and an exit code."""
    try:
        yield
        sys.stdout.flush()
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        print("tlslog: interrupted", file=sys.stderr)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except BrokenPipeError:
        _quiet_broken_pipe()
    except TlslogError as exc:
        if _debug:
            raise
        print(f"tlslog: {exc}", file=sys.stderr)
        raise typer.Exit(exc.exit_code) from None
    except Exception as exc:
        if _debug:
            raise
        print(f"tlslog: internal error: {type(exc).__name__}: {exc} (run again with --debug for details)",
              file=sys.stderr)
        raise typer.Exit(EXIT_INTERNAL) from None


def _quiet_broken_pipe() -> None:
    """stdout went away (``tlslog report | head``): leave quietly, like other Unix tools."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise typer.Exit(128 + signal.SIGPIPE)


def main() -> None:
    """Console entry point (``tlslog``, ``python -m tlslog``)."""
    try:
        app(prog_name="tlslog")
    except KeyboardInterrupt:  # before a command started
        print("tlslog: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
