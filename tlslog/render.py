"""Writers: one per output format, shared by every command. Nothing here computes results.

Sessions: ``jsonl`` (the stable export contract), ``csv``, ``table``. Report: ``json`` (the
stable report contract) and ``table`` (a rich layout to read at a glance).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

import pandas as pd
from rich import box
from rich.columns import Columns
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from . import schema
from .escape import csv_cell, markdown_cell
from .escape import terminal as _safe
from .timestamps import format_wall

__all__ = [
    "EXPORT_FIELDS",
    "report_renderable",
    "session_records",
    "sessions_table",
    "write_json",
    "write_sessions_csv",
    "write_sessions_jsonl",
]

#: Field order of one exported session (`tlslog.schema`: the exported columns, in order).
EXPORT_FIELDS = schema.EXPORT_COLUMNS
_INT_FIELDS = frozenset(c.name for c in schema.SESSION if c.kind.startswith("int"))


def _plain(value: object) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def session_records(frame: pd.DataFrame) -> Iterator[dict]:
    """Rows as JSON-ready dicts in `EXPORT_FIELDS` order."""
    present = [name for name in EXPORT_FIELDS if name in frame.columns]
    columns = {name: frame[name].astype(object).tolist() for name in (*present, "offset") if name in frame.columns}
    offsets = columns.pop("offset", [None] * len(frame))
    for i in range(len(frame)):
        offset = _plain(offsets[i])
        record: dict = {}
        for name in present:
            value = _plain(columns[name][i])
            if name in ("start", "end"):
                value = format_wall(value, None if offset is None else int(offset))
            elif name == "pid":
                value = int(value) if isinstance(value, str) and value.isdigit() else value
            elif name == "queue_ids":
                value = value.split() if isinstance(value, str) else []
            elif name in _INT_FIELDS and value is not None:
                value = int(value)
            elif name == "complete":
                value = bool(value)
            record[name] = value
        yield record


def write_sessions_jsonl(frame: pd.DataFrame, out: TextIO) -> None:
    """One JSON object per line, keys in `EXPORT_FIELDS` order."""
    dumps = json.dumps
    for record in session_records(frame):
        out.write(dumps(record, ensure_ascii=False) + "\n")


def write_sessions_csv(frame: pd.DataFrame, out: TextIO) -> None:
    """CSV with a header row; list fields are space-separated, missing values empty."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_FIELDS)
    for record in session_records(frame):
        writer.writerow(
            " ".join(v) if isinstance(v, list) else ("" if v is None else v) for v in record.values()
        )


def write_json(data: object, out: TextIO) -> None:
    """Indented JSON and a final newline."""
    json.dump(data, out, indent=2, ensure_ascii=False)
    out.write("\n")


def db_info_text(data: dict) -> str:
    """`tlslog db info` for a person: one fact per line, then the inputs."""
    span = f"{data['first_day']} .. {data['last_day']}" if data["first_day"] else "nothing yet"
    weeks = data["weeks"]
    lines = [
        f"store     {_safe(data['path'])} (schema {data['schema']}, {data['bytes']:,} bytes)",
        f"sessions  {data['sessions']:,}" + (f" ({data['undated_sessions']:,} without a date)"
                                             if data["undated_sessions"] else ""),
        f"days      {span} ({data['days']} days" + (f", weeks {weeks[0]} .. {weeks[-1]}" if weeks else "") + ")",
        f"ingests   {data['ingests']}" + (f", last {data['last_ingest']}" if data["last_ingest"] else ""),
        f"open      {data['open_sessions']:,} sessions to be continued by the next ingest",
        f"inputs    {len(data['inputs'])}",
    ]
    lines += [f"  {i['lines']:>12,} lines  {_safe(i['name'])}" + ("" if i["kind"] == "file" else " (stream)")
              for i in data["inputs"]]
    return "\n".join(lines) + "\n"


_VERDICT_STYLE = {"tls": "green", "plaintext": "red", "tls-failed": "yellow", "unknown": "dim"}

#: Columns of the sessions table in reading order: (field, header, minimum width). A minimum of
#: None: the column is never cut (it is as wide as its widest cell, or it is left out).
_SESSION_COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("start", "start", None), ("service", "service", 9), ("peer", "peer", 16), ("encryption", "encryption", None),
    ("protocol", "protocol", None), ("cipher", "cipher", 12), ("trust", "trust", None),
    ("recipient", "recipient", 12),
)  # fmt: skip
#: The order in which columns claim room in a width: the verdict and its protocol, then who, when.
_SESSION_PRIORITY = ("encryption", "protocol", "peer", "start", "service", "trust", "recipient", "cipher")
#: Cells between two columns (a one-cell right padding and the box's blank rule).
_GAP = 2


