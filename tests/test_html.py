"""``report --format html``: one self-contained page whose numbers are the JSON report's, and
whose log text stays text however hostile (no browser here: see test_browser.py)."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tlslog.html import CSP, STYLE, _text, report_html

from .conftest import REAL_SAMPLES, SAMPLES, maillogs, tlslog

MONTH = SAMPLES / "synthetic" / "month.log.gz"
YEAR = "2026"  # of the year-less samples' stamps: the dates asserted below, whatever today is
SECTIONS = ["headline", "trend", "downgrades", "plaintext-clients", "plaintext-servers", "plaintext-destinations",
            "unverified-destinations", "mix", "weak-tls", "weak-peers", "failures", "notes"]
#: Every element the page may hold: a hostile string that became markup would add another.
TAGS = {"html", "head", "meta", "title", "style", "body", "main", "header", "h1", "h2", "h3", "p", "nav", "a",
        "section", "div", "span", "strong", "code", "table", "caption", "thead", "tbody", "tr", "th", "td", "ul",
        "li", "footer", "figure", "svg", "desc", "rect", "line", "path", "circle", "text", "g"}


# -- a minimal DOM from the stdlib parser ----------------------------------------------------

@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self, tag: str | None = None):  # noqa: ANN201
        if tag is None or self.tag == tag:
            yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.iter(tag)

    def find(self, **attrs: str) -> list[Node]:
        return [n for n in self.iter() if all(n.attrs.get(k.rstrip("_")) == v for k, v in attrs.items())]

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


class _Builder(HTMLParser):
    VOID = {"meta", "link", "br", "hr", "img", "input"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]
        self.attributes: list[tuple[str, str, str]] = []  # (tag, name, value) of every attribute
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.attributes += [(tag, k, v or "") for k, v in attrs]
        self.tags.append(tag)
        self.stack[-1].children.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def find(self, **attrs: str) -> list[Node]:
        return self.root.find(**attrs)

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(page: str) -> _Builder:
    builder = _Builder()
    builder.feed(page)
    builder.close()
    assert [n.tag for n in builder.stack] == ["#document"], "unclosed elements"
    return builder


@functools.cache
def _report(*args: str) -> tuple[str, dict]:
    """The HTML page and the JSON report of the same input, both from the CLI (in process)."""
    html_run = tlslog("report", *args, "--year", YEAR, "--format", "html")
    assert html_run.code == 0, html_run.stderr
    json_run = tlslog("report", *args, "--year", YEAR, "--format", "json")
    return html_run.stdout, json.loads(json_run.stdout)


def month() -> tuple[str, dict, _Builder]:
    page, data = _report(str(MONTH), "--by", "week", "--internal", "none")
    return page, data, parse(page)


# -- structure -------------------------------------------------------------------------------

def test_sections_in_the_terminal_reports_order():
    _, _, dom = month()
    assert [s.attrs["id"] for s in dom.root.iter("section")] == SECTIONS
    titles = [s.find(id=f"{s.attrs['id']}-h")[0].text() for s in dom.root.iter("section")]
    assert titles[:3] == ["Coverage of mail", "Coverage of mail by week",
                          "Downgrades: plaintext after TLS (stripped STARTTLS?)"]
    assert "Plaintext clients (inbound)" in titles and "TLS failures by reason" in titles
    assert set(dom.tags) <= TAGS
    # every table has a header row of <th scope="col">
    for table in dom.root.iter("table"):
        heads = list(table.iter("thead"))
        assert len(heads) == 1 and all(th.attrs.get("scope") == "col" for th in heads[0].iter("th"))


def test_self_contained_and_script_free():
    page, _, dom = month()
    assert page.startswith("<!DOCTYPE html>\n<html lang=\"en\">")
    assert not {"script", "link", "img", "iframe", "object", "embed", "base", "form"} & set(dom.tags)
    assert [n for _, n, _ in dom.attributes if n.startswith("on")] == []
    # nothing to fetch: the only URLs are the page's own anchors
    urls = [(t, n, v) for t, n, v in dom.attributes if n in ("href", "src", "xlink:href", "action", "srcset")]
    assert urls and all(n == "href" and v.startswith("#") for _, n, v in urls)
    assert not re.search(r"url\(|@import|https?://", STYLE)
    for svg in dom.root.iter("svg"):
        assert svg.attrs.get("role") == "img" or svg.attrs.get("aria-hidden") == "true"
        if svg.attrs.get("role") == "img":
            assert next(svg.iter("title")).text()


def test_csp_meta_allows_only_the_hashed_stylesheet():
    _, _, dom = month()
    metas = [m for m in dom.root.iter("meta") if m.attrs.get("http-equiv") == "Content-Security-Policy"]
    assert len(metas) == 1
    policy = metas[0].attrs["content"]
    assert policy == CSP
    styles = list(dom.root.iter("style"))
    assert len(styles) == 1 and styles[0].text() == STYLE
    digest = base64.b64encode(hashlib.sha256(styles[0].text().encode()).digest()).decode()
    assert policy == (f"default-src 'none'; style-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")
    assert "unsafe" not in policy
    assert [n for _, n, _ in dom.attributes if n == "style"] == []  # a hashed policy refuses style attributes


def test_light_dark_print_and_small_screens():
    assert "@media (prefers-color-scheme:dark)" in STYLE and "@media print" in STYLE
    assert "@media (max-width:640px)" in STYLE
    _, _, dom = month()
    names = {m.attrs.get("name"): m.attrs.get("content") for m in dom.root.iter("meta")}
    assert names["color-scheme"] == "light dark" and names["viewport"].startswith("width=device-width")


# -- numbers ---------------------------------------------------------------------------------

def _value(data: dict, path: str) -> object:
    value: object = data
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]  # type: ignore[index]
    return value


def _shown(data: dict, path: str) -> str:
    """How the page must show the report value at ``path`` (the terminal report's formats)."""
    value = _value(data, path)
    if path.endswith("coverage"):
        return "–" if value is None else f"{value * 100:.1f}%"  # type: ignore[operator]
    if path.endswith("weak_tls.total"):
        tls = _value(data, path.rsplit(".", 2)[0] + ".tls")
        return f"{value:,} ({value / tls * 100:.1f}%)"  # type: ignore[operator]
    return f"{value:,}"


def test_numbers_are_the_json_reports():
    _, data, dom = month()
    fields = {n.attrs["data-field"]: n.text() for n in dom.root.iter() if "data-field" in n.attrs}
    expected = {f"{k}.{f}" for k in ("mx", "submission", "outbound")
                for f in ("messages.coverage", "messages.tls", "messages.total", "coverage", "total", "plaintext",
                          "tls_failed", "unknown", "weak_tls.total")} \
        | {f"{k}.ip_versions.{v}.messages.total" for k in ("mx", "outbound") for v in ("4", "6")} \
        | {f"periods.{i}.{k}.messages.{f}" for i in range(len(data["periods"]))
           for k in ("mx", "submission", "outbound") for f in ("total", "coverage")}
    assert expected <= set(fields)
    for path, text in fields.items():
        assert text == _shown(data, path), path
    # spot checks against the bundled month (so a wrong JSON cannot agree with a wrong page)
    assert (fields["mx.messages.coverage"], fields["mx.messages.total"], fields["outbound.coverage"]) == (
        "79.5%", "968", "85.5%")
    assert fields["periods.4.mx.messages.coverage"] == "73.2%"
    first, last = dom.find(id="period-first")[0].text(), dom.find(id="period-last")[0].text()
    assert (first, last) == (data["period"]["first"][:16].replace("T", " "), "2026-12-26 16:01")
    lines = dom.find(id="lines")[0].text()
    assert "lines: 30,000 read, 24,001 Postfix, 11,964 parsed, 0 unparsed, 5,999 other programs" in lines


def test_lists_show_the_reports_peers():
    _, data, dom = month()
    def peers(ident: str) -> list[str]:
        return [td.text() for td in dom.find(id=ident)[0].iter("td") if "peer" in td.classes()]

    inbound = data["plaintext_peers"]["inbound"]
    assert peers("plaintext-clients") == [f"{r['peer_name']}[{r['peer_ip']}]" for r in inbound]
    assert peers("plaintext-destinations") == [r["domain"] for r in data["plaintext_domains"]["outbound"]]
    downgrades = peers("downgrades")
    assert len(downgrades) == 6 and downgrades[0] == "mail-lf1-f64.posteo.de[37.190.240.223]"
    assert "urgent" in dom.find(id="downgrades")[0].classes()
    failures = dom.find(id="failures")[0].text()
    assert "lost connection after STARTTLS" in failures and "115" in failures
    notes = [li.text() for li in dom.find(id="notes")[0].iter("li")]
    assert notes == data["notes"]


def test_trend_charts_have_one_point_per_period():
    _, data, dom = month()
    periods = data["periods"]
    assert len(periods) == 5
    for key in ("mx", "submission", "outbound"):
        chart = dom.find(id=f"trend-{key}")[0]
        assert chart.tag == "svg" and chart.attrs["role"] == "img"
        points = [c for c in chart.iter("circle") if "point" in c.classes()]
        assert len(points) == len(periods)
        for point, period in zip(points, periods):
            coverage = period[key]["messages"]["coverage"]
            assert point.text().startswith(f"{period['period']}: {coverage * 100:.1f}% of "
                                           f"{period[key]['messages']['total']:,} messages")
        # the line goes through every point, left to right, higher coverage higher up
        path = next(p for p in chart.iter("path") if "trend" in p.classes())
        vertices = [tuple(map(float, v.split())) for v in re.split(r"[ML]", path.attrs["d"]) if v.strip()]
        assert vertices == [(float(p.attrs["cx"]), float(p.attrs["cy"])) for p in points]
        assert [x for x, _ in vertices] == sorted(x for x, _ in vertices)
        values = [p[key]["messages"]["coverage"] for p in periods]
        for (_, y1), (_, y2), v1, v2 in zip(vertices, vertices[1:], values, values[1:]):
            assert (y1 < y2) == (v1 > v2) or v1 == v2
        assert len([g for g in chart.iter("g") if "bar" in g.classes()]) == len(periods)
    desc = next(dom.find(id="trend-mx")[0].iter("desc")).text()
    assert desc == ("MX inbound: 5 weeks from 2026-W48 to 2026-W52; coverage of mail 88.6% first, 73.2% last, "
                    "lowest 73.2% (2026-W52).")


def test_without_periods_the_page_says_how_to_get_them():
    page, data = _report(str(MONTH), "--internal", "none")
    assert "periods" not in data
    dom = parse(page)
    trend = dom.find(id="trend")[0]
    assert "--by week" in trend.text()
    assert not list(trend.iter("svg"))
    assert [s.attrs["id"] for s in dom.root.iter("section")] == SECTIONS


@pytest.mark.parametrize("sample", REAL_SAMPLES, ids=lambda p: p.name)
def test_every_real_postfix_sample_renders(sample):
    page, data = _report(*map(str, maillogs(sample)), "--by", "day")
    dom = parse(page)
    assert [s.attrs["id"] for s in dom.root.iter("section")] == SECTIONS
    assert set(dom.tags) <= TAGS
    if data["internal"]["inbound"]["total"]:
        assert [n.text() for n in dom.root.iter() if n.attrs.get("data-field") == "internal.inbound.total"] == [
            f"{data['internal']['inbound']['total']:,}"]


def test_empty_report_renders():
    """A report with nothing counted (no time, no coverage anywhere) is still a page."""
    _, data = _report(str(MONTH), "--by", "week", "--since", "2030-01-01")
    page = report_html(data)
    dom = parse(page)
    assert [s.attrs["id"] for s in dom.root.iter("section")] == SECTIONS
    assert dom.find(**{"data-field": "mx.messages.coverage"})[0].text() == "–"


# -- hostile log text ------------------------------------------------------------------------

SCRIPT = "<script>window.__pwned=1</script>"
ATTRIBUTE = '"onload=alert(1) x="'
#: Peer names (no blank or bracket: Postfix's name[addr]) that would run script as markup.
HOSTILE_NAMES = [SCRIPT, 'x"onload="window.__pwned=2"', "javascript:alert(1)",
                 "</style><script>document.title='pwned'</script>", "<img/src=x/onerror=window.__pwned=3>",
                 "--><!--<svg/onload=window.__pwned=4>", "evil\x1b\x07\u202edrow\u200b"]
#: Every fragment that must never reach the page as it is.
RAW = ["<script", "</script", "<img", "<svg/", '"onload', '"window', "]]>", "-->", "<!--", ATTRIBUTE, "<i>", "<b>",
       "\x1b", "\x07", "\u202e", "\u200b"]


def hostile_log(folder: Path) -> Path:
    """A log whose peer names, recipients, relays, SASL user names, failure reasons, service,
    host and file name are markup and script; every one of them reaches the report."""
    sasl = f"{SCRIPT}{ATTRIBUTE.replace(' ', '')}\u202e"
    lines = []
    for pid, name in enumerate(HOSTILE_NAMES, 100):
        ip = f"192.0.2.{pid - 99}"
        lines += [f"Nov 25 10:{pid - 100:02d}:00 mx postfix/smtpd[{pid}]: connect from {name}[{ip}]",
                  f"Nov 25 10:{pid - 100:02d}:02 mx postfix/smtpd[{pid}]: A{pid}BCDEF: client={name}[{ip}], "
                  f"sasl_method=PLAIN, sasl_username={sasl}",
                  f"Nov 25 10:{pid - 100:02d}:03 mx postfix/smtpd[{pid}]: disconnect from {name}[{ip}] ehlo=2 mail=1 "
                  "quit=1 commands=4"]
    tls = [f"Nov 25 09:59:00 mx postfix/smtpd[99]: connect from {SCRIPT}[192.0.2.1]",  # then plaintext: a downgrade
           f"Nov 25 09:59:01 mx postfix/smtpd[99]: Anonymous TLS connection established from {SCRIPT}[192.0.2.1]: "
           "TLSv1 with cipher AES128-SHA (128/128 bits)",
           f"Nov 25 09:59:03 mx postfix/smtpd[99]: disconnect from {SCRIPT}[192.0.2.1] ehlo=2 starttls=1 quit=1 "
           "commands=3"]
    failed = [f"Nov 25 10:30:00 mx postfix/smtpd[130]: connect from {SCRIPT}[192.0.2.30]",
              f"Nov 25 10:30:01 mx postfix/smtpd[130]: NOQUEUE: abort: TLS from {SCRIPT}[192.0.2.30]: {ATTRIBUTE} "
              f"</style>]]> javascript:alert(1) {SCRIPT}",
              f"Nov 25 10:30:02 mx postfix/smtpd[130]: disconnect from {SCRIPT}[192.0.2.30] ehlo=1 starttls=0/1 "
              "commands=1/2"]
    outbound = [
        "Nov 25 10:40:00 mx postfix/smtp[140]: Untrusted TLS connection established to mx.example.net[198.51.100.2]:25:"
        " TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)",
        "Nov 25 10:40:01 mx postfix/smtp[140]: 3A2B3C4D5E: to=<x@example.net>, relay=mx.example.net[198.51.100.2]:25,"
        " delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
        f"Nov 25 10:41:00 mx postfix/smtp[141]: 1A2B3C4D5E: to=<{ATTRIBUTE}@</style>{SCRIPT}]]>>, "
        f"relay={SCRIPT}[198.51.100.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok {SCRIPT})",
        "Nov 25 10:42:00 mx postfix/smtp[142]: 2A2B3C4D5E: to=<x@javascript:alert(1)>, "
        "relay=javascript:alert(1)[198.51.100.3]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
        # a service and host of their own that log no TLS lines: a note names them and the file
        'Nov 25 10:43:00 evil<i>host</i> postfix/x"onload=1<b>/smtp[143]: 4A2B3C4D5E: to=<y@example.org>, '
        "relay=mx.example.org[198.51.100.9]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
    ]
    path = folder / '<img src=x onerror="window.__pwned=5">]]>.log'
    path.write_text("\n".join(tls + lines + failed + outbound) + "\n", encoding="utf-8")
    return path


def test_hostile_log_text_stays_text(tmp_path):
    path = hostile_log(tmp_path)
    page, data = _report(str(path))
    # the hostile strings really are in the report (else this test would prove nothing)
    blob = json.dumps(data, ensure_ascii=False)
    names = [r["peer_name"] for r in data["plaintext_peers"]["inbound"]]
    assert set(HOSTILE_NAMES) <= set(names)
    assert data["downgrades"]["inbound"][0]["peer_name"] == SCRIPT
    domains = {r["domain"] for r in data["plaintext_domains"]["outbound"]}
    assert domains == {f"</style>{SCRIPT}]]>", "javascript:alert(1)"}
    assert f"</style>{SCRIPT}]]>" in {r["domain"] for r in data["unverified_destinations"]}
    assert data["failures"]["inbound"][0]["reason"].startswith(ATTRIBUTE)
    assert "evil<i>host</i>" in blob and 'postfix/x\\"onload=1<b>/smtp' in blob and "onerror" in data["notes"][0]

    for fragment in RAW:
        assert fragment not in page, fragment
    assert page.count("<style>") == page.count("</style>") == 1
    assert page.lower().count("javascript:") == page.count("javascript:alert(1)")
    dom = parse(page)
    assert set(dom.tags) <= TAGS
    assert [s.attrs["id"] for s in dom.root.iter("section")] == SECTIONS
    # no attribute carries log text: none is an event handler, none holds a URL but an anchor
    assert [n for _, n, _ in dom.attributes if n.startswith("on")] == []
    for tag, name, value in dom.attributes:
        assert "alert" not in value and "pwned" not in value and "<" not in value, (tag, name, value)
        if name == "href":
            assert re.fullmatch(r"#[a-z-]+", value)
    # ... and all of it is on the page as text, control characters shown as escapes
    text = dom.root.text()
    for name in HOSTILE_NAMES[:-1]:
        assert name in text
    assert "evil\\x1b\\x07\\u202edrow\\u200b" in text
    assert data["failures"]["inbound"][0]["reason"] in text
    assert f"</style>{SCRIPT}]]>" in text and 'postfix/x"onload=1<b>/smtp on evil<i>host</i>' in text
    assert len([s for s in dom.root.iter("span") if "ctl" in s.classes()]) >= 4
    # in the SVG titles (plain text) the escapes are there, unmarked
    titles = " ".join(t.text() for t in dom.root.iter("title"))
    assert "\x1b" not in titles


@pytest.mark.parametrize(("raw", "shown"), [
    ("<b>&amp;\"'", "&lt;b&gt;&amp;amp;&quot;&#x27;"),
    ("a\x1bb", 'a<span class="ctl">\\x1b</span>b'),
    ("\u202eabc\u2066", '<span class="ctl">\\u202e</span>abc<span class="ctl">\\u2066</span>'),
    ("zero\u200bwidth\ufeff", 'zero<span class="ctl">\\u200b</span>width<span class="ctl">\\ufeff</span>'),
    ("\u2028", '<span class="ctl">\\u2028</span>'),
    ("ünïcødé.example", "ünïcødé.example"),
])
def test_text_escaping(raw, shown):
    assert _text(raw) == shown
    assert "<" not in _text(raw, mark=False) and "\x1b" not in _text(raw, mark=False)
