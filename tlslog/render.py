"""Writers: one per output format, shared by every command. Nothing here computes results.

Sessions: ``jsonl`` (the stable export contract), ``csv``, ``table``. Report: ``json`` (the
stable report contract) and ``table`` (a rich layout to read at a glance).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import pandas as pd
from rich import box
from rich.columns import Columns
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from . import schema
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


_VERDICT_STYLE = {"tls": "green", "plaintext": "red", "tls-failed": "yellow", "unknown": "dim"}


def sessions_table(frame: pd.DataFrame, *, limit: int | None = None) -> Table:
    """A compact table of sessions for the terminal (the JSONL export has every field)."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name, ratio, width in (("start", None, 14), ("service", 2, 6), ("peer", 3, 6),
                               ("encryption", None, 10), ("protocol", None, 8), ("trust", None, 9),
                               ("recipient", 2, 5)):
        table.add_column(name, no_wrap=True, overflow="ellipsis", ratio=ratio, min_width=width)
    for count, record in enumerate(session_records(frame)):
        if limit is not None and count >= limit:
            table.caption = f"first {limit} of {len(frame)} rows"
            break
        peer = record["peer_name"] or ""
        if record["peer_ip"]:
            peer = f"{peer}[{record['peer_ip']}]"
        verdict = record["encryption"]
        table.add_row(
            (record["start"] or "")[5:19].replace("T", " "),
            record["service"],
            peer,
            Text(verdict, style=_VERDICT_STYLE.get(verdict, "")),
            record["protocol"] or "",
            record["trust"] or "",
            record["recipient"] or "",
        )
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


def _peers(title: str, rows: list[dict]) -> Table:
    table = _small_table(title)
    table.add_column("peer", overflow="fold")
    table.add_column("count", justify="right", no_wrap=True)
    for row in rows:
        name, ip = row["peer_name"] or "", row["peer_ip"]
        table.add_row(f"{name}[{ip}]" if ip else name, f"{row['sessions']:,}")
    if not rows:
        table.add_row("none", "")
    return table


def report_renderable(report: dict) -> RenderableType:
    """The report as one rich renderable (print it on any `rich.console.Console`)."""
    period = report.get("period")
    title = "TLS coverage"
    if period:
        title += f"  {period['first'][:16].replace('T', ' ')} → {period['last'][:16].replace('T', ' ')}"
    coverage = _small_table(title)
    coverage.add_column("", no_wrap=True)
    for name in ("mail", "TLS", "sessions", "TLS", "plaintext", "failed", "unknown"):
        coverage.add_column(name, justify="right", no_wrap=True)
    for label, key in (("MX inbound", "mx"), ("submission", "submission"), ("outbound", "outbound")):
        d = report[key]
        mail = d["messages"]
        coverage.add_row(
            label, f"{mail['total']:,}", _percent(mail["coverage"]), f"{d['total']:,}", _percent(d["coverage"]),
            f"{d['plaintext']:,}", f"{d['tls_failed']:,}", f"{d['unknown']:,}",
        )
    internal = report["internal"]
    hops = internal["inbound"]["total"] + internal["outbound"]["total"]
    if hops:
        coverage.add_row(Text("internal", style="dim"), Text(f"{internal['inbound']['messages']['total'] + internal['outbound']['messages']['total']:,}", style="dim"),
                         "", Text(f"{hops:,}", style="dim"), Text("apart", style="dim"), "", "", "")
    coverage.caption = ("mail: messages accepted or sent; sessions: smtpd sessions (MX, submission) and smtp"
                        " deliveries (outbound); TLS = TLS / (total - unknown)")
    coverage.caption_justify = "left"
    breakdowns = Columns(
        [
            _breakdown("Protocol (TLS)", report["by_protocol"]),
            _breakdown("Trust (TLS)", report["by_trust"]),
            _breakdown("IP version", report["by_ip_version"], label=lambda k: f"IPv{k}" if k in "46" else k),
        ],
        padding=(1, 4),
    )
    peers = Columns(
        [
            _peers("Plaintext clients (inbound)", report["plaintext_peers"]["inbound"]),
            _peers("Plaintext servers (outbound)", report["plaintext_peers"]["outbound"]),
        ],
        padding=(1, 4),
    )
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
    gap = Text("")
    parts: list[RenderableType] = [coverage, gap]
    if report.get("periods"):
        parts += [periods_table(report["periods"], report.get("by", "period")), gap]
    parts += [breakdowns, gap, peers, gap]
    if report["legacy_tls_peers"]:
        parts += [_peers("Peers on TLSv1.1 or older", report["legacy_tls_peers"]), gap]
    parts.append(footer)
    parts.extend(Text(f"note: {note}", style="yellow") for note in report["notes"])
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