def _service_labels(services: set[str]) -> dict[str, str]:
    """Shorter service names for a narrow table: ``postfix/submission/smtpd`` → ``submission/smtpd``
    (``postfix/`` is the default syslog_name), unless that would read as another service shown."""
    labels = {}
    for service in services:
        short = service.removeprefix("postfix/")
        labels[service] = short if short and short not in services else service
    return labels


def _cut_left(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, its start replaced by ``…``: a service keeps its daemon."""
    from rich.cells import cell_len

    if cell_len(text) <= width:
        return text
    tail = ""
    for char in reversed(text):
        if cell_len(char + tail) > width - 1:
            break
        tail = char + tail
    return "…" + tail


def _fit(natural: dict[str, int], width: int | None) -> dict[str, int]:
    """Column widths (in reading order) for a table at most ``width`` cells wide; every column at
    its natural width when ``width`` is None. Columns claim room in `_SESSION_PRIORITY` order at
    their minimum width (the whole width for one that is never cut) and one that does not fit is
    left out; then the room left grows the cut columns towards their natural width, a cell at a
    time in turn. The verdict column is always there, always whole."""
    if width is None:
        return dict(natural)
    minimum = {name: natural[name] if least is None else min(least, natural[name])
               for name, _, least in _SESSION_COLUMNS}
    chosen: list[str] = []
    used = -_GAP
    for name in _SESSION_PRIORITY:
        if not chosen or used + _GAP + minimum[name] <= width:
            chosen.append(name)
            used += _GAP + minimum[name]
    widths = {name: minimum[name] for name in chosen}
    room = width - used
    growing = [name for name in chosen if widths[name] < natural[name]]
    while room > 0 and growing:
        for name in list(growing):
            if room == 0:
                break
            widths[name] += 1
            room -= 1
            if widths[name] == natural[name]:
                growing.remove(name)
    return {name: widths[name] for name, _, _ in _SESSION_COLUMNS if name in widths}


def sessions_table(frame: pd.DataFrame, *, width: int | None = None, limit: int | None = None) -> Table:
    """A compact table of sessions for the terminal (the JSONL export has every field).

    ``width``: the cells the table may take, a terminal's width. Columns are chosen for it in
    `_SESSION_PRIORITY` order (verdict, protocol, peer, start, service, trust, recipient, cipher)
    while they fit at a sensible minimum width, and shown in reading order (start, service, peer,
    encryption, protocol, cipher, trust, recipient). The verdict (``tls``, ``plaintext``,
    ``tls-failed``, ``unknown``) is never cut; a long peer, recipient or cipher ends in ``…``; a
    service loses its ``postfix/`` prefix and, if still too long, its start (``…/smtpd`` stays).

    ``width=None`` (output piped to a file or a program): every column, each as wide as its widest
    cell, nothing cut or shortened and nothing wrapped: one line per row, so the output greps and
    sorts like a log. Print it on a console at least as wide as the table (`print_renderable` with
    a large ``width``), or the console crops it.

    Every cell is a `rich.text.Text` of `_safe` text: peer names, recipients and services come
    from the log and are shown literally (no rich markup, no terminal control characters).
    """
    from rich.cells import cell_len

    rows: list[dict[str, str]] = []
    for record in session_records(frame):
        if limit is not None and len(rows) >= limit:
            break
        peer = record["peer_name"] or ""
        if record["peer_ip"]:
            peer = f"{peer}[{record['peer_ip']}]"
        cells = {
            "start": (record["start"] or "")[5:19].replace("T", " "),
            "service": record["service"] or "",
            "peer": peer,
            "encryption": record["encryption"] or "",
            "protocol": record["protocol"] or "",
            "cipher": record["cipher"] or "",
            "trust": record["trust"] or "",
            "recipient": record["recipient"] or "",
        }
        rows.append({name: _safe(str(value)) for name, value in cells.items()})
    if width is not None:
        labels = _service_labels({row["service"] for row in rows})
        for row in rows:
            row["service"] = labels[row["service"]]
    natural = {name: max([cell_len(header), *(cell_len(row[name]) for row in rows)])
               for name, header, _ in _SESSION_COLUMNS}
    widths = _fit(natural, width)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, _GAP - 1, 0, 0))
    headers = {name: header for name, header, _ in _SESSION_COLUMNS}
    for name, cells_wide in widths.items():
        table.add_column(headers[name], width=cells_wide, no_wrap=True, overflow="ellipsis")
    for row in rows:
        if "service" in widths:
            row["service"] = _cut_left(row["service"], widths["service"])
        verdict = row["encryption"]
        table.add_row(*(Text(row[name], style=_VERDICT_STYLE.get(verdict, "") if name == "encryption" else "")
                        for name in widths))
    if limit is not None and len(frame) > limit:
        table.caption = f"first {limit} of {len(frame)} rows"
    return table


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _bar(value: float | None, width: int = 10) -> Text:
    if value is None:
        return Text("")
    filled = round(value * width)
    return Text("█" * filled, style="green") + Text("░" * (width - filled), style="red")


def _small_table(title: str) -> Table:
    return Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
                 show_edge=False, pad_edge=False)


def _breakdown(title: str, counts: dict[str, int], label: Callable[[str], str] = str) -> Table:
    table = _small_table(title)
    table.add_column("", no_wrap=True)
    table.add_column("count", justify="right", no_wrap=True)
    table.add_column("share", justify="right", no_wrap=True)
    total = sum(counts.values())
    for key, n in counts.items():
        table.add_row(label(key), f"{n:,}", _percent(n / total if total else None))
    if not counts:
        table.add_row("none", "", "")
    return table


def _split(title: str, inbound: dict[str, int], outbound: dict[str, int], order: tuple[str, ...] = ()) -> Table:
    """A breakdown per direction (inbound and outbound are different pictures: never added),
    keys in ``order`` first, ``unknown`` last."""
    table = _small_table(title)
    table.add_column("", no_wrap=True)
    for name in ("in", "share", "out", "share"):
        table.add_column(name, justify="right", no_wrap=True)
    seen = list(dict.fromkeys([*inbound, *outbound]))
    keys = [k for k in order if k in seen] + [k for k in seen if k not in order and k != "unknown"]
    keys += ["unknown"] if "unknown" in seen else []
    totals = sum(inbound.values()), sum(outbound.values())
    for key in keys:
        a, b = inbound.get(key, 0), outbound.get(key, 0)
        table.add_row(Text(_safe(key)), f"{a:,}", _percent(a / totals[0] if totals[0] else None),
                      f"{b:,}", _percent(b / totals[1] if totals[1] else None))
    if not keys:
        table.add_row("none", "", "", "", "")
    return table


def _who(row: dict) -> Text:
    """A peer as ``name[ip]`` (or its domain), made inert: it comes from the log."""
    return Text(_safe(_md_who(row)))


def _peers(title: str, rows: list[dict], count: str = "sessions", header: str | None = None,
           directions: list[str] | None = None) -> Table:
    table = _small_table(title)
    if directions:
        table.add_column("", no_wrap=True)
    table.add_column("peer", overflow="fold")
    table.add_column(header or count, justify="right", no_wrap=True)
    if rows and "share" in rows[0]:
        table.add_column("of all", justify="right", no_wrap=True)
        table.add_column("status", no_wrap=True)
    for i, row in enumerate(rows):
        cells: list[RenderableType] = [_who(row), f"{row[count]:,}"]
        if directions:
            cells.insert(0, directions[i])
        if "share" in row:
            cells += [_percent(row["share"]), Text(row["status"], style=_STATUS_STYLE.get(row["status"], ""))]
        table.add_row(*cells)
    if not rows:
        table.add_row("none", "")
    return table


_STATUS_STYLE = {"downgrade": "bold red", "always-plaintext": "red", "sometimes-plaintext": "yellow",
                 "always-tls": "green", "tls-failed": "yellow", "unknown": "dim"}


def _by_direction(lists: dict[str, list[dict]]) -> list[tuple[str, dict]]:
    """The rows of an ``{"inbound": [...], "outbound": [...]}`` pair, each with ``in``/``out``."""
    return [("in", row) for row in lists["inbound"]] + [("out", row) for row in lists["outbound"]]


def _title(report: dict, sep: str) -> str:
    period = report.get("period")
    if not period:
        return "TLS coverage"
    return f"TLS coverage{sep}{period['first'][:16].replace('T', ' ')} → {period['last'][:16].replace('T', ' ')}"


def _coverage_cells(report: dict) -> list[list[str]]:
    """The headline rows: mail and sessions, with coverage, of MX inbound, submission, outbound."""
    rows = []
    for label, key in (("MX inbound", "mx"), ("submission", "submission"), ("outbound", "outbound")):
        d = report[key]
        mail = d["messages"]
        rows.append([label, f"{mail['total']:,}", _percent(mail["coverage"]), f"{d['total']:,}",
                     _percent(d["coverage"]), f"{d['plaintext']:,}", f"{d['tls_failed']:,}", f"{d['unknown']:,}"])
    return rows


def _downgrades(report: dict) -> Table | None:
    rows = _by_direction(report["downgrades"])
    if not rows:
        return None
    table = _small_table("DOWNGRADES: plaintext after TLS (stripped STARTTLS?)")
    table.title_style = "bold red"
    table.add_column("", no_wrap=True)
    table.add_column("peer", overflow="fold")
    for name in ("TLS", "plain", "since"):
        table.add_column(name, justify="right", no_wrap=True)
    for direction, row in rows:
        table.add_row(direction, _who(row), f"{row['tls']:,}", f"{row['plaintext']:,}",
                      (row["downgrade_at"] or "")[:16].replace("T", " "))
    return table


_WEAK_LABELS = {"old_protocol": "below TLSv1.2", "no_forward_secrecy": "no forward secrecy",
                "non_aead": "not AEAD (CBC, RC4)", "broken_cipher": "RC4/3DES/EXPORT/NULL/anon",
                "short_key": "under 128 bits", "unverified": "unverified (outbound)"}


def _weak(report: dict) -> Table:
    table = _small_table("Weak TLS")
    table.add_column("", no_wrap=True)
    for name in ("MX", "subm.", "out"):
        table.add_column(name, justify="right", no_wrap=True)
    blocks = [report[k]["weak_tls"] for k in ("mx", "submission", "outbound")]
    tls = [report[k]["tls"] for k in ("mx", "submission", "outbound")]
    table.add_row("weak, any reason", *(f"{b['total']:,} ({_percent(b['total'] / t if t else None)})"
                                        for b, t in zip(blocks, tls)))
    for key, label in _WEAK_LABELS.items():
        if any(b[key] for b in blocks):
            table.add_row(f"  {label}", *(f"{b[key]:,}" for b in blocks))
    return table


def _failures(report: dict) -> Table | None:
    rows = _by_direction(report["failures"])
    if not rows:
        return None
    table = _small_table("TLS failures by reason")
    table.add_column("", no_wrap=True)
    table.add_column("reason", overflow="fold")
    table.add_column("count", justify="right", no_wrap=True)
    table.add_column("peers", justify="right", no_wrap=True)
    for direction, row in rows:
        table.add_row(direction, Text(_safe(row["reason"])), f"{row['count']:,}", f"{row['peers']:,}")
    return table


def _ip_table(report: dict) -> Table:
    table = _small_table("IPv4 and IPv6 (mail, TLS share)")
    table.add_column("", no_wrap=True)
    for name in ("MX", "TLS", "out", "TLS"):
        table.add_column(name, justify="right", no_wrap=True)
    for version in ("4", "6"):
        mx, out = report["mx"]["ip_versions"][version], report["outbound"]["ip_versions"][version]
        table.add_row(f"IPv{version}", f"{mx['messages']['total']:,}", _percent(mx["messages"]["coverage"]),
                      f"{out['messages']['total']:,}", _percent(out["messages"]["coverage"]))
    return table


def report_renderable(report: dict) -> RenderableType:
    """The report as one rich renderable (print it on any `rich.console.Console`): the headline
    first (coverage of mail per direction), then what to act on."""
    coverage = _small_table(_title(report, "  "))
    coverage.add_column("", no_wrap=True)
    for name in ("mail", "TLS", "sessions", "TLS", "plain", "failed", "unknown"):
        coverage.add_column(name, justify="right", no_wrap=True)
    for cells in _coverage_cells(report):
        coverage.add_row(*cells)
    internal = report["internal"]
    hops = internal["inbound"]["total"] + internal["outbound"]["total"]
    if hops:
        mail = internal["inbound"]["messages"]["total"] + internal["outbound"]["messages"]["total"]
        coverage.add_row(Text("internal", style="dim"), Text(f"{mail:,}", style="dim"), "",
                         Text(f"{hops:,}", style="dim"), Text("apart", style="dim"), "", "", "")
    coverage.caption = ("mail: messages accepted or sent; sessions: smtpd sessions (MX, submission) and smtp"
                        " deliveries (outbound); TLS = TLS / (total - unknown)")
    coverage.caption_justify = "left"
    gap = Text("")
    parts: list[RenderableType] = [coverage, gap]
    if report.get("periods"):
        parts += [periods_table(report["periods"], report.get("by", "period")), gap]
    downgrades = _downgrades(report)
    if downgrades is not None:
        parts += [downgrades, gap]
    parts += [
        _peers("Plaintext clients (inbound)", report["plaintext_peers"]["inbound"]), gap,
        _peers("Plaintext servers (outbound)", report["plaintext_peers"]["outbound"], header="deliveries"), gap,
    ]
    if report["plaintext_domains"]["outbound"]:
        parts += [_peers("Plaintext destinations (recipient domains)", report["plaintext_domains"]["outbound"],
                         "deliveries"), gap]
    if report["unverified_destinations"]:
        parts += [_peers("Destinations never Verified or Trusted (verify would fail)",
                         report["unverified_destinations"], "deliveries"), gap]
    breakdowns = Columns(
        [
            _split("Protocol (TLS)", report["inbound"]["by_protocol"], report["outbound"]["by_protocol"],
                   schema.PROTOCOLS),
            _split("Trust (TLS)", report["inbound"]["by_trust"], report["outbound"]["by_trust"],
                   schema.TRUSTS),
            _split("Key exchange (TLS)", report["inbound"]["by_key_exchange"], report["outbound"]["by_key_exchange"]),
            _ip_table(report),
            *([_breakdown("Outbound tls= level", report["outbound"]["by_tls_level"])]
              if report["outbound"].get("by_tls_level") else []),
        ],
        padding=(1, 4),
    )
    parts += [breakdowns, gap, _weak(report), gap]
    weak = _by_direction(report["weak_tls_peers"])
    if weak:
        parts += [_peers("Peers on weak TLS", [row for _, row in weak], header="rows",
                         directions=[direction for direction, _ in weak]), gap]
    failures = _failures(report)
    if failures is not None:
        parts += [failures, gap]
    lines = report["lines"]
    footer = Text(
        f"lines: {lines['read']:,} read, {lines['postfix']:,} Postfix, {lines['parsed']:,} parsed, "
        f"{lines['unparsed']:,} unparsed, {lines['other']:,} other programs, "
        f"{lines['unrecognized']:,} unrecognised",
        style="dim",
    )
    if lines.get("duplicate"):
        footer.append(f", {lines['duplicate']:,} repeated verbatim", style="dim")
    if lines.get("invalid_utf8"):
        footer.append(f", {lines['invalid_utf8']:,} with invalid UTF-8", style="dim")
    parts.append(footer)
    parts.append(Text("every peer, its status and first/last seen: tlslog peers FILES", style="dim"))
    parts.extend(Text(f"note: {_safe(note)}", style="yellow") for note in report["notes"])
    return Group(*parts)


_SPARKS = "▁▂▃▄▅▆▇█"


def _spark(value: float | None, low: float, high: float) -> Text:
    """One bar of a sparkline, scaled between the lowest and highest value shown."""
    if value is None:
        return Text(" ")
    share = (value - low) / (high - low) if high > low else 1.0
    return Text(_SPARKS[min(len(_SPARKS) - 1, int(share * len(_SPARKS)))], style="green" if value >= 0.9 else "yellow")


def _short(value: float | None) -> str:
    return "100%" if value == 1 else _percent(value)


def _points(change: float | None) -> Text:
    if change is None:
        return Text("")
    return Text(f"{change:+.1f}", style="green" if change > 0 else "red" if change < 0 else "")


def periods_table(periods: list[dict], by: str) -> Table:
    """Coverage of mail per period: MX inbound, submission, outbound, with the change in
    percentage points against the period before and a sparkline of the MX coverage (lowest to
    highest shown)."""
    table = _small_table(f"Coverage of mail by {by}")
    table.add_column("period", no_wrap=True)
    for name in ("MX mail", "TLS", "±pp", "subm.", "TLS", "out", "TLS", "±pp", ""):
        table.add_column(name, justify="right", no_wrap=True)
    values = [p["mx"]["messages"]["coverage"] for p in periods if p["mx"]["messages"]["coverage"] is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    for period in periods:
        mx, sub, out = (period[k]["messages"] for k in ("mx", "submission", "outbound"))
        table.add_row(period["period"], f"{mx['total']:,}", _short(mx["coverage"]), _points(mx["coverage_change"]),
                      f"{sub['total']:,}", _short(sub["coverage"]), f"{out['total']:,}", _short(out["coverage"]),
                      _points(out["coverage_change"]), _spark(mx["coverage"], low, high))
    return table


def print_renderable(renderable: RenderableType, out: TextIO, *, width: int | None = None) -> None:
    """Print to ``out``, colour only when it is a terminal."""
    Console(file=out, width=width, highlight=False, soft_wrap=False).print(renderable)


# -- markdown and CSV: the same data for a ticket, a mail or a spreadsheet ----------------------

def _md_table(headers: list[str], rows: Sequence[Sequence[object]], right: int = 1) -> str:
    """A GitHub-flavoured markdown table; every cell is escaped (log text is hostile); columns
    from ``right`` on are numbers, right-aligned."""
    def cell(value: object) -> str:
        return markdown_cell("" if value is None else str(value))

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |",
             "|" + "|".join("---" if i < right else "---:" for i in range(len(headers))) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _md_who(row: dict) -> str:
    """``name[ip]``, the address, or the domain of a peer row (not yet escaped)."""
    if "domain" in row:
        return row["domain"] or "(no domain)"
    name, ip = row.get("peer_name") or "", row.get("peer_ip")
    return f"{name}[{ip}]" if ip and name else ip or name or "(none)"


def report_markdown(report: dict) -> str:
    """The report as markdown that pastes as it is into a ticket or a mail."""
    out = [f"# {_title(report, ' ')}\n",
           _md_table(["", "mail", "TLS", "sessions", "TLS", "plaintext", "failed", "unknown"], _coverage_cells(report))]
    if report.get("periods"):
        out.append(f"## Coverage of mail by {report.get('by', 'period')}\n")
        out.append(_md_table(["period", "MX mail", "TLS", "±pp", "submission", "TLS", "outbound", "TLS", "±pp"], [
            [p["period"], f"{p['mx']['messages']['total']:,}", _percent(p["mx"]["messages"]["coverage"]),
             _signed(p["mx"]["messages"]["coverage_change"]), f"{p['submission']['messages']['total']:,}",
             _percent(p["submission"]["messages"]["coverage"]), f"{p['outbound']['messages']['total']:,}",
             _percent(p["outbound"]["messages"]["coverage"]), _signed(p["outbound"]["messages"]["coverage_change"])]
            for p in report["periods"]]))
    downgrades = _by_direction(report["downgrades"])
    if downgrades:
        out.append("## Downgrades: plaintext after TLS\n")
        out.append(_md_table(["", "peer", "TLS", "plaintext", "since"], [
            [d, _md_who(r), r["tls"], r["plaintext"], (r["downgrade_at"] or "").replace("T", " ")]
            for d, r in downgrades], right=2))
    for title, rows_, count in (("Plaintext clients (inbound)", report["plaintext_peers"]["inbound"], "sessions"),
                                ("Plaintext servers (outbound)", report["plaintext_peers"]["outbound"], "sessions"),
                                ("Plaintext destinations", report["plaintext_domains"]["outbound"], "deliveries")):
        if rows_:
            out.append(f"## {title}\n")
            out.append(_md_table(["peer", count, "of all", "status"], [
                [_md_who(r), r[count], _percent(r["share"]), r["status"]] for r in rows_]))
    weak = [report[k]["weak_tls"] for k in ("mx", "submission", "outbound")]
    out.append("## Weak TLS\n")
    out.append(_md_table(["", "MX", "submission", "outbound"],
                         [["weak, any reason", *(w["total"] for w in weak)]]
                         + [[label, *(w[key] for w in weak)] for key, label in _WEAK_LABELS.items()]))
    failures = _by_direction(report["failures"])
    if failures:
        out.append("## TLS failures by reason\n")
        out.append(_md_table(["", "reason", "count", "peers"], [[d, r["reason"], r["count"], r["peers"]]
                                                               for d, r in failures], right=2))
    if report["notes"]:
        out.append("## Notes\n")
        out.append("".join(f"- {markdown_cell(note)}\n" for note in report["notes"]))
    return "\n".join(out)


def _signed(change: float | None) -> str:
    return "" if change is None else f"{change:+.1f}"


#: Columns of ``report --format csv``: one row per direction, for the whole input (period
#: ``all``) and, with ``--by``, per period.
REPORT_CSV_FIELDS = ("period", "start", "direction", "sessions", "tls", "plaintext", "tls_failed", "unknown",
                     "coverage", "messages", "messages_tls", "messages_plaintext", "messages_tls_failed",
                     "messages_unknown", "messages_coverage")


def write_report_csv(report: dict, out: TextIO) -> None:
    """The coverage numbers as CSV (the rest of the report is in the JSON)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_CSV_FIELDS)

    def row(period: str, start: str, direction: str, d: dict) -> None:
        m = d["messages"]
        writer.writerow([period, start, direction, d["total"], d["tls"], d["plaintext"], d["tls_failed"], d["unknown"],
                         "" if d["coverage"] is None else round(d["coverage"], 6), m["total"], m["tls"],
                         m["plaintext"], m["tls_failed"], m["unknown"],
                         "" if m["coverage"] is None else round(m["coverage"], 6)])

    first = (report.get("period") or {}).get("first") or ""
    for direction in ("inbound", "mx", "submission", "outbound"):
        row("all", first[:10], direction, report[direction])
    for direction in ("inbound", "outbound"):
        row("all", first[:10], f"internal-{direction}", report["internal"][direction])
    for period in report.get("periods", []):
        for direction in ("inbound", "mx", "submission", "outbound"):
            row(period["period"], period["start"], direction, period[direction])


