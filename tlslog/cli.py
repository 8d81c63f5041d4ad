"""Command line: parse options, call the library, hand the result to a writer. Nothing more.

Errors become one line on stderr and an exit code (`tlslog.errors`); a traceback only with
``--debug``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, TextIO

import typer

from . import __version__
from .errors import (
    EXIT_FAIL_UNDER,
    EXIT_FINDINGS,
    EXIT_INTERNAL,
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_NO_POSTFIX,
    EXIT_OK,
    EXIT_STRICT,
    DamagedInput,
    InputError,
    TlslogError,
)

if TYPE_CHECKING:
    from rich.console import RenderableType

    from .analysis import Analysis, Options
    from .classify import Classifier
    from .engine.cluster import Cluster
    from .filters import Filter
    from .history import Cursor
    from .schema import Projection
    from .sources import Source

HELP = """\
How much of your mail crosses the wire encrypted? tlslog reads Postfix logs and tells, for
every inbound SMTP session and every outbound delivery, whether it used TLS.

\b
Examples:
  tlslog report /var/log/maillog
  tlslog report /var/log/maillog*            (rotated logs, .gz/.bz2/.xz, oldest first)
  zcat maillog.*.gz | tlslog report
  tlslog report --journal                    (journalctl for postfix@-.service and postfix.service)
  tlslog report maillog --by week --format html > week.html
  tlslog ingest /var/log/maillog             (the history store; then: tlslog report --db PATH)
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
    csv = "csv"
    markdown = "markdown"


class ReportOutput(str, enum.Enum):
    """`report` writes these besides the `ReportFormat`s: a page people open, and metrics."""

    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"
    html = "html"
    prometheus = "prometheus"


class Direction(str, enum.Enum):
    inbound = "in"
    outbound = "out"
    mx = "mx"
    submission = "submission"


class PeerSort(str, enum.Enum):
    status = "status"
    plaintext = "plaintext"
    total = "total"
    coverage = "coverage"
    last_seen = "last-seen"
    name = "name"


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
Since = Annotated[Optional[str], typer.Option(
    metavar="WHEN", help="Only rows from then on: 2026-10-01, 2026-10-01T12:30, 7d, 12h, today, yesterday, "
                         "this-week, last-week, this-month, last-month.", show_default=False)]
Until = Annotated[Optional[str], typer.Option(
    metavar="WHEN", help="Only rows before then (same forms; a named period ends with it).", show_default=False)]
DirectionOption = Annotated[Optional[Direction], typer.Option(
    "--direction", help="Only inbound (in), outbound (out), MX or submission rows.", show_default=False)]
Service = Annotated[Optional[list[str]], typer.Option(
    "--service", metavar="NAME", help="Only rows of this service (as logged, e.g. postfix/submission/smtpd); "
                                      "repeatable.", show_default=False)]
Peer = Annotated[Optional[list[str]], typer.Option(
    "--peer", metavar="NAME|IP|CIDR|DOMAIN",
    help="Only rows of this peer: a host name, a domain (its hosts, or recipients there), an address or a "
         "network; repeatable.", show_default=False)]


class Engine(str, enum.Enum):
    local = "local"
    dask = "dask"


EngineOption = Annotated[Engine, typer.Option(
    "--engine", help="Where the scan runs: local (worker processes here) or dask (a Dask cluster: --scheduler, "
                     "else a LocalCluster of --jobs workers here; pip install 'tlslog[dask]').")]
Scheduler = Annotated[Optional[str], typer.Option(
    "--scheduler", metavar="URL", help="A Dask scheduler, e.g. tcp://HOST:8786: run the scan on its workers "
                                       "(implies --engine dask).", show_default=False)]


SkipBadFiles = Annotated[bool, typer.Option(
    "--skip-bad-files", help="With --engine dask: report the readable inputs when one cannot be read (exit code 1); "
                             "without it such a run prints nothing. The local engine always does this.")]


Db = Annotated[Optional[str], typer.Option(
    "--db", metavar="PATH", help="Read the history store (made by tlslog ingest) instead of log files.",
    show_default=False)]
ParquetDir = Annotated[Optional[str], typer.Option(
    "--parquet", metavar="DIR", help="Read the session table's Parquet days (written by tlslog ingest --parquet; "
                                     "DIR may be a URL) instead of log files.", show_default=False)]
Journal = Annotated[bool, typer.Option(
    "--journal", help="Read the journal: runs journalctl -o json for the Postfix units (see --unit).")]
Unit = Annotated[Optional[list[str]], typer.Option(
    "--unit", metavar="UNIT", help="With --journal: a unit to read (repeatable). Default: postfix@-.service and "
                                   "postfix.service (Debian's daemons log under postfix@-.service).",
    show_default=False)]


