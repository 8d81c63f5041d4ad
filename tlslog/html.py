"""``tlslog report --format html``: the report as one self-contained HTML5 page.

The page is meant to be mailed, attached to a ticket or opened from disk, so it carries
everything inline: one stylesheet, charts drawn here as inline SVG, no JavaScript, no fonts,
images or anything else fetched when it is viewed. The tables carry every number (a mail
client that drops SVG or CSS still shows the whole report); the SVG charts are the quick look.

Log text is attacker-controlled (peer names, recipients, relays, failure reasons, services,
host names and file names in notes): every such string goes through `_text`, which shows
control characters and bidi or zero-width characters visibly as ``\\x1b``-style escapes (the
`tlslog.escape.terminal` notation) and escapes the rest with ``html.escape(quote=True)``. Log
text is only ever element text: never an attribute, a URL, a class, style or SVG geometry
(ids, classes and hrefs are constants of this module; numbers are formatted from ints and
floats).

Content-Security-Policy, as a ``<meta http-equiv>`` (a file or a mail has no headers), is
``default-src 'none'; style-src 'sha256-…'; base-uri 'none'; form-action 'none'``: nothing may
load, no script may run (``script-src`` falls back to ``'none'``), and only the one stylesheet
whose SHA-256 hash is given applies. A hash is stricter than ``'unsafe-inline'``: if escaping
ever failed, an injected ``<style>`` element or ``style=`` attribute would still be ignored,
and unlike a nonce it keeps the output deterministic (the same log, the same page). The page
needs no ``img-src``: it has no images (inline SVG is markup, not a fetch). A hashed
``style-src`` also refuses ``style=`` attributes, so the page uses none: SVG geometry and
fills are attributes, colours classes. Escaping is the real defence; the policy is the second
line, for browsers (mail clients mostly ignore it, and drop scripts anyway).
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import re
from collections.abc import Callable, Iterable, Sequence

from . import __version__, schema
from .escape import terminal

__all__ = ["CSP", "STYLE", "report_html"]

# -- text -----------------------------------------------------------------------------------

#: What `tlslog.escape.terminal` shows as escapes, plus characters that are invisible on a page
#: or reorder it: Arabic letter mark, zero-width space/joiners, LRM/RLM, line and paragraph
#: separators, word joiner and invisible operators, byte-order mark.
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def _escape_code(char: str) -> str:
    """``\\x1b`` or ``\\u202e``: the terminal writer's notation, for its set and ours."""
    shown = terminal(char)
    return shown if shown != char else f"\\u{ord(char):04x}"


def _text(value: object, *, mark: bool = True) -> str:
    """Log text as inert HTML element text. ``mark``: control characters in a highlighted
    ``<span>`` (not inside SVG ``<title>``, which is plain text)."""
    text = "" if value is None else str(value)
    out: list[str] = []
    last = 0
    for match in _INVISIBLE.finditer(text):
        out.append(html.escape(text[last:match.start()], quote=True))
        code = html.escape(_escape_code(match[0]), quote=True)
        out.append(f'<span class="ctl">{code}</span>' if mark else code)
        last = match.end()
    out.append(html.escape(text[last:], quote=True))
    return "".join(out)


def _n(value: int) -> str:
    """A count with thousands separators (the terminal report's ``1,234``)."""
    return f"{int(value):,}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{float(value) * 100:.1f}%"


def _pp(change: float | None) -> str:
    return "" if change is None else f"{float(change):+.1f}"


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _who(row: dict) -> str:
    """``name[ip]``, the address, or the domain of a peer row (not yet escaped), as in the
    terminal and markdown reports."""
    if "domain" in row:
        return row["domain"] or "(no domain)"
    name, ip = row.get("peer_name") or "", row.get("peer_ip")
    return f"{name}[{ip}]" if ip and name else ip or name or "(none)"


def _stamp(value: str | None) -> str:
    return (value or "")[:16].replace("T", " ")


# -- colours: one source for the stylesheet and the SVG fallbacks ---------------------------

#: name -> (light, dark). SVG shapes carry the light colour as a presentation attribute (a mail
#: client that drops the stylesheet still shows the charts); the stylesheet overrides it.
_COLOURS: dict[str, tuple[str, str]] = {
    "bg": ("#f4f6f8", "#0e1217"), "card": ("#ffffff", "#161b22"), "fg": ("#1c2128", "#e6edf3"),
    "muted": ("#57606a", "#9198a1"), "line": ("#d8dee4", "#30363d"), "faint": ("#eef1f4", "#21262d"),
    "accent": ("#0a5bd3", "#4f9cff"), "ok": ("#1a7f37", "#3fb950"), "warn": ("#9a6700", "#d29922"),
    "bad": ("#c62828", "#f47067"), "unk": ("#8c959f", "#6e7681"),
    "c0": ("#1a7f37", "#3fb950"), "c1": ("#2f6fdb", "#5a9bff"), "c2": ("#c98a00", "#e3b341"),
    "c3": ("#d1570f", "#f0883e"), "c4": ("#c62828", "#f47067"), "c5": ("#8250df", "#a371f7"),
    "c6": ("#0e8a8a", "#39c5cf"), "c7": ("#bf3989", "#db61a2"),
}
#: The fills of verdicts (meters and volume bars), in stacking order.
_VERDICTS = (("tls", "TLS", "ok"), ("plaintext", "plaintext", "bad"), ("tls_failed", "failed", "warn"),
             ("unknown", "unknown", "unk"))