_PEER_TITLES = {"inbound": "Inbound clients", "inbound_ips": "Inbound addresses",
                "inbound_domains": "Inbound domains (registered)",
                "outbound_domains": "Outbound destinations (recipient domains)", "outbound_relays": "Outbound relays"}
#: Columns of ``peers --format csv``: every list in one table, ``list`` telling which.
PEER_CSV_FIELDS = ("list", "peer_name", "peer_ip", "domain", "total", "tls", "plaintext", "tls_failed", "unknown",
                   "messages", "coverage", "protocols", "best_trust", "ip_versions", "first_seen", "last_seen",
                   "status", "downgrade_at")


def peers_renderable(peers: dict[str, list[dict]]) -> RenderableType:
    """One table per peer list; statuses coloured, downgrades in bold."""
    parts: list[RenderableType] = []
    for name, rows in peers.items():
        table = _small_table(_PEER_TITLES.get(name, name))
        table.add_column("peer", overflow="fold", min_width=24)
        for column in ("total", "TLS", "plain", "status", "last seen"):
            table.add_column(column, justify="left" if column in ("status", "last seen") else "right", no_wrap=True)
        for row in rows:
            table.add_row(_who(row), f"{row['total']:,}", _percent(row["coverage"]), f"{row['plaintext']:,}",
                          Text(row["status"], style=_STATUS_STYLE.get(row["status"], "")),
                          (row["last_seen"] or "")[:10])
        if not rows:
            table.add_row("none", "", "", "", "", "")
        parts += [table, Text("")]
    return Group(*parts)