@dataclass(frozen=True)
class Inputs:
    """Where a command reads: log files (or standard input), the journal, or the history store."""

    files: list[str] | None = None
    journal: bool = False
    units: tuple[str, ...] = ()
    db: str | None = None
    parquet: str | None = None  # a folder written by ingest --parquet

    def check(self) -> None:
        """Exactly one of files, --journal and --db (none: standard input)."""
        given = [name for name, used in (("log files", bool(self.files)), ("--journal", self.journal),
                                         ("--db", self.db is not None), ("--parquet", self.parquet is not None))
                 if used]
        if len(given) > 1:
            hint = " (add logs to the store with: tlslog ingest --db PATH FILES)" if self.db is not None else ""
            raise typer.BadParameter(f"give {' or '.join(given)}, not both{hint}")
        if self.units and not self.journal:
            raise typer.BadParameter("--unit needs --journal", param_hint="'--unit'")


def _inputs(files: list[str] | None, journal: bool, unit: list[str] | None, db: str | None,
            parquet: str | None = None) -> Inputs:
    inputs = Inputs(files, journal, tuple(unit or ()), db, parquet)
    inputs.check()
    return inputs


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


def _filter(since: str | None, until: str | None, direction: Direction | None, service: list[str] | None,
            peer: list[str] | None) -> Filter:
    """The rows a command shows; a bad time is a usage error."""
    import datetime as dt

    from .filters import Filter, parse_when

    now = dt.datetime.now()
    times = {}
    for name, text, end in (("since", since, False), ("until", until, True)):
        if text is not None:
            try:
                times[name] = parse_when(text, now, end=end)
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint=f"'--{name}'") from None
    return Filter(times.get("since"), times.get("until"), direction.value if direction else None,
                  tuple(service or ()), tuple(p for p in peer or () if p.strip()))


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


def _run(inputs: Inputs | list[str] | None, jobs: int, year: int | None, timeout: float, strict: bool,
         debug: bool, *, columns: tuple[str, ...] | Projection | None = None, ordered: bool = True,
         keep_unparsed: int = 0, classifier: Classifier | None = None, rows: Filter | None = None,
         engine: Engine = Engine.local, scheduler: str | None = None, skip_bad_files: bool = False) -> Analysis:
    """Analyse the inputs (or read the store); with ``rows``, the session table holds only the
    rows it keeps (it is applied after settlement, and the engine is asked for what it reads)."""
    global _debug
    _debug = debug
    from .analysis import Options, analyze  # the engine (and pandas) only when a command runs
    from .classify import Classifier
    from .progress import progress_for

    if not isinstance(inputs, Inputs):
        inputs = Inputs(files=inputs)
    if rows:
        columns = rows.projection(columns)
    options = Options(jobs=jobs, year=year, timeout=timeout, keep_unparsed=keep_unparsed, columns=columns,
                      ordered=ordered, classifier=classifier or Classifier())
    if inputs.parquet is not None:
        from .analysis import Analysis
        from .parquet import read as read_parquet
        from .settle import Evidence

        with contextlib.ExitStack() as stack:
            cluster = _cluster(stack, engine, scheduler, jobs)
            frame, stats, versions, names = read_parquet(inputs.parquet, options.classifier,
                                                  since=rows.since if rows else None,
                                                  until=rows.until if rows else None,
                                                  mapper=cluster.map if cluster is not None else None)
        analysis = Analysis(frame, Evidence(), stats, names, postfix_versions=versions)
    elif inputs.db is not None:
        if engine is Engine.dask or scheduler is not None:
            raise typer.BadParameter("the history store is read here: --engine dask and --scheduler read log "
                                     "files and --parquet folders on the cluster", param_hint="'--db'")
        from .history import load
        from .store import Store

        with Store(os.path.expanduser(inputs.db)) as store:
            analysis = load(store, options, since=rows.since if rows else None, until=rows.until if rows else None)
    else:
        sources = _journal(inputs, rows, timeout)
        files = inputs.files or []
        _stdin_notice(files, sources)
        with contextlib.ExitStack() as stack:
            options = _on_cluster(options, stack, engine, scheduler, jobs)
            progress = stack.enter_context(progress_for(files))
            analysis = analyze(files, options, progress=progress, sources=sources)
        unreadable = [e for e in analysis.errors if not isinstance(e, DamagedInput)]
        if options.runner is not None and unreadable and not skip_bad_files:
            for error in unreadable:
                typer.echo(f"tlslog: {error}", err=True)
            typer.echo("tlslog: nothing reported: an input could not be read (--skip-bad-files reports the others)",
                       err=True)
            raise typer.Exit(EXIT_INPUT)
    for error in analysis.errors:
        typer.echo(f"tlslog: {error}", err=True)
    if rows:
        analysis.sessions = rows.apply(analysis.sessions)
    return analysis