#: Colours for keys without a meaning (key exchange groups, future protocols), in turn.
_PALETTE = ("c1", "c6", "c5", "c7", "c2", "c3", "c0", "c4")
#: Colours by meaning where the order has one (best first); other keys take the palette in turn.
_KEY_COLOURS = {"protocol": dict(zip(schema.PROTOCOLS, ("c0", "c1", "c2", "c3", "c4", "c4"))),
                "trust": {"Verified": "c0", "Trusted": "c1", "Untrusted": "c2", "Anonymous": "c5"}}


def _fill(name: str) -> str:
    """Class and fallback fill of an SVG shape coloured ``name`` (a `_COLOURS` key)."""
    return f'class="f-{name}" fill="{_COLOURS[name][0]}"'


def _variables(index: int) -> str:
    return ";".join(f"--{name}:{pair[index]}" for name, pair in _COLOURS.items())


def _stylesheet() -> str:
    fills = "".join(f".f-{name}{{fill:var(--{name})}}" for name in _COLOURS)
    return _CSS.replace("/*LIGHT*/", _variables(0)).replace("/*DARK*/", _variables(1)).replace("/*FILLS*/", fills)


_CSS = """
:root{color-scheme:light dark;/*LIGHT*/}
@media (prefers-color-scheme:dark){:root{/*DARK*/}}
@media print{:root{color-scheme:light;/*LIGHT*/}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif}
main{max-width:1200px;margin:0 auto;padding:28px 20px 40px}
header{margin-bottom:6px}
h1{font-size:1.7rem;margin:0 0 2px;letter-spacing:-.01em}
h2{font-size:1.08rem;margin:0 0 12px}
h3{font-size:.95rem;margin:0 0 8px}
p{margin:8px 0}
.sub,.muted,caption{color:var(--muted)}
nav{display:flex;flex-wrap:wrap;gap:4px 14px;margin:10px 0 4px;font-size:.86rem}
nav a{color:var(--accent);text-decoration:none}
nav a:hover{text-decoration:underline}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 20px;margin:16px 0}
section.urgent{border-color:var(--bad);border-width:1px 1px 1px 5px}
section.urgent h2{color:var(--bad)}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(250px,100%),1fr));gap:14px;margin-bottom:14px}
.card{border:1px solid var(--line);border-radius:8px;padding:14px 16px}
.card .label{font-weight:600}
.big{font-size:2.3rem;font-weight:700;line-height:1.15;font-variant-numeric:tabular-nums}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(320px,100%),1fr));gap:18px 26px}
.grid+.grid{margin-top:22px}
.grid.two{grid-template-columns:repeat(auto-fit,minmax(min(440px,100%),1fr))}
figure{margin:0}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums;font-size:.92rem}
caption{text-align:left;caption-side:bottom;font-size:.82rem;padding-top:6px}
th,td{padding:5px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:baseline}
thead th{font-weight:600;color:var(--muted);font-size:.8rem;white-space:nowrap;border-bottom-width:2px}
tbody th{font-weight:500}
.n{text-align:right;white-space:nowrap}
.peer{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em;overflow-wrap:anywhere;
min-width:18ch}
.key{white-space:nowrap}
tr.dim th,tr.dim td{color:var(--muted)}
.pill{display:inline-block;padding:0 8px;border-radius:999px;font-size:.78rem;border:1px solid currentColor;
white-space:nowrap}
.st-bad{color:var(--bad);font-weight:600}.st-warn{color:var(--warn)}.st-ok{color:var(--ok)}.st-unk{color:var(--muted)}
.up{color:var(--ok)}.down{color:var(--bad)}
.ctl{background:var(--faint);color:var(--bad);border:1px solid var(--line);border-radius:3px;padding:0 2px;
font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em}
.empty{color:var(--muted);font-style:italic;margin:4px 0}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:.82rem;color:var(--muted);margin:6px 0 0}
.legend span{white-space:nowrap}
svg{display:block;max-width:100%;height:auto;overflow:visible}
svg.swatch{display:inline-block;vertical-align:-1px;margin-right:5px}
svg.meter{width:100%;height:10px;margin:8px 0 6px}
svg.trend-chart,svg.mix-bars{width:100%}
svg text{fill:var(--muted);font-size:11px;font-family:inherit}
svg .value{fill:var(--fg);font-weight:600}
svg .rule{stroke:var(--line)}
svg .trend{fill:none;stroke:var(--accent);stroke-width:2.2;stroke-linejoin:round;stroke-linecap:round}
svg .point{fill:var(--card);stroke:var(--accent);stroke-width:2}
svg .track{fill:var(--faint)}
/*FILLS*/
.chart h3{margin-bottom:4px}
ul.notes{margin:0;padding-left:20px}
ul.notes li{margin:4px 0}
footer{color:var(--muted);font-size:.84rem;margin:18px 2px 0}
footer p{margin:4px 0}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em;background:var(--faint);
padding:1px 4px;border-radius:4px}
@media (max-width:640px){main{padding:16px 10px}section{padding:14px 12px}.big{font-size:1.9rem}
th,td{padding:4px 6px}}
@media print{body{background:#fff;font-size:11pt}main{max-width:none;padding:0}nav{display:none}
section{border:1px solid #ccc;break-inside:avoid;page-break-inside:avoid;margin:10px 0;padding:10px 12px}
section.long{break-inside:auto;page-break-inside:auto}tr{break-inside:avoid}
.cards,.grid{grid-template-columns:repeat(3,1fr)}.grid.two{grid-template-columns:repeat(2,1fr)}
.scroll{overflow:visible}@page{margin:14mm}}
"""