def peers_markdown(peers: dict[str, list[dict]]) -> str:
    out = []
    for name, rows in peers.items():
        out.append(f"## {_PEER_TITLES.get(name, name)}\n")
        out.append(_md_table(["peer", "total", "TLS", "plaintext", "failed", "status", "protocols", "first seen",
                              "last seen"],
                             [[_md_who(r), r["total"], _percent(r["coverage"]), r["plaintext"], r["tls_failed"],
                               r["status"], " ".join(r["protocols"]), r["first_seen"], r["last_seen"]] for r in rows]))
    return "\n".join(out)


def write_peers_csv(peers: dict[str, list[dict]], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PEER_CSV_FIELDS)
    for name, rows in peers.items():
        for row in rows:
            record = {"list": name, **row}
            writer.writerow(csv_cell(_csv_value(record.get(field))) for field in PEER_CSV_FIELDS)


def _csv_value(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, float):
        return round(value, 6)
    return value


# -- tlslog policy -----------------------------------------------------------------------------

_LEVEL_STYLE = {"may": "yellow", "encrypt": "green", "verify": "bold green", "dane-only": "bold green"}
_ROLE_TITLES = {"mx": "Inbound on the MX", "submission": "Inbound on submission"}


def _fails(row: dict, level: str) -> str:
    value = row["would_fail"][level]
    return "–" if value is None else f"{value:,}"