def _cluster(stack: contextlib.ExitStack, engine: Engine, scheduler: str | None, jobs: int) -> Cluster | None:
    """The Dask cluster of ``--engine dask``/``--scheduler`` (None: the local engine), living as
    long as ``stack``."""
    if engine is not Engine.dask and scheduler is None:
        return None
    from .engine.cluster import Cluster

    cluster = stack.enter_context(Cluster(scheduler, workers=jobs))
    typer.echo(f"tlslog: Dask dashboard: {cluster.dashboard}" if cluster.dashboard
               else f"tlslog: Dask scheduler {scheduler} (it serves no dashboard)", err=True)
    return cluster


def _on_cluster(options: Options, stack: contextlib.ExitStack, engine: Engine, scheduler: str | None,
                jobs: int) -> Options:
    """``options`` with the Dask cluster's runner (unchanged for the local engine)."""
    cluster = _cluster(stack, engine, scheduler, jobs)
    if cluster is None:
        return options
    return dataclasses.replace(options, runner=cluster.run, whole_files=cluster.threads())


def _stdin_notice(files: list[str], sources: list[Source] | None) -> None:
    """Say that standard input is read when it is a terminal (else tlslog would seem to hang)."""
    if sources is None and (not files or "-" in files) and sys.stdin.isatty():
        typer.echo("tlslog: reading standard input, Ctrl-D to end", err=True)


def _journal(inputs: Inputs, rows: Filter | None, timeout: float) -> list[Source] | None:
    """The journal as the one source, when asked for (``--since`` passed on to journalctl)."""
    if not inputs.journal:
        return None
    from .journal import DEFAULT_UNITS, journal_moment, journal_source

    since = journal_moment(rows.since, margin=timeout) if rows is not None and rows.since is not None else None
    return [journal_source(inputs.units or DEFAULT_UNITS, since)]


def _exit_code(analysis: Analysis, strict: bool, *, extra: tuple[int, ...] = ()) -> int:
    codes = [e.exit_code for e in analysis.errors] + list(extra)
    if strict and analysis.stats.unparsed:
        typer.echo(f"tlslog: --strict: {analysis.stats.unparsed} lines were not understood "
                   "(see: tlslog unparsed FILES)", err=True)
        codes.append(EXIT_STRICT)
    stats = analysis.stats
    if not stats.postfix and analysis.sources:  # (inputs that could not be opened have their own error)
        read = ", ".join(analysis.sources)
        typer.echo(f"tlslog: warning: no Postfix line in {read} ({stats.read:,} lines read); expected syslog or "
                   "journal lines of postfix/smtpd, postfix/smtp and friends", err=True)
        codes.append(EXIT_NO_POSTFIX)
    return min(codes) if codes else EXIT_OK


def _write(format: str, data: dict, *, table: Callable[[dict], RenderableType], markdown: Callable[[dict], str],
           csv: Callable[[dict, TextIO], None] | None = None) -> None:
    """Write one report's data in the chosen format (the writers are in `tlslog.render`)."""
    from .render import print_renderable, write_json

    if format == "json":
        write_json(data, sys.stdout)
    elif format == "html":
        from .html import report_html

        sys.stdout.write(report_html(data))
    elif format == "prometheus":
        from .prometheus import report_prometheus

        sys.stdout.write(report_prometheus(data))
    elif format == "csv" and csv is not None:
        csv(data, sys.stdout)
    elif format == "markdown":
        sys.stdout.write(markdown(data))
    else:
        print_renderable(table(data), sys.stdout)