#: The page's one stylesheet, and the policy that lets only it apply (see the module docstring).
STYLE = _stylesheet()
CSP = ("default-src 'none'; style-src 'sha256-"
       + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
       + "'; base-uri 'none'; form-action 'none'")


# -- building blocks ------------------------------------------------------------------------

def _section(ident: str, title: str, body: str, cls: str = "") -> str:
    """A titled section; ``ident`` and ``cls`` are constants (the page's anchors)."""
    klass = f' class="{cls}"' if cls else ""
    return (f'<section id="{ident}"{klass} aria-labelledby="{ident}-h">'
            f'<h2 id="{ident}-h">{_text(title)}</h2>{body}</section>\n')


def _empty(text: str) -> str:
    return f'<p class="empty">{_text(text)}</p>'


def _cell(content: str, *, num: bool = False, field: str = "", cls: str = "", header: bool = False) -> str:
    """One table cell of ready HTML (``field``: a constant naming the report value, for tests
    and scrapers)."""
    classes = " ".join(c for c in ("n" if num else "", cls) if c)
    attrs = (f' class="{classes}"' if classes else "") + (f' data-field="{field}"' if field else "")
    if header:
        return f'<th scope="row"{attrs}>{content}</th>'
    return f"<td{attrs}>{content}</td>"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, numeric: Iterable[int] = (),
           caption: str = "") -> str:
    """A table with a header row; ``rows`` hold cells made by `_cell` (or plain HTML, wrapped
    in ``<td>``); columns in ``numeric`` have right-aligned headers."""
    right = set(numeric)
    head = "".join(f'<th scope="col" class="n">{_text(h)}</th>' if i in right else f'<th scope="col">{_text(h)}</th>'
                   for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(c if c.startswith(("<td", "<th")) else f"<td>{c}</td>" for c in row) + "</tr>"
                   for row in rows)
    cap = f"<caption>{caption}</caption>" if caption else ""
    return f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _status(status: str) -> str:
    """A peer status as a coloured pill (the class comes from a fixed map, never from the text)."""
    cls = {"downgrade": "st-bad", "always-plaintext": "st-bad", "sometimes-plaintext": "st-warn",
           "tls-failed": "st-warn", "always-tls": "st-ok"}.get(status, "st-unk")
    return f'<span class="pill {cls}">{_text(status)}</span>'


def _swatch(colour: str) -> str:
    return (f'<svg class="swatch" width="10" height="10" aria-hidden="true">'
            f'<rect width="10" height="10" rx="2" {_fill(colour)}/></svg>')


def _num(x: float) -> str:
    """An SVG coordinate: short, and never ``nan``."""
    return f"{x:.1f}".rstrip("0").rstrip(".") if math.isfinite(x) else "0"


def _stack(parts: Sequence[tuple[int, str, str]], x: float, y: float, width: float, height: float,
           *, vertical: bool = False) -> str:
    """Stacked rectangles of ``(count, colour, tooltip)`` filling ``width`` (or ``height``
    upwards from ``y + height`` when ``vertical``) in proportion; tooltips are raw text."""
    total = sum(n for n, _, _ in parts)
    if total <= 0:
        return ""
    out, at = [], 0.0
    for n, colour, tip in parts:
        if n <= 0:
            continue
        size = (height if vertical else width) * n / total
        if vertical:
            box = f'x="{_num(x)}" y="{_num(y + height - at - size)}" width="{_num(width)}" height="{_num(size)}"'
        else:
            box = f'x="{_num(x + at)}" y="{_num(y)}" width="{_num(size)}" height="{_num(height)}"'
        out.append(f"<rect {box} {_fill(colour)}><title>{_text(tip, mark=False)}</title></rect>")
        at += size
    return "".join(out)


def _verdict_parts(counts: dict, noun: str) -> list[tuple[int, str, str]]:
    total = counts["total"]
    return [(int(counts[key]), colour, f"{label}: {_n(counts[key])} {noun} ({_pct(_share(counts[key], total))})")
            for key, label, colour in _VERDICTS]


def _meter(counts: dict, noun: str, label: str) -> str:
    """A horizontal bar of the verdicts of ``counts`` (TLS, plaintext, failed, unknown)."""
    parts = _verdict_parts(counts, noun)
    summary = ", ".join(tip for n, _, tip in parts if n) or f"no {noun}"
    return (f'<svg class="meter" viewBox="0 0 240 10" width="240" height="10" preserveAspectRatio="none" '
            f'role="img"><title>{_text(f"{label}: {summary}", mark=False)}</title>'
            f'<rect width="240" height="10" rx="3" {_fill("faint")}/>{_stack(parts, 0, 0, 240, 10)}</svg>')


def _legend(items: Iterable[tuple[str, str]]) -> str:
    return '<p class="legend">' + "".join(f"<span>{_swatch(c)}{_text(t)}</span>" for c, t in items) + "</p>"


# -- the headline ---------------------------------------------------------------------------

_BLOCKS = (("mx", "MX inbound"), ("submission", "submission"), ("outbound", "outbound"))