def policy_renderable(policy: dict) -> RenderableType:
    """The enforcement preview: per destination domain, what each level would have failed; then
    what smtpd_tls_security_level = encrypt would have refused."""
    parts: list[RenderableType] = []
    table = _small_table("Outbound: deliveries each smtp_tls_security_level would have failed")
    table.add_column("domain", overflow="fold", min_width=20)
    for column in ("deliveries", "encrypt", "verify", "dane-only", "strongest", "map", "last seen"):
        table.add_column(column, justify="left" if column in ("strongest", "map", "last seen") else "right",
                         no_wrap=True)
    for row in policy["outbound"]:
        table.add_row(_safe(row["domain"] or "(none)"), f"{row['deliveries']:,}", _fails(row, "encrypt"),
                      _fails(row, "verify"), _fails(row, "dane-only"),
                      Text(row["strongest"], style=_LEVEL_STYLE.get(row["strongest"], "")),
                      Text(row["suggested"], style=_LEVEL_STYLE.get(row["suggested"], "")),
                      (row["last_seen"] or "")[:10])
    if not policy["outbound"]:
        table.add_row("(no outbound deliveries)", "", "", "", "", "", "", "")
    parts.append(table)
    for role, block in policy["inbound"].items():
        title = (f"{_ROLE_TITLES.get(role, role)}: smtpd_tls_security_level = encrypt would have refused "
                 f"{block['refused_sessions']:,} of {block['sessions']:,} sessions, "
                 f"{block['refused_messages']:,} of {block['messages']:,} messages")
        clients = _small_table(title)
        clients.add_column("client domain", overflow="fold", min_width=20)
        for column in ("sessions", "messages", "last seen"):
            clients.add_column(column, justify="left" if column == "last seen" else "right", no_wrap=True)
        for row in block["clients"]:
            clients.add_row(_safe(row["domain"] or "(no name)"), f"{row['sessions']:,}", f"{row['messages']:,}",
                            (row["last_seen"] or "")[:10])
        parts.append(clients)
    return Group(*parts)