@app.command()
def report(
    files: Files = None,
    db: Db = None,
    parquet: ParquetDir = None,
    journal: Journal = False,
    unit: Unit = None,
    format: Annotated[ReportOutput, typer.Option(
        "--format", "-f", help="Output format: html is one self-contained page (charts with --by week); prometheus "
                               "is the text exposition format (node_exporter's textfile collector).")
    ] = ReportOutput.table,
    peers: Annotated[int, typer.Option(min=0, help="How many top plaintext peers and downgrades to list.")] = 10,
    by: Annotated[Optional[Period], typer.Option(
        "--by", help="Also show coverage per period (ISO weeks, Monday first), with the trend.",
        show_default=False)] = None,
    fail_under: Annotated[Optional[str], typer.Option(
        "--fail-under", metavar="PERCENT|in=P,out=P,mx=P,submission=P",
        help=f"Exit with code {EXIT_FAIL_UNDER} when TLS coverage of mail is below this (every direction, or "
             "those named).", show_default=False)] = None,
    since: Since = None,
    until: Until = None,
    direction: DirectionOption = None,
    service: Service = None,
    peer: Peer = None,
    internal: Internal = None,
    internal_service: InternalService = None,
    submission_service: SubmissionService = None,
    jobs: Jobs = 0,
    engine: EngineOption = Engine.local,
    scheduler: Scheduler = None,
    skip_bad_files: SkipBadFiles = False,
    year: Year = None,
    timeout: Timeout = 3600.0,
    strict: Strict = False,
    debug: Debug = False,
) -> None:
    """TLS coverage of mail, inbound (MX, submission) and outbound, with plaintext peers and downgrades.

    \b
    Examples:
      tlslog report /var/log/maillog
      tlslog report --by week --since last-month /var/log/maillog*
      tlslog report --format json maillog.1 maillog
      tlslog report --fail-under in=90,out=95 /var/log/maillog   (exit 5 below it)
    """
    from .render import report_markdown, report_renderable, write_report_csv
    from .report import COLUMNS, build_report, input_summary, parse_fail_under, shortfalls

    inputs = _inputs(files, journal, unit, db, parquet)
    classifier = _classifier(internal, internal_service, submission_service)
    rows = _filter(since, until, direction, service, peer)
    thresholds: dict[str, float] = {}
    if fail_under is not None:
        try:
            thresholds = parse_fail_under(fail_under)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="'--fail-under'") from None
    with _user_errors():
        analysis = _run(inputs, jobs, year, timeout, strict, debug, columns=COLUMNS, ordered=False,
                        classifier=classifier, rows=rows, engine=engine, scheduler=scheduler,
                        skip_bad_files=skip_bad_files)
        data = build_report(analysis.sessions, analysis.stats, peers=peers, by=by.value if by else None,
                            postfix_versions=analysis.postfix_versions,
                            inputs=input_summary(analysis.sources, analysis.errors))
        _write(format.value, data, table=report_renderable, markdown=report_markdown, csv=write_report_csv)
        below = shortfalls(data, thresholds)
        if below:
            typer.echo(f"tlslog: coverage of mail below --fail-under: {'; '.join(below)}", err=True)
    raise typer.Exit(_exit_code(analysis, strict, extra=(EXIT_FAIL_UNDER,) if below else ()))


@app.command(name="peers")
def peers_command(
    files: Files = None,
    db: Db = None,
    journal: Journal = False,
    unit: Unit = None,
    format: Annotated[ReportFormat, typer.Option("--format", "-f", help="Output format.")] = ReportFormat.table,
    plaintext: Annotated[bool, typer.Option("--plaintext", help="Only peers with plaintext sessions or "
                                                               "deliveries.")] = False,
    limit: Annotated[int, typer.Option(min=0, help="Rows per list; 0 = all.")] = 20,
    sort: Annotated[PeerSort, typer.Option(help="Order: status (downgrades first, then by plaintext), "
                                                "plaintext, total, coverage, last-seen, name.")] = PeerSort.status,
    since: Since = None,
    until: Until = None,
    direction: DirectionOption = None,
    service: Service = None,
    peer: Peer = None,
    internal: Internal = None,
    internal_service: InternalService = None,
    submission_service: SubmissionService = None,
    jobs: Jobs = 0,
    engine: EngineOption = Engine.local,
    scheduler: Scheduler = None,
    skip_bad_files: SkipBadFiles = False,
    year: Year = None,
    timeout: Timeout = 3600.0,
    strict: Strict = False,
    debug: Debug = False,
) -> None:
    """Peers, inbound (clients, addresses, registered domains) and outbound (recipient domains,
    relays): verdict counts, protocols, trust, first and last seen, and a status: always-tls,
    sometimes-plaintext, always-plaintext or downgrade (plaintext after TLS).

    \b
    Examples:
      tlslog peers --plaintext /var/log/maillog
      tlslog peers --format csv --limit 0 maillog > peers.csv
    """
    from .peers import COLUMNS, build_peers
    from .render import peers_markdown, peers_renderable, write_peers_csv

    inputs = _inputs(files, journal, unit, db)
    classifier = _classifier(internal, internal_service, submission_service)
    rows = _filter(since, until, direction, service, peer)
    with _user_errors():
        analysis = _run(inputs, jobs, year, timeout, strict, debug, columns=COLUMNS, ordered=False,
                        classifier=classifier, rows=rows, engine=engine, scheduler=scheduler,
                        skip_bad_files=skip_bad_files)
        data = build_peers(analysis.sessions, plaintext=plaintext, limit=limit, sort=sort.value)
        _write(format.value, data, table=peers_renderable, markdown=peers_markdown, csv=write_peers_csv)
    raise typer.Exit(_exit_code(analysis, strict))