def _card(key: str, label: str, block: dict) -> str:
    """One direction at a glance: coverage of mail, its verdicts, and the sessions' coverage."""
    mail = block["messages"]
    unknown = f", {_n(mail['unknown'])} unknown" if mail["unknown"] else ""
    noun = "deliveries" if key == "outbound" else "sessions"
    return (f'<div class="card" id="card-{key}"><div class="label">{_text(label)}</div>'
            f'<div class="big" data-field="{key}.messages.coverage">{_pct(mail["coverage"])}</div>'
            f'<div class="sub">of mail over TLS: <span data-field="{key}.messages.tls">{_n(mail["tls"])}</span> '
            f'of <span data-field="{key}.messages.total">{_n(mail["total"])}</span> messages{unknown}</div>'
            f'{_meter(mail, "messages", label + " mail")}'
            f'<div class="sub">{noun}: <strong data-field="{key}.coverage">{_pct(block["coverage"])}</strong> TLS of '
            f'<span data-field="{key}.total">{_n(block["total"])}</span></div></div>')


def _internal_line(report: dict) -> str:
    internal = report["internal"]
    sessions, deliveries = internal["inbound"]["total"], internal["outbound"]["total"]
    if not sessions and not deliveries:
        return ('<p class="muted" id="internal">No hops inside the mail system were set apart (loopback, '
                'local transports, <code>--internal</code> networks or services).</p>')
    mail = internal["inbound"]["messages"]["total"] + internal["outbound"]["messages"]["total"]
    return (f'<p class="muted" id="internal">Internal hops, counted apart and not in the coverage: '
            f'<span data-field="internal.inbound.total">{_n(sessions)}</span> inbound sessions and '
            f'<span data-field="internal.outbound.total">{_n(deliveries)}</span> outbound deliveries '
            f'({_n(mail)} messages; a content filter\'s round trip, local transports). '
            f'<code>--internal none</code> counts them too.</p>')


def _headline(report: dict) -> str:
    cards = "".join(_card(key, label, report[key]) for key, label in _BLOCKS)
    rows = []
    for key, label in _BLOCKS:
        d, mail = report[key], report[key]["messages"]
        rows.append([_cell(_text(label), header=True),
                     _cell(_n(mail["total"]), num=True), _cell(_pct(mail["coverage"]), num=True),
                     _cell(_n(d["total"]), num=True), _cell(_pct(d["coverage"]), num=True),
                     _cell(_n(d["plaintext"]), num=True, field=f"{key}.plaintext"),
                     _cell(_n(d["tls_failed"]), num=True, field=f"{key}.tls_failed"),
                     _cell(_n(d["unknown"]), num=True, field=f"{key}.unknown")])
    table = _table(["", "mail", "TLS", "sessions", "TLS", "plaintext", "failed", "unknown"], rows,
                   numeric=range(1, 8),
                   caption="mail: messages accepted or sent; sessions: smtpd sessions (MX, submission) and smtp "
                           "deliveries (outbound); TLS = TLS / (total - unknown)")
    legend = _legend((c, label) for _, label, c in _VERDICTS)
    return _section("headline", "Coverage of mail",
                    f'<div class="cards">{cards}</div>{legend}{table}{_internal_line(report)}')


# -- the trend ------------------------------------------------------------------------------

#: Chart geometry (SVG user units): coverage panel, then the panel of mail volume beneath it.
_W, _H = 340, 206
_LEFT, _RIGHT, _TOP, _BOTTOM = 40, 10, 20, 112
_VOL_TOP, _VOL_BOTTOM = 134, 174


def _short_period(label: str, by: str) -> str:
    """An axis label: ``W48`` for a week, ``11-28`` for a day, the month as it is."""
    if by == "week" and "-W" in label:
        return label.split("-", 1)[1]
    if by == "day" and len(label) == 10:
        return label[5:]
    return label


def _plural(by: str) -> str:
    return {"day": "days", "week": "weeks", "month": "months"}.get(by, "periods")


def _chart_desc(label: str, periods: list[dict], key: str, by: str) -> str:
    values = [(p["period"], p[key]["messages"]["coverage"]) for p in periods]
    known = [(period, v) for period, v in values if v is not None]
    span = f"{len(periods)} {_plural(by)} from {periods[0]['period']} to {periods[-1]['period']}"
    if not known:
        return f"{label}: {span}; no mail to measure."
    low = min(known, key=lambda pv: pv[1])
    return (f"{label}: {span}; coverage of mail {_pct(known[0][1])} first, {_pct(known[-1][1])} last, "
            f"lowest {_pct(low[1])} ({low[0]}).")


def _coverage_scale(values: Sequence[float | None]) -> float:
    """The bottom of the coverage axis: 50 % when every value is above it (a truncated axis,
    labelled), else 0 %, so a drop of a few points shows but is never exaggerated further."""
    known = [v for v in values if v is not None]
    return 0.5 if known and min(known) >= 0.5 else 0.0


