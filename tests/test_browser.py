"""The HTML report in a real browser: headless Chromium, driven over the DevTools protocol.

What only a browser shows: the page loads without a console error, an exception or a
Content-Security-Policy violation; its sections and SVG charts are in the DOM as laid out; no
script from a hostile log runs, and its text shows as text. Screenshots of the month's report
(light and dark) and of the hostile one go to ``$TLSLOG_ARTIFACTS`` (default
``build/test-artifacts/``) for a person to look at.

Skipped with a one-line reason when there is no Chromium (Debian: ``apt-get install chromium``),
unless ``TLSLOG_BROWSER_REQUIRED=1`` (CI), which makes that a failure.
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ROOT, SAMPLES, tlslog
from .test_html import hostile_log

MONTH = SAMPLES / "synthetic" / "month.log.gz"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Installed before the page's own content runs (DevTools scripts are exempt from its CSP): any
#: alert, confirm or prompt from a hostile string is recorded instead of opening a dialog.
PROBE = ("window.__probe = true; for (const name of ['alert', 'confirm', 'prompt'])"
         " window[name] = () => { window.__pwned = name; };")
#: True while nothing from the hostile log ran (its strings set window.__pwned, call alert or
#: rename the page).
UNTOUCHED = "window.__probe === true && window.__pwned === undefined && !document.title.includes('pwned')"
#: A stylesheet the page did not bring: its policy must refuse it (the outline stays the text colour).
INJECTED_STYLE = ("(() => { const s = document.createElement('style'); s.textContent = "
                  "'body { outline: 3px solid rgb(1, 2, 3) }'; document.head.append(s); "
                  "return getComputedStyle(document.body).outlineColor; })()")


def _browser_path() -> str | None:
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def _artifacts() -> Path:
    path = Path(os.environ.get("TLSLOG_ARTIFACTS") or ROOT / "build" / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


class DevTools:
    """One page target of a Chromium over the DevTools protocol: commands, and the events
    that arrived meanwhile (console calls, exceptions, log entries)."""

    def __init__(self, url: str) -> None:
        import websocket  # websocket-client

        self.socket = websocket.create_connection(url, timeout=10, suppress_origin=True)
        self.ids = itertools.count(1)
        self.events: list[dict] = []
        self.session: str | None = None
        self.target: str | None = None

    def send(self, method: str, **params: object) -> dict:
        ident = next(self.ids)
        message: dict = {"id": ident, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(self.socket.recv())
            if reply.get("id") == ident:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, event: str, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        seen = len(self.events)
        while True:
            for message in self.events[seen:]:
                if message["method"] == event:
                    return message
            seen = len(self.events)
            if time.monotonic() > deadline:
                raise TimeoutError(event)
            self.socket.settimeout(max(0.1, deadline - time.monotonic()))
            message = json.loads(self.socket.recv())
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str) -> object:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def close(self) -> None:
        if self.target:
            self.session = None
            self.send("Target.closeTarget", targetId=self.target)
        self.socket.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[str]:
    """A headless Chromium of its own (temporary profile); yields its browser websocket URL.
    Killed by its process id at the end."""
    path = _browser_path()
    if path is None:
        message = "no chromium on PATH (apt-get install chromium)"
        if os.environ.get("TLSLOG_BROWSER_REQUIRED") == "1":
            pytest.fail(message + " and TLSLOG_BROWSER_REQUIRED=1")
        pytest.skip(message)
    profile = tempfile.mkdtemp(prefix="tlslog-chromium-")
    proc = subprocess.Popen(
        [path, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
         "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    drain = None
    try:
        url = _devtools_url(proc)
        # keep reading its stderr, or a chatty browser blocks on a full pipe
        drain = threading.Thread(target=proc.stderr.read, daemon=True)  # type: ignore[union-attr]
        drain.start()
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session (process group): the browser and its helpers
        except ProcessLookupError:
            pass
        proc.wait(10)
        if drain is not None:
            drain.join(5)
        proc.stderr.close()  # type: ignore[union-attr]
        shutil.rmtree(profile, ignore_errors=True)


def _devtools_url(proc: subprocess.Popen) -> str:
    """The ``DevTools listening on ws://…`` line Chromium writes to stderr on start."""
    deadline = time.monotonic() + 15
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode}")
        match = re.search(r"DevTools listening on (ws://\S+)", line)
        if match:
            return match.group(1)
    raise TimeoutError("chromium did not say where DevTools listens")