class TextFormat(str, enum.Enum):
    """The formats of `policy` and `doctor`: no CSV, their rows are not one table."""

    table = "table"
    json = "json"
    markdown = "markdown"


@app.command()
def policy(
    files: Files = None,
    db: Db = None,
    journal: Journal = False,
    unit: Unit = None,
    map: Annotated[bool, typer.Option("--map", help="Print a draft smtp_tls_policy_maps table (postmap input; "
                                                    "--format json: its entries).")] = False,
    min_deliveries: Annotated[int, typer.Option(
        "--min-deliveries", min=1, metavar="N",
        help="Raise a domain above may only with at least N deliveries in the period.")] = 10,
    format: Annotated[TextFormat, typer.Option("--format", "-f", help="Output format.")] = TextFormat.table,
    limit: Annotated[int, typer.Option(min=0, help="Rows per list; 0 = all (--map lists every domain).")] = 20,
    since: Since = None,
    until: Until = None,
    peer: Peer = None,
    internal: Internal = None,
    internal_service: InternalService = None,
    submission_service: SubmissionService = None,
    jobs: Jobs = 0,
    engine: EngineOption = Engine.local,
    scheduler: Scheduler = None,
    skip_bad_files: SkipBadFiles = False,
    year: Year = None,
    timeout: Timeout = 3600.0,
    strict: Strict = False,
    debug: Debug = False,
) -> None:
    """What breaks if TLS is required: per destination domain, the deliveries each
    smtp_tls_security_level (encrypt, verify, dane-only) would have failed and the strongest
    level every delivery met; inbound, what smtpd_tls_security_level = encrypt would have refused.

    \b
    Examples:
      tlslog policy /var/log/maillog
      tlslog policy --map --since last-month --db ~/.local/share/tlslog/history.db > tls_policy
    """
    from .policy import COLUMNS, build_policy, policy_map, policy_map_text
    from .render import policy_markdown, policy_renderable, write_json

    inputs = _inputs(files, journal, unit, db)
    classifier = _classifier(internal, internal_service, submission_service)
    rows = _filter(since, until, None, None, peer)
    with _user_errors():
        analysis = _run(inputs, jobs, year, timeout, strict, debug, columns=COLUMNS, ordered=False,
                        classifier=classifier, rows=rows, engine=engine, scheduler=scheduler,
                        skip_bad_files=skip_bad_files)
        data = build_policy(analysis.sessions, min_deliveries=min_deliveries, limit=0 if map else limit)
        if map and format is TextFormat.json:
            write_json({"period": data["period"], "min_deliveries": min_deliveries, "entries": policy_map(data)},
                       sys.stdout)
        elif map:
            sys.stdout.write(policy_map_text(data))
        else:
            _write(format.value, data, table=policy_renderable, markdown=policy_markdown)
    raise typer.Exit(_exit_code(analysis, strict))