def _trend_chart(periods: list[dict], key: str, label: str, by: str) -> str:
    """Coverage of mail per period as a line with one point per period (none where a period
    had no mail to measure), over a bar per period of its messages by verdict."""
    band = (_W - _LEFT - _RIGHT) / len(periods)
    xs = [_LEFT + band * (i + 0.5) for i in range(len(periods))]
    mail = [p[key]["messages"] for p in periods]
    low = _coverage_scale([m["coverage"] for m in mail])

    def y(v: float) -> float:
        return _BOTTOM - (v - low) / (1 - low) * (_BOTTOM - _TOP)

    ident = f"trend-{key}"
    title = _text(f"{label}: coverage of mail by {by}", mark=False)
    return (f'<figure class="chart" id="{ident}-fig"><h3>{_text(label)}</h3>'
            f'<svg id="{ident}" class="trend-chart" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img" '
            f'aria-labelledby="{ident}-t {ident}-d" font-family="sans-serif" font-size="11">'
            f'<title id="{ident}-t">{title}</title>'
            f'<desc id="{ident}-d">{_text(_chart_desc(label, periods, key, by), mark=False)}</desc>'
            + "".join(_rule(y(g), f"{g * 100:.0f}%") for g in (low, (low + 1) / 2, 1.0))
            + _trend_line(xs, mail, y) + _trend_points(periods, xs, mail, y)
            + _volume(periods, key, xs, band) + _x_labels(periods, xs, by) + "</svg></figure>")


def _rule(y: float, label: str) -> str:
    """A horizontal grid line across the plot, labelled on the left."""
    return (f'<line class="rule" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{_num(y)}" y2="{_num(y)}" '
            f'stroke="{_COLOURS["line"][0]}"/><text x="{_LEFT - 6}" y="{_num(y + 4)}" text-anchor="end">{label}</text>')


def _trend_line(xs: list[float], mail: list[dict], y: Callable[[float], float]) -> str:
    """The coverage line, broken where a period has no coverage (no mail to measure)."""
    path, pen = [], "M"
    for x, m in zip(xs, mail):
        if m["coverage"] is None:
            pen = "M"
            continue
        path.append(f"{pen}{_num(x)} {_num(y(m['coverage']))}")
        pen = "L"
    if not path:
        return ""
    return f'<path class="trend" d="{" ".join(path)}" fill="none" stroke="{_COLOURS["accent"][0]}"/>'


def _trend_points(periods: list[dict], xs: list[float], mail: list[dict], y: Callable[[float], float]) -> str:
    """A point per period with coverage, its numbers as a tooltip (and as a label, when few)."""
    n = len(periods)
    radius = 3.5 if n <= 16 else 2.5 if n <= 62 else 1.5
    out = []
    for p, x, m in zip(periods, xs, mail):
        if m["coverage"] is None:
            continue
        change = m.get("coverage_change")
        tip = (f"{p['period']}: {_pct(m['coverage'])} of {_n(m['total'])} messages"
               + (f" ({_pp(change)} pp)" if change is not None else ""))
        cy = y(m["coverage"])
        out.append(f'<circle class="point" cx="{_num(x)}" cy="{_num(cy)}" r="{radius}" fill="#fff" '
                   f'stroke="{_COLOURS["accent"][0]}"><title>{_text(tip, mark=False)}</title></circle>')
        if n <= 12:
            out.append(f'<text class="value" x="{_num(x)}" y="{_num(cy - 8)}" text-anchor="middle">'
                       f'{_pct(m["coverage"])}</text>')
    return "".join(out)


def _x_labels(periods: list[dict], xs: list[float], by: str) -> str:
    """Period labels under the bars, at most eight of them."""
    step = max(1, math.ceil(len(periods) / 8))
    return "".join(f'<text x="{_num(xs[i])}" y="{_H - 14}" text-anchor="middle">'
                   f'{_text(_short_period(periods[i]["period"], by), mark=False)}</text>'
                   for i in range(0, len(periods), step))


def _volume(periods: list[dict], key: str, xs: list[float], band: float) -> str:
    """Bars of each period's messages (TLS, plaintext, failed, unknown), scaled to the largest."""
    most = max((p[key]["messages"]["total"] for p in periods), default=0)
    out = [f'<text x="{_LEFT - 6}" y="{_VOL_TOP + 8}" text-anchor="end">{_n(most)}</text>',
           f'<text x="{_LEFT - 6}" y="{_VOL_BOTTOM}" text-anchor="end">mail</text>',
           f'<line class="rule" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{_VOL_BOTTOM}" y2="{_VOL_BOTTOM}" '
           f'stroke="{_COLOURS["line"][0]}"/>']
    width = min(band * 0.56, 26)
    for p, x in zip(periods, xs):
        m = p[key]["messages"]
        if not most or not m["total"]:
            continue
        height = (_VOL_BOTTOM - _VOL_TOP) * m["total"] / most
        parts = [(n, c, f"{p['period']}: {tip}") for n, c, tip in _verdict_parts(m, "messages")]
        bar = _stack(parts, x - width / 2, _VOL_BOTTOM - height, width, height, vertical=True)
        out.append(f'<g class="bar">{bar}</g>')
    return "".join(out)


def _periods_table(periods: list[dict], by: str) -> str:
    """The numbers behind the charts, as the terminal report's table of periods."""
    rows = []
    for i, p in enumerate(periods):
        cells = [_cell(_text(p["period"]), header=True, cls="key")]
        for key in ("mx", "submission", "outbound"):
            m = p[key]["messages"]
            change = m.get("coverage_change")
            trend = "up" if change and change > 0 else "down" if change and change < 0 else ""
            cells += [_cell(_n(m["total"]), num=True, field=f"periods.{i}.{key}.messages.total"),
                      _cell(_pct(m["coverage"]), num=True, field=f"periods.{i}.{key}.messages.coverage"),
                      _cell(_pp(change), num=True, cls=trend)]
        rows.append(cells)
    return _table([by, "MX mail", "TLS", "±pp", "submission", "TLS", "±pp", "outbound", "TLS", "±pp"], rows,
                  numeric=range(1, 10),
                  caption="±pp: change of the coverage of mail against the period before, in percentage points")