def policy_markdown(policy: dict) -> str:
    out = ["## Outbound: deliveries each level would have failed\n",
           _md_table(["domain", "deliveries", "encrypt", "verify", "dane-only", "strongest", "map", "why"],
                     [[r["domain"] or "(none)", r["deliveries"], _fails(r, "encrypt"), _fails(r, "verify"),
                       _fails(r, "dane-only"), r["strongest"], r["suggested"], r["reason"]]
                      for r in policy["outbound"]])]
    for role, block in policy["inbound"].items():
        out.append(f"## {_ROLE_TITLES.get(role, role)}: encrypt would have refused {block['refused_sessions']} of "
                   f"{block['sessions']} sessions, {block['refused_messages']} of {block['messages']} messages\n")
        out.append(_md_table(["client domain", "sessions", "messages", "last seen"],
                             [[r["domain"] or "(no name)", r["sessions"], r["messages"], r["last_seen"]]
                              for r in block["clients"]]))
    return "\n".join(out)


# -- tlslog doctor -----------------------------------------------------------------------------

_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def _setting(finding: dict) -> str:
    return f"{finding['setting']} ({finding['service']})" if finding["service"] else finding["setting"]


def doctor_renderable(data: dict) -> RenderableType:
    """One block per finding: severity, setting and value, what, why, the line to set."""
    summary = data["summary"]
    if not data["findings"]:
        return Text("No findings: nothing in this configuration keeps TLS weak or the log blind.")
    parts: list[RenderableType] = [Text(f"{summary['error']} errors, {summary['warning']} warnings, "
                                        f"{summary['info']} notes", style="bold")]
    for finding in data["findings"]:
        head = Text()
        head.append(f"{finding['severity']:<8}", style=_SEVERITY_STYLE.get(finding["severity"], ""))
        head.append(_safe(_setting(finding)), style="bold")
        head.append(f" = {_safe(finding['value'])}: {_safe(finding['message'])}")
        parts.append(Group(Text(""), head, Padding(Text(_safe(finding["why"])), (0, 0, 0, 8)),
                           Padding(Text("set: " + _safe(finding["fix"]), style="green"), (0, 0, 0, 8))))
    return Group(*parts)