class TlsrptFormat(str, enum.Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"


@app.command()
def tlsrpt(
    files: Files = None,
    db: Db = None,
    journal: Journal = False,
    unit: Unit = None,
    domain: Annotated[Optional[list[str]], typer.Option(
        "--domain", metavar="DOMAIN", help="Only this destination (policy) domain; repeatable.",
        show_default=False)] = None,
    organization: Annotated[Optional[str], typer.Option(
        "--organization", metavar="NAME", help="organization-name of the reports (default: the logging host).",
        show_default=False)] = None,
    contact: Annotated[Optional[str], typer.Option(
        "--contact", metavar="ADDRESS", help="contact-info of the reports (default: postmaster@ the logging host).",
        show_default=False)] = None,
    format: Annotated[TlsrptFormat, typer.Option("--format", "-f", help="Output format: json (a list of reports), "
                                                                        "jsonl (one per line), table.")] = TlsrptFormat.json,
    since: Since = None,
    until: Until = None,
    internal: Internal = None,
    internal_service: InternalService = None,
    jobs: Jobs = 0,
    engine: EngineOption = Engine.local,
    scheduler: Scheduler = None,
    skip_bad_files: SkipBadFiles = False,
    year: Year = None,
    timeout: Timeout = 3600.0,
    strict: Strict = False,
    debug: Debug = False,
) -> None:
    """What your peers' TLSRPT reports will say: RFC 8460 reports (JSON) per destination domain
    and day, from Postfix's TLSRPT lines (3.10+) or, where there are none, from the deliveries.

    \b
    Examples:
      tlslog tlsrpt /var/log/maillog --domain example.net
      tlslog tlsrpt --db ~/.local/share/tlslog/history.db --since yesterday --format jsonl
    """
    from .render import print_renderable, tlsrpt_renderable, write_json
    from .tlsrpt import COLUMNS, build_reports

    inputs = _inputs(files, journal, unit, db)
    classifier = _classifier(internal, internal_service, None)
    rows = _filter(since, until, None, None, None)
    with _user_errors():
        analysis = _run(inputs, jobs, year, timeout, strict, debug, columns=COLUMNS, ordered=False,
                        classifier=classifier, rows=rows, engine=engine, scheduler=scheduler,
                        skip_bad_files=skip_bad_files)
        hosts = analysis.sessions["host"].dropna()
        host = str(hosts.iloc[0]) if len(hosts) else "localhost"
        lines = analysis.tlsrpt
        if rows and (rows.since is not None or rows.until is not None):
            days = set(analysis.sessions["day"].tolist())
            lines = {entry: n for entry, n in lines.items() if entry[0] in days}
        reports = build_reports(analysis.sessions, lines, organization=organization or host,
                                contact=contact or f"postmaster@{host}",
                                domains=tuple(d.strip().lower() for d in domain or ()))
        if format is TlsrptFormat.json:
            write_json([r["report"] for r in reports], sys.stdout)
        elif format is TlsrptFormat.jsonl:
            import json

            for r in reports:
                sys.stdout.write(json.dumps(r["report"], ensure_ascii=False) + "\n")
        else:
            print_renderable(tlsrpt_renderable(reports), sys.stdout)
    raise typer.Exit(_exit_code(analysis, strict))


@app.command()
def doctor(
    config_file: Annotated[Optional[str], typer.Argument(
        metavar="[POSTCONF_N]", help="postconf -n output (or a main.cf); '-': standard input. Default: run "
                                     "postconf -n (with --config-dir), else read --config-dir/main.cf.",
        show_default=False)] = None,
    config_dir: Annotated[Optional[str], typer.Option(
        "--config-dir", metavar="DIR", help="The Postfix configuration directory (postconf -c DIR).",
        show_default=False)] = None,
    master: Annotated[Optional[str], typer.Option(
        "--master", metavar="FILE", help="A master.cf: its -o overrides are checked per service.",
        show_default=False)] = None,
    log: Annotated[Optional[list[str]], typer.Option(
        "--log", metavar="FILE", help="Logs that configuration wrote, to compare with (repeatable).",
        show_default=False)] = None,
    db: Db = None,
    format: Annotated[TextFormat, typer.Option("--format", "-f", help="Output format.")] = TextFormat.table,
    jobs: Jobs = 0,
    year: Year = None,
    timeout: Timeout = 3600.0,
    debug: Debug = False,
) -> None:
    """What in the Postfix configuration keeps TLS weak or the log blind: each finding with why it
    matters and the line to set. Exit code 8 when a warning or an error is found.

    \b
    Examples:
      tlslog doctor                                  # runs postconf -n
      postconf -n | tlslog doctor - --log /var/log/maillog
      tlslog doctor main.cf --master master.cf --format json
    """
    from .doctor import COLUMNS, diagnose, log_evidence
    from .postconf import parse_main, parse_master
    from .render import doctor_markdown, doctor_renderable

    with _user_errors():
        config = parse_main(_configuration(config_file, config_dir))
        if master is not None:
            parse_master(_read_text(master), config)
        evidence = None
        analysis = None
        if log or db:
            analysis = _run(_inputs(log, False, None, db), jobs, year, timeout, False, debug, columns=COLUMNS,
                            ordered=False)
            evidence = log_evidence(analysis.sessions)
        findings = diagnose(config, evidence)
        data: dict = {"findings": [f.as_dict() for f in findings],
                      "summary": {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "info")},
                      "logs": None if evidence is None else dataclasses.asdict(evidence)}
        _write(format.value, data, table=doctor_renderable, markdown=doctor_markdown)
    codes = [EXIT_FINDINGS] if data["summary"]["error"] or data["summary"]["warning"] else []
    raise typer.Exit(_exit_code(analysis, False, extra=tuple(codes)) if analysis is not None else
                     (codes[0] if codes else EXIT_OK))


def _read_text(path: str) -> str:
    """A configuration file's text ('-': standard input); an unreadable file is an input error."""
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError as exc:
        raise InputError(path, exc.strerror or str(exc)) from exc