def _trend(report: dict) -> str:
    periods = report.get("periods")
    by = str(report.get("by") or "period")
    if not periods:
        body = ('<p class="empty" id="trend-hint">No trend in this report: run '
                '<code>tlslog report FILES --by week --format html</code> (or <code>--by day</code>, '
                '<code>--by month</code>) for coverage charts per period.</p>')
        return _section("trend", "Coverage of mail over time", body)
    charts = "".join(_trend_chart(periods, key, label, by) for key, label in _BLOCKS)
    legend = _legend([("accent", "coverage of mail (line; axis on the left)"),
                      *((c, f"{label} messages (bars)") for _, label, c in _VERDICTS)])
    return _section("trend", f"Coverage of mail by {by}",
                    f'<div class="grid">{charts}</div>{legend}{_periods_table(periods, by)}', "long")


# -- what to act on -------------------------------------------------------------------------

def _by_direction(lists: dict[str, list[dict]]) -> list[tuple[str, dict]]:
    return [("in", row) for row in lists.get("inbound", [])] + [("out", row) for row in lists.get("outbound", [])]


def _peer(row: dict) -> str:
    return _cell(_text(_who(row)), cls="peer")


def _downgrades(report: dict) -> str:
    rows = [[_cell(d, header=True), _peer(r), _cell(_n(r["tls"]), num=True), _cell(_n(r["plaintext"]), num=True),
             _cell(_text(_stamp(r.get("first_tls"))), num=True), _cell(_text(_stamp(r.get("downgrade_at"))), num=True),
             _cell(_text(_stamp(r.get("last_seen"))), num=True)]
            for d, r in _by_direction(report["downgrades"])]
    title = "Downgrades: plaintext after TLS (stripped STARTTLS?)"
    if not rows:
        return _section("downgrades", title, _empty("No downgrades: no peer went plaintext after using TLS."))
    table = _table(["", "peer", "TLS", "plaintext", "first TLS", "since", "last seen"], rows, numeric=range(2, 7),
                   caption="a plaintext session or delivery later than one of the peer's TLS ones: a man in the "
                           "middle stripping STARTTLS, or a broken upgrade")
    return _section("downgrades", title, table, "urgent")


def _plaintext(ident: str, title: str, rows: list[dict], count: str, none: str, header: str = "") -> str:
    if not rows:
        return _section(ident, title, _empty(none))
    who = "destination" if "domain" in rows[0] else "peer"
    body = _table([who, header or count, "of all", "status"],
                  [[_peer(r), _cell(_n(r[count]), num=True), _cell(_pct(r["share"]), num=True), _status(r["status"])]
                   for r in rows], numeric=(1, 2))
    return _section(ident, title, body)


def _unverified(report: dict) -> str:
    rows = report.get("unverified_destinations") or []
    title = "Destinations never Verified or Trusted (verify would fail)"
    if not rows:
        return _section("unverified-destinations", title,
                        _empty("None: every destination had a Verified or Trusted delivery."))
    body = _table(["destination", "deliveries", "TLS", "plaintext"],
                  [[_peer(r), _cell(_n(r["deliveries"]), num=True), _cell(_n(r["tls"]), num=True),
                    _cell(_n(r["plaintext"]), num=True)] for r in rows], numeric=(1, 2, 3),
                  caption="recipient domains where smtp_tls_security_level = verify would have refused every delivery")
    return _section("unverified-destinations", title, body)


# -- the mix --------------------------------------------------------------------------------

def _keys(inbound: dict[str, int], outbound: dict[str, int], order: Sequence[str]) -> list[str]:
    """Keys of both directions: ``order`` first, then the rest as they come, ``unknown`` last."""
    seen = list(dict.fromkeys([*inbound, *outbound]))
    keys = [k for k in order if k in seen] + [k for k in seen if k not in order and k != "unknown"]
    return keys + (["unknown"] if "unknown" in seen else [])


def _colours(kind: str, keys: Sequence[str]) -> dict[str, str]:
    """A colour per key: by meaning where `_KEY_COLOURS` has one, the palette in turn otherwise
    (by position, never from the key's text), grey for ``unknown``."""
    fixed = _KEY_COLOURS.get(kind, {})
    free = [c for c in _PALETTE if c not in fixed.values()]
    out, used = {}, 0
    for key in keys:
        if key == "unknown":
            out[key] = "unk"
        elif key in fixed:
            out[key] = fixed[key]
        else:
            out[key] = free[used % len(free)]
            used += 1
    return out