def doctor_markdown(data: dict) -> str:
    summary = data["summary"]
    out = [f"**{summary['error']} errors, {summary['warning']} warnings, {summary['info']} notes**\n"]
    out.append(_md_table(["severity", "setting", "value", "finding", "why", "set"],
                         [[f["severity"], _setting(f), f["value"], f["message"], f["why"], f["fix"]]
                          for f in data["findings"]], right=6))
    return "\n".join(out)


# -- tlslog tlsrpt -----------------------------------------------------------------------------

def tlsrpt_renderable(reports: list[dict]) -> RenderableType:
    """One row per report: day, domain, sessions, failures by result type, where the counts came from."""
    table = _small_table("TLSRPT reports your peers would receive (RFC 8460)")
    table.add_column("day", no_wrap=True)
    table.add_column("domain", overflow="fold", min_width=20)
    for column in ("successful", "failed"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("failures", overflow="fold")
    table.add_column("from", no_wrap=True)
    for item in reports:
        report = item["report"]
        policy = report["policies"][0]
        failures: dict[str, int] = {}
        for detail in policy.get("failure-details", []):
            failures[detail["result-type"]] = failures.get(detail["result-type"], 0) + detail["failed-session-count"]
        table.add_row(report["date-range"]["start-datetime"][:10], _safe(policy["policy"]["policy-domain"]),
                      f"{policy['summary']['total-successful-session-count']:,}",
                      f"{policy['summary']['total-failure-session-count']:,}",
                      ", ".join(f"{k} {v:,}" for k, v in failures.items()), item["source"])
    if not reports:
        table.add_row("", "(no deliveries)", "", "", "", "")
    return table