def _configuration(path: str | None, config_dir: str | None) -> str:
    """The configuration text: the file given, ``postconf -n`` when Postfix is installed here,
    or ``--config-dir``/main.cf."""
    if path is not None:
        return _read_text(path)
    postconf = shutil.which("postconf")
    if postconf is not None:
        command = [postconf, *(["-c", config_dir] if config_dir else []), "-n"]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return done.stdout
        raise InputError(" ".join(command), (done.stderr.strip().splitlines() or ["failed"])[-1])
    if config_dir is not None:
        return _read_text(os.path.join(config_dir, "main.cf"))
    raise InputError("postconf -n", "postconf is not installed here: give postconf -n output as a file "
                                    "(or - for standard input), or --config-dir DIR")


@app.command()
def sessions(
    files: Files = None,
    db: Db = None,
    journal: Journal = False,
    unit: Unit = None,
    format: Annotated[SessionFormat, typer.Option("--format", "-f", help="Output format.")] = SessionFormat.table,
    since: Since = None,
    until: Until = None,
    direction: DirectionOption = None,
    service: Service = None,
    peer: Peer = None,
    internal: Internal = None,
    internal_service: InternalService = None,
    submission_service: SubmissionService = None,
    jobs: Jobs = 0,
    engine: EngineOption = Engine.local,
    scheduler: Scheduler = None,
    skip_bad_files: SkipBadFiles = False,
    year: Year = None,
    timeout: Timeout = 3600.0,
    strict: Strict = False,
    debug: Debug = False,
) -> None:
    """One row per inbound session and per outbound delivery, with its TLS verdict.

    \b
    Examples:
      tlslog sessions maillog --format jsonl > sessions.jsonl
      tlslog sessions maillog --format csv --direction out --since 7d > deliveries.csv
    """
    from .render import print_renderable, sessions_table, write_sessions_csv, write_sessions_jsonl

    inputs = _inputs(files, journal, unit, db)
    classifier = _classifier(internal, internal_service, submission_service)
    rows = _filter(since, until, direction, service, peer)
    with _user_errors():
        analysis = _run(inputs, jobs, year, timeout, strict, debug, classifier=classifier, rows=rows, engine=engine,
                        scheduler=scheduler,
                        skip_bad_files=skip_bad_files)
        frame = analysis.sessions
        if format is SessionFormat.jsonl:
            write_sessions_jsonl(frame, sys.stdout)
        elif format is SessionFormat.csv:
            write_sessions_csv(frame, sys.stdout)
        else:
            width = (os.get_terminal_size(sys.stdout.fileno()).columns or 80) if sys.stdout.isatty() else None
            print_renderable(sessions_table(frame, width=width), sys.stdout, width=width or sys.maxsize)
    raise typer.Exit(_exit_code(analysis, strict))


DbPath = Annotated[Optional[str], typer.Option(
    "--db", metavar="PATH", help="The history store. Default: $XDG_DATA_HOME/tlslog/history.db "
                                 "(~/.local/share/tlslog/history.db).", show_default=False)]


def _store_path(db: str | None) -> str:
    from .store import default_path

    return os.path.expanduser(db) if db is not None else str(default_path())


@app.command()
def ingest(
    files: Files = None,
    db: DbPath = None,
    journal: Journal = False,
    unit: Unit = None,
    since: Annotated[Optional[str], typer.Option(
        metavar="WHEN", help="With --journal: read from then on (passed to journalctl, an hour early: the "
                             "sessions under way then are read whole). Without it, --journal goes on after the "
                             "last entry the store took (journalctl's cursor, kept in the store).",
        show_default=False)] = None,
    parquet: Annotated[Optional[str], typer.Option(
        "--parquet", metavar="DIR", help="Also write the days this ingest touched, as the store has them, as "
                                         "Parquet (DIR/date=YYYY-MM-DD/sessions.parquet; DIR may be a URL such as "
                                         "s3://bucket/days; needs pyarrow).",
        show_default=False)] = None,
    jobs: Jobs = 0,
    engine: EngineOption = Engine.local,
    scheduler: Scheduler = None,
    year: Year = None,
    timeout: Timeout = 3600.0,
    strict: Strict = False,
    debug: Debug = False,
) -> None:
    """Add the sessions of log files (or standard input, or the journal) to the history store.

    Ingesting the same lines again counts nothing twice; a session cut off at the end of one
    ingest is completed by the next. Reports read the store with --db.

    \b
    Examples:
      tlslog ingest /var/log/maillog.1 /var/log/maillog
      tlslog ingest --journal --since yesterday
      tlslog report --db ~/.local/share/tlslog/history.db --since last-month --by week
    """
    global _debug
    _debug = debug
    inputs = _inputs(files, journal, unit, None)
    rows = _filter(since, None, None, None, None)
    if since is not None and not journal:
        raise typer.BadParameter("--since needs --journal (a file is ingested whole)", param_hint="'--since'")
    path = _store_path(db)
    with _user_errors():
        from .analysis import Options
        from .history import ingest as add
        from .progress import progress_for
        from .store import Store

        with contextlib.ExitStack() as stack:
            sources, cursor = _ingest_sources(inputs, rows, timeout, stack)
            _stdin_notice(files or [], sources)
            store = stack.enter_context(Store(path, write=True))
            options = _on_cluster(Options(jobs=jobs, year=year, timeout=timeout), stack, engine, scheduler, jobs)
            progress = stack.enter_context(progress_for(files or []))
            result, analysis = add(store, files or [], options, progress, sources=sources, cursor=cursor)
            if parquet is not None:
                from .parquet import export_days

                days = {int(d) for d in analysis.sessions["day"].unique()}
                written = export_days(store, days, parquet)
                typer.echo(f"tlslog: {parquet}: {len(days)} day(s) written, {written:,} sessions", err=True)
        for error in analysis.errors:
            typer.echo(f"tlslog: {error}", err=True)
        new = sum(1 for _, fresh in result.inputs if fresh)
        typer.echo(f"tlslog: {path}: {result.lines:,} lines of {len(result.inputs)} input(s) ({new} new): "
                   f"{result.added:,} sessions added, {result.replaced:,} completed, {result.duplicate:,} already "
                   f"stored; {result.open_sessions:,} open, to be continued", err=True)
    raise typer.Exit(_exit_code(analysis, strict))