def _breakdown(ident: str, title: str, kind: str, inbound: dict[str, int], outbound: dict[str, int],
               order: Sequence[str] = ()) -> str:
    """One mix (protocol, trust, key exchange) of the TLS rows of each direction: a stacked bar
    per direction, then the counts and shares."""
    keys = _keys(inbound, outbound, order)
    colours = _colours(kind, keys)
    totals = sum(inbound.values()), sum(outbound.values())
    bars = []
    for i, (name, counts, total) in enumerate((("in", inbound, totals[0]), ("out", outbound, totals[1]))):
        parts = [(int(counts.get(k, 0)), colours[k],
                  f"{name}: {k} {_n(counts.get(k, 0))} ({_pct(_share(counts.get(k, 0), total))})") for k in keys]
        y = 4 + i * 22
        bars.append(f'<text x="0" y="{y + 11}">{name}</text><rect x="30" y="{y}" width="290" height="14" rx="3" '
                    f'{_fill("faint")}/>{_stack(parts, 30, y, 290, 14)}')
    label = f"{title}: " + "; ".join(f"{k} {_n(inbound.get(k, 0))} in, {_n(outbound.get(k, 0))} out" for k in keys)
    svg = (f'<svg id="{ident}-bars" class="mix-bars" viewBox="0 0 320 48" width="320" height="48" role="img" '
           f'font-family="sans-serif" font-size="11"><title>{_text(label, mark=False)}</title>{"".join(bars)}</svg>')
    rows = [[_cell(_swatch(colours[k]) + _text(k), header=True, cls="key"),
             _cell(_n(inbound.get(k, 0)), num=True), _cell(_pct(_share(inbound.get(k, 0), totals[0])), num=True),
             _cell(_n(outbound.get(k, 0)), num=True), _cell(_pct(_share(outbound.get(k, 0), totals[1])), num=True)]
            for k in keys]
    table = _table(["", "in", "share", "out", "share"], rows, numeric=range(1, 5)) if rows else _empty("none")
    return f'<div id="{ident}"><h3>{_text(title)}</h3>{svg if keys else ""}{table}</div>'


def _ip_versions(report: dict) -> str:
    rows = []
    for version in ("4", "6"):
        cells = [_cell(f"IPv{version}", header=True)]
        for key in ("mx", "outbound"):
            part = report[key]["ip_versions"][version]
            field = f"{key}.ip_versions.{version}.messages.total"
            cells += [_cell(_n(part["messages"]["total"]), num=True, field=field),
                      _cell(_pct(part["messages"]["coverage"]), num=True),
                      _cell(_n(part["total"]), num=True)]
        rows.append(cells)
    table = _table(["", "MX mail", "TLS", "sessions", "out mail", "TLS", "deliveries"], rows, numeric=range(1, 7))
    return f'<div id="ip-versions"><h3>IPv4 and IPv6 (mail, TLS share)</h3>{table}</div>'


_DIRECTION = {"inbound": "in", "outbound": "out"}


def _services(report: dict) -> str:
    rows = []
    for direction in ("inbound", "outbound"):
        for service, d in (report[direction].get("by_service") or {}).items():
            rows.append([_cell(_text(service or "(none)"), header=True, cls="peer"), _DIRECTION[direction],
                         _cell(_n(d["messages"]["total"]), num=True), _cell(_pct(d["messages"]["coverage"]), num=True),
                         _cell(_n(d["total"]), num=True), _cell(_pct(d["coverage"]), num=True)])
    table = _table(["service", "", "mail", "TLS", "sessions", "TLS"], rows, numeric=range(2, 6)) if rows \
        else _empty("none")
    return f'<div id="services"><h3>By service (as logged)</h3>{table}</div>'


def _mix(report: dict) -> str:
    inbound, outbound = report["inbound"], report["outbound"]
    parts = [
        _breakdown("protocol", "Protocol (TLS)", "protocol", inbound["by_protocol"], outbound["by_protocol"],
                   schema.PROTOCOLS),
        _breakdown("trust", "Trust (TLS)", "trust", inbound["by_trust"], outbound["by_trust"], schema.TRUSTS),
        _breakdown("key-exchange", "Key exchange (TLS)", "key_exchange", inbound.get("by_key_exchange", {}),
                   outbound.get("by_key_exchange", {})),
    ]
    more = _ip_versions(report) + _services(report)
    return _section("mix", "Protocol, trust, key exchange and IP version",
                    f'<div class="grid">{"".join(parts)}</div><div class="grid two">{more}</div>')


_WEAK_LABELS = {"old_protocol": "below TLSv1.2", "no_forward_secrecy": "no forward secrecy",
                "non_aead": "not AEAD (CBC, RC4)", "broken_cipher": "RC4/3DES/EXPORT/NULL/anon",
                "short_key": "under 128 bits", "unverified": "unverified (outbound)"}
_REASON_LABELS = {"old-protocol": "below TLSv1.2", "no-forward-secrecy": "no forward secrecy", "non-aead": "not AEAD",
                  "broken-cipher": "RC4/3DES/EXPORT/NULL/anon", "short-key": "under 128 bits"}


def _weak(report: dict) -> str:
    blocks = [report[k]["weak_tls"] for k, _ in _BLOCKS]
    tls = [report[k]["tls"] for k, _ in _BLOCKS]
    rows = [[_cell("weak, any reason", header=True),
             *(_cell(f"{_n(b['total'])} ({_pct(_share(b['total'], t))})", num=True, field=f"{k}.weak_tls.total")
               for b, t, (k, _) in zip(blocks, tls, _BLOCKS))]]
    rows += [[_cell(_text(label), header=True), *(_cell(_n(b.get(key, 0)), num=True) for b in blocks)]
             for key, label in _WEAK_LABELS.items() if any(b.get(key) for b in blocks)]
    table = _table(["", "MX", "submission", "outbound"], rows, numeric=(1, 2, 3),
                   caption="TLS sessions and deliveries on a protocol below TLSv1.2, without forward secrecy, "
                           "without an AEAD cipher, on a broken cipher or under 128 bits; outbound TLS below "
                           "Verified/Trusted is unverified")
    return _section("weak-tls", "Weak TLS", table)