def _open(browser_url: str, page: Path, *, dark: bool = False, width: int = 1200, bypass_csp: bool = False) -> DevTools:
    """A new tab on ``page``, loaded, with console, exceptions and log entries recorded
    (``bypass_csp``: the page's policy ignored, to see what escaping alone does)."""
    tools = DevTools(browser_url)
    tools.target = tools.send("Target.createTarget", url="about:blank")["targetId"]
    tools.session = tools.send("Target.attachToTarget", targetId=tools.target, flatten=True)["sessionId"]
    for domain in ("Runtime", "Log", "Page"):
        tools.send(f"{domain}.enable")
    tools.send("Page.addScriptToEvaluateOnNewDocument", source=PROBE)
    if bypass_csp:
        tools.send("Page.setBypassCSP", enabled=True)
    tools.send("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=False)
    tools.send("Emulation.setEmulatedMedia",
               features=[{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}])
    tools.send("Page.navigate", url=page.as_uri())
    tools.wait_for("Page.loadEventFired")
    tools.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    return tools


def _problems(tools: DevTools) -> list[str]:
    """Console errors and warnings, exceptions, and log entries (CSP violations among them)."""
    out = []
    for message in tools.events:
        method, params = message["method"], message.get("params", {})
        if method == "Runtime.exceptionThrown":
            out.append(f"exception: {params['exceptionDetails'].get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
            out.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
            out.append(f"log {params['entry']['level']}: {params['entry']['text']}")
        elif method == "Page.javascriptDialogOpening":
            out.append(f"dialog: {params.get('message')}")
    return out


def _screenshot(tools: DevTools, name: str, capsys: pytest.CaptureFixture) -> Path:
    """A full-page PNG to the artifacts folder, its path printed (past pytest's capture)."""
    shot = tools.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    path = _artifacts() / name
    path.write_bytes(base64.b64decode(shot["data"]))
    with capsys.disabled():
        print(f"\nscreenshot: {path}")
    return path


@functools.cache
def _report(*args: str) -> tuple[str, dict]:
    """The HTML and the JSON report of the same input (the CLI, in process; once per input)."""
    run = tlslog("report", *args, "--format", "html")
    assert run.code == 0, run.stderr
    return run.stdout, json.loads(tlslog("report", *args, "--format", "json").stdout)


def _page(tmp_path: Path, *args: str, name: str = "report.html") -> tuple[Path, dict]:
    """The report of ``args`` as a file to open, and its JSON."""
    html, data = _report(*args)
    page = tmp_path / name
    page.write_text(html, encoding="utf-8")
    return page, data


SECTIONS = ("headline", "trend", "downgrades", "plaintext-clients", "plaintext-servers", "plaintext-destinations",
            "unverified-destinations", "mix", "weak-tls", "weak-peers", "failures", "notes")


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_month_report_in_chromium(chromium, tmp_path, capsys, dark):
    page, data = _page(tmp_path, str(MONTH), "--by", "week", "--internal", "none")
    tools = _open(chromium, page, dark=dark)
    try:
        assert _problems(tools) == []
        ids = tools.evaluate("[...document.querySelectorAll('main section')].map(s => s.id)")
        assert ids == list(SECTIONS)
        assert tools.evaluate("document.querySelectorAll('script, iframe, object, embed, img, link').length") == 0
        periods = len(data["periods"])
        for key in ("mx", "submission", "outbound"):
            chart = f"document.getElementById('trend-{key}')"
            assert tools.evaluate(f"{chart}.querySelectorAll('circle.point').length") == periods
            assert tools.evaluate(f"{chart}.querySelectorAll('g.bar').length") == periods
            # the line has one vertex per period, and the chart is really drawn (laid out, not 0×0)
            assert tools.evaluate(f"{chart}.querySelector('path.trend').getAttribute('d').split(/[ML]/)"
                                  ".filter(Boolean).length") == periods
            width, height = tools.evaluate(f"[{chart}.getBoundingClientRect().width, "
                                           f"{chart}.getBoundingClientRect().height]")  # type: ignore[misc]
            assert width > 250 and height > 120
        shown = tools.evaluate("document.querySelector('[data-field=\"mx.messages.coverage\"]').textContent")
        assert shown == f"{data['mx']['messages']['coverage'] * 100:.1f}%"
        # the stylesheet applied (the CSP hash matches): cards are laid out in a grid
        assert tools.evaluate("getComputedStyle(document.querySelector('.cards')).display") == "grid"
        background = tools.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == ("rgb(14, 18, 23)" if dark else "rgb(244, 246, 248)")
        # responsive: nothing wider than the window, at desktop and at phone width (tables scroll in place)
        assert tools.evaluate("document.documentElement.scrollWidth <= innerWidth") is True
        assert tools.evaluate(UNTOUCHED) is True
        _screenshot(tools, "report-dark.png" if dark else "report.png", capsys)
        if not dark:
            pdf = tools.send("Page.printToPDF", printBackground=True, preferCSSPageSize=True)
            assert base64.b64decode(pdf["data"]).startswith(b"%PDF")
            assert tools.evaluate("matchMedia('print').matches") is False
            tools.send("Emulation.setEmulatedMedia", media="print")
            assert tools.evaluate("getComputedStyle(document.querySelector('nav')).display") == "none"
            _screenshot(tools, "report-print.png", capsys)
            tools.send("Emulation.setEmulatedMedia", media="screen")
            tools.send("Emulation.setDeviceMetricsOverride", width=390, height=800, deviceScaleFactor=1, mobile=True)
            assert tools.evaluate("document.documentElement.scrollWidth <= innerWidth") is True
        assert _problems(tools) == []
    finally:
        tools.close()


@pytest.mark.parametrize("bypass_csp", [False, True], ids=["with-csp", "escaping-alone"])
def test_hostile_report_runs_no_script(chromium, tmp_path, capsys, bypass_csp):
    log = hostile_log(tmp_path)
    page, data = _page(tmp_path, str(log), name="hostile.html")
    tools = _open(chromium, page, bypass_csp=bypass_csp)
    try:
        assert _problems(tools) == []
        assert tools.evaluate(UNTOUCHED) is True
        assert tools.evaluate("document.title").startswith("TLS coverage")  # type: ignore[union-attr]
        assert tools.evaluate("document.querySelectorAll('script, iframe, object, embed, img, link, b, i').length") == 0
        assert tools.evaluate("[...document.querySelectorAll('*')].flatMap(e => [...e.attributes])"
                              ".filter(a => /^on/i.test(a.name) || /javascript:/i.test(a.value)).length") == 0
        # the hostile names are there, as text
        text = tools.evaluate("document.body.textContent")
        assert isinstance(text, str)
        for row in data["plaintext_peers"]["inbound"]:
            if "\x1b" not in row["peer_name"]:
                assert row["peer_name"] in text
        assert data["failures"]["inbound"][0]["reason"] in text
        assert "\\x1b" in text and "\\u202e" in text and "\x1b" not in text and "\u202e" not in text
        assert tools.evaluate("document.querySelectorAll('.ctl').length") >= 3
        if not bypass_csp:
            _screenshot(tools, "report-hostile.png", capsys)
        assert tools.evaluate(UNTOUCHED) is True
        assert _problems(tools) == []
        # the policy is in force (and bypassed in the other run): a style the page did not bring is refused
        assert (tools.evaluate(INJECTED_STYLE) == "rgb(1, 2, 3)") is bypass_csp
        if not bypass_csp:
            deadline = time.monotonic() + 5
            while not _problems(tools) and time.monotonic() < deadline:  # the report comes asynchronously
                tools.evaluate("new Promise(r => setTimeout(r, 50))")
            refused = _problems(tools)
            assert len(refused) == 1 and "Content Security Policy" in refused[0], refused
    finally:
        tools.close()