def _ingest_sources(inputs: Inputs, rows: Filter, timeout: float,
                    stack: contextlib.ExitStack) -> tuple[list[Source] | None, Cursor | None]:
    """What an ingest reads; ``--journal`` without ``--since`` goes on after the last entry the
    store took (journalctl's cursor, handed over in a file that lives as long as ``stack``)."""
    if not inputs.journal or rows.since is not None:
        return _journal(inputs, rows, timeout), None
    from .history import Cursor
    from .journal import DEFAULT_UNITS, journal_source

    units = inputs.units or DEFAULT_UNITS
    cursor = Cursor(f"journal-cursor {' '.join(units)}",
                    Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tlslog-"))) / "cursor")
    return [journal_source(units, cursor_file=str(cursor.path))], cursor


db_app = typer.Typer(help="Look after the history store: what it holds, forget old days.", no_args_is_help=True,
                     rich_markup_mode=None, context_settings={"help_option_names": ["-h", "--help"]})
app.add_typer(db_app, name="db")


class InfoFormat(str, enum.Enum):
    table = "table"
    json = "json"


@db_app.command(name="info")
def db_info(
    db: DbPath = None,
    format: Annotated[InfoFormat, typer.Option("--format", "-f", help="Output format.")] = InfoFormat.table,
    debug: Debug = False,
) -> None:
    """Sessions stored, the days and weeks they cover, ingests and the inputs seen."""
    global _debug
    _debug = debug
    with _user_errors():
        from .history import info
        from .render import db_info_text, write_json
        from .store import Store

        with Store(_store_path(db)) as store:
            data = info(store)
        if format is InfoFormat.json:
            write_json(data, sys.stdout)
        else:
            sys.stdout.write(db_info_text(data))
    raise typer.Exit(EXIT_OK)


@db_app.command(name="prune")
def db_prune(
    before: Annotated[str, typer.Option(metavar="WHEN", help="Forget the days before this one: 2026-01-01, 90d, "
                                                             "last-month...")],
    db: DbPath = None,
    debug: Debug = False,
) -> None:
    """Forget the sessions (and their evidence) of the days before a date."""
    global _debug
    _debug = debug
    import datetime as dt

    from .filters import parse_when

    try:
        moment = parse_when(before, dt.datetime.now())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--before'") from None
    with _user_errors():
        from .history import prune
        from .store import Store

        with Store(_store_path(db), write=True) as store:
            done = prune(store, moment)
        typer.echo(f"tlslog: forgot {done['sessions']:,} sessions of the days before {done['before']}", err=True)
    raise typer.Exit(EXIT_OK)


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
    from .escape import terminal
    from .shapes import group_by_shape

    with _user_errors():
        analysis = _run(files, jobs, year, 3600.0, False, debug, columns=(), ordered=False, keep_unparsed=100_000)
        for shape, items in group_by_shape(analysis.unparsed):
            print(f"{len(items):>8}  {terminal(shape)}")
            for item in items[:examples]:
                print(f"          line {item.line + 1}: {terminal(item.tag)}: {terminal(item.message)}")
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
    except (typer.Exit, typer.BadParameter):  # typer prints a usage error, exit code 2
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