def _weak_peers(report: dict) -> str:
    rows = [[_cell(d, header=True), _peer(r), _cell(_n(r["sessions"]), num=True),
             _text(", ".join(_REASON_LABELS.get(x, x) for x in r.get("reasons", [])))]
            for d, r in _by_direction(report["weak_tls_peers"])]
    if not rows:
        return _section("weak-peers", "Peers on weak TLS", _empty("None."))
    return _section("weak-peers", "Peers on weak TLS", _table(["", "peer", "rows", "why"], rows, numeric=(2,)))


def _failures(report: dict) -> str:
    rows = [[_cell(d, header=True), _cell(_text(r["reason"]), cls="peer"), _cell(_n(r["count"]), num=True),
             _cell(_n(r["peers"]), num=True), _cell(_text(r.get("top_peer") or ""), cls="peer")]
            for d, r in _by_direction(report["failures"])]
    if not rows:
        return _section("failures", "TLS failures by reason", _empty("No failed handshakes or TLS-required deferrals."))
    return _section("failures", "TLS failures by reason",
                    _table(["", "reason", "count", "peers", "most from"], rows, numeric=(2, 3)))


def _notes(report: dict) -> str:
    notes = report.get("notes") or []
    body = ('<ul class="notes">' + "".join(f"<li>{_text(note)}</li>" for note in notes) + "</ul>") if notes \
        else _empty("None.")
    return _section("notes", "Notes", body)


def _footer(report: dict) -> str:
    lines = report["lines"]
    text = (f"lines: {_n(lines['read'])} read, {_n(lines['postfix'])} Postfix, {_n(lines['parsed'])} parsed, "
            f"{_n(lines['unparsed'])} unparsed, {_n(lines['other'])} other programs, "
            f"{_n(lines['unrecognized'])} unrecognised")
    if lines.get("duplicate"):
        text += f", {_n(lines['duplicate'])} repeated verbatim"
    if lines.get("invalid_utf8"):
        text += f", {_n(lines['invalid_utf8'])} with invalid UTF-8"
    return (f'<footer id="lines"><p>{text}</p><p>period covered: {_period(report)}</p>'
            '<p>every peer, its status and first/last seen: <code>tlslog peers FILES</code></p>'
            f'<p>generated by tlslog {_text(__version__)}; coverage = TLS / (total − unknown)</p></footer>')


def _period(report: dict, ids: bool = False) -> str:
    """First and last session's time (``ids``: once per page, for tests and scrapers)."""
    period = report.get("period")
    if not period:
        return "no session had a time"
    first, last = (' id="period-first"', ' id="period-last"') if ids else ("", "")
    return (f'<span{first}>{_text(_stamp(period["first"]))}</span> → '
            f'<span{last}>{_text(_stamp(period["last"]))}</span>')


_NAV = (("headline", "coverage"), ("trend", "trend"), ("downgrades", "downgrades"),
        ("plaintext-clients", "plaintext clients"), ("plaintext-servers", "plaintext servers"),
        ("plaintext-destinations", "plaintext destinations"), ("unverified-destinations", "unverified"),
        ("mix", "protocol & trust"), ("weak-tls", "weak TLS"), ("failures", "failures"), ("notes", "notes"),
        ("lines", "lines"))


def report_html(data: dict) -> str:
    """The report (`tlslog.report.build_report`, with ``periods`` under ``--by``) as one HTML
    page, in the terminal report's order: the headline, the trend, then what to act on."""
    plain = data["plaintext_peers"]
    body = "".join([
        _headline(data),
        _trend(data),
        _downgrades(data),
        _plaintext("plaintext-clients", "Plaintext clients (inbound)", plain["inbound"], "sessions",
                   "No inbound client sent plaintext."),
        _plaintext("plaintext-servers", "Plaintext servers (outbound)", plain["outbound"], "sessions",
                   "No delivery went out in plaintext.", "deliveries"),
        _plaintext("plaintext-destinations", "Plaintext destinations (recipient domains)",
                   data["plaintext_domains"]["outbound"], "deliveries", "No destination got plaintext."),
        _unverified(data),
        _mix(data),
        _weak(data),
        _weak_peers(data),
        _failures(data),
        _notes(data),
    ])
    nav = "".join(f'<a href="#{ident}">{_text(label)}</a>' for ident, label in _NAV)
    title = "TLS coverage" + (f" {_stamp(data['period']['first'])} → {_stamp(data['period']['last'])}"
                              if data.get("period") else "")
    return ("<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="color-scheme" content="light dark">'
            '<meta name="referrer" content="no-referrer">'
            f'<meta name="generator" content="tlslog {_text(__version__)}">'
            f"<title>{_text(title, mark=False)}</title><style>{STYLE}</style></head>\n"
            f'<body><main><header><h1>TLS coverage</h1><p class="sub">{_period(data, ids=True)}</p>'
            f'<nav aria-label="sections">{nav}</nav></header>\n{body}{_footer(data)}</main></body></html>\n')
