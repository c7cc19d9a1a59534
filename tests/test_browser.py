"""report.html in a real headless Chromium, driven over the DevTools protocol (CDP) with websocket-client.

Checks: no console errors or uncaught exceptions (a Content-Security-Policy violation is a console error too), the
forest plot and the item browser are laid out with a nonzero size, the filters work, and untrusted model outputs
stay text (no alert dialog, no injected <img>). The page at 1400 px and at 420 px (a phone): no sideways scrolling,
every cell of every stacked table on screen, the claim table's measured column first, the forest plot's text at a
legible size, passing findings folded. Screenshots go to test-artifacts/ (gitignored); with
AUDIT_SCREENSHOTS_DIR=docs/screenshots (``make screenshots``) those of the page at 1400 and 420 px are also written
there, for the README.

Chromium is found on PATH (chromium, chromium-browser, google-chrome) or at $AUDIT_CHROMIUM. Without it the tests
are skipped — unless CI is set, where they fail: CI installs it (Debian: `apt-get install -y chromium`).
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from audit.reports import render_html
from test_reports import XSS_IMG, XSS_SCRIPT, audit, fragile_claim, many_items, xss_claim

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def find_chromium() -> str | None:
    env = os.environ.get("AUDIT_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Page:
    """A minimal CDP client for one page target: commands, events, dialogs and console errors."""

    def __init__(self, ws_url: str):
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=20, suppress_origin=True)
        self.next_id = 0
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.events: list[dict] = []

    def _handle(self, msg: dict) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if method is None:
            return
        self.events.append(msg)
        if method == "Runtime.exceptionThrown":
            d = params["exceptionDetails"]
            self.errors.append("Uncaught " + (d.get("exception", {}).get("description") or d.get("text", "")))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.errors.append("console.error: " + " ".join(str(a.get("value", a.get("description")))
                                                           for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            self.errors.append(f"log: {params['entry'].get('source')}: {params['entry'].get('text')}")
        elif method == "Page.javascriptDialogOpening":
            self.dialogs.append(f"{params.get('type')}: {params.get('message')}")
            self._send("Page.handleJavaScriptDialog", accept=False)

    def _send(self, method: str, **params) -> int:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        return self.next_id

    def call(self, method: str, **params) -> dict:
        mid = self._send(method, **params)
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._handle(msg)

    def wait_for(self, method: str, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        seen = len(self.events)
        while time.monotonic() < deadline:
            for msg in self.events[seen:]:
                if msg.get("method") == method:
                    return msg
            seen = len(self.events)
            self.ws.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                self._handle(json.loads(self.ws.recv()))
            except Exception as exc:  # noqa: BLE001 - a timeout ends the wait below
                if "timed out" not in str(exc).lower():
                    raise
        raise TimeoutError(f"no {method} within {timeout}s")

    def pump(self, seconds: float) -> None:
        """Process events for a while (lets late errors or dialogs arrive)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.ws.settimeout(max(0.01, end - time.monotonic()))
            try:
                self._handle(json.loads(self.ws.recv()))
            except Exception:  # noqa: BLE001 - timeout: nothing more arrived
                pass
        self.ws.settimeout(20)

    def eval(self, expression: str):
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression!r}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def load(self, path: Path) -> None:
        self.errors.clear()
        self.dialogs.clear()
        self.events.clear()
        self.call("Page.navigate", url=path.resolve().as_uri())
        self.wait_for("Page.loadEventFired")
        self.pump(0.3)

    def screenshot(self, name: str, element: str | None = None, clip: tuple[float, float] | None = None) -> Path:
        """The viewport (scrolled to ``element`` when given), or the page from y to y + height (``clip``) at the
        viewport's width, as test-artifacts/NAME; copied to $AUDIT_SCREENSHOTS_DIR when that is set."""
        ARTIFACTS.mkdir(exist_ok=True)
        if element:
            self.eval(f"document.getElementById({element!r}).scrollIntoView()")
        params: dict = {"format": "png"}
        if clip is not None:
            width = self.eval("document.documentElement.clientWidth")
            params |= {"captureBeyondViewport": True,
                       "clip": {"x": 0, "y": clip[0], "width": width, "height": clip[1], "scale": 1}}
        data = self.call("Page.captureScreenshot", **params)["data"]
        path = ARTIFACTS / name
        path.write_bytes(base64.b64decode(data))
        if os.environ.get("AUDIT_SCREENSHOTS_DIR"):
            out = Path(os.environ["AUDIT_SCREENSHOTS_DIR"])
            out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out / name)
        return path

    def viewport(self, width: int, height: int) -> None:
        """Emulate a screen ``width`` CSS pixels wide (a phone below 500: the page's viewport meta applies)."""
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=width < 500)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    exe = find_chromium()
    if exe is None:
        msg = "Chromium not found (install: apt-get install -y chromium; or set AUDIT_CHROMIUM)"
        if IN_CI:
            pytest.fail(msg + " — required when CI is set")
        pytest.skip(msg)
    pytest.importorskip("websocket", reason="websocket-client is needed to drive Chromium over CDP")
    profile = tmp_path_factory.mktemp("chromium-profile")
    args = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--remote-debugging-port=0",
            "--window-size=1280,1600", "about:blank"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.poll() is not None else ""
                pytest.fail(f"Chromium did not start ({exe}): {err}")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = json.load(r)
        target = next(t for t in targets if t.get("type") == "page")
        p = Page(target["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log"):
            p.call(f"{domain}.enable")
        yield p
        p.ws.close()
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)


def _write(tmp_path: Path, outcome) -> Path:
    path = tmp_path / "report.html"
    path.write_text(render_html(outcome.report, outcome.records), encoding="utf-8")
    return path


SIZE = "(() => { const r = document.getElementById(%r).getBoundingClientRect(); return [r.width, r.height]; })()"


def test_report_renders_without_errors(page, tmp_path):
    page.load(_write(tmp_path, audit(fragile_claim(tmp_path / "claim"))))
    assert page.errors == [] and page.dialogs == []
    assert page.eval("document.getElementById('verdict').dataset.verdict") == "fragile"
    # Nothing pushes the page wider than the window (wide tables scroll inside their own box).
    assert page.eval("document.documentElement.scrollWidth <= document.documentElement.clientWidth")

    w, h = page.eval(SIZE % "forest-plot")
    assert w > 200 and h > 100  # the forest plot is laid out
    w, h = page.eval(SIZE % "lengths-plot")
    assert w > 200 and h > 100
    w, h = page.eval(SIZE % "item-list")
    assert w > 200 and h > 100  # the item browser rendered items
    assert page.eval("document.querySelectorAll('#item-list .item').length") == 25  # one page
    assert page.eval("document.getElementById('pg-info').textContent") == \
        "items 1–25 of 60 matching (60 of 60 items embedded)"
    # The truncation point of the 16-token baseline output is marked inside its 64-token output.
    assert page.eval("document.querySelectorAll('#item-list mark.cut').length") >= 25
    assert page.eval("document.querySelector('#item-list mark.cut').previousSibling.textContent") == \
        "Let me think step by"
    page.screenshot("report-fragile.png")

    # Filters: baseline only, truncated only, correctness changed.
    page.eval("""(() => { const s = document.getElementById('f-arm'); s.value = 'baseline';
                          s.dispatchEvent(new Event('change')); })()""")
    assert page.eval("document.querySelectorAll('#item-list .pair.single').length") > 0
    assert page.eval("document.querySelectorAll('#item-list .out.treatment').length") == 0
    page.eval("""(() => { const s = document.getElementById('f-budget'); s.value = '64';
                          s.dispatchEvent(new Event('change')); const t = document.getElementById('f-trunc');
                          t.value = 'yes'; t.dispatchEvent(new Event('change')); })()""")
    assert page.eval("document.getElementById('pg-info').textContent").startswith("no embedded item")  # unknown at 64
    page.eval("""(() => { const s = document.getElementById('f-budget'); s.value = '16';
                          s.dispatchEvent(new Event('change')); })()""")
    assert "of 60 matching" in page.eval("document.getElementById('pg-info').textContent")  # all cut at 16
    page.eval("""(() => { const c = document.getElementById('f-changed'); c.checked = true;
                          c.dispatchEvent(new Event('change')); })()""")
    n_changed = page.eval("document.getElementById('pg-info').textContent")
    assert "of 60 matching" not in n_changed and "matching" in n_changed
    # "show in item browser" on an evidence item jumps to it.
    item = page.eval("document.querySelector('button.goto').dataset.item")
    page.eval("document.querySelector('button.goto').click()")
    assert page.eval("document.querySelector('#item-list .item').dataset.item") == item
    assert page.eval("document.getElementById('f-id').value") == item
    page.pump(0.2)
    assert page.errors == [] and page.dialogs == []


def test_untrusted_outputs_stay_text(page, tmp_path):
    page.load(_write(tmp_path, audit(xss_claim(tmp_path / "claim"))))
    page.pump(0.5)  # time for an onerror handler to fire, had an <img> been injected
    assert page.dialogs == [], page.dialogs
    assert page.errors == [], page.errors
    assert page.eval("document.querySelectorAll('img').length") == 0
    assert page.eval("document.querySelectorAll('script').length") == 2
    assert page.eval("[...document.querySelectorAll('*')].filter(e => [...e.attributes]"
                     ".some(a => a.name.startsWith('on'))).length") == 0
    shown = page.eval("document.getElementById('item-list').textContent")
    assert XSS_SCRIPT in shown and XSS_IMG in shown
    assert 'q"><img src=x onerror=alert(3)>' in shown
    assert "alert('title')" in page.eval("document.getElementById('verdict').textContent")
    # The browser's filters re-render the same untrusted text; still nothing runs.
    page.eval("""(() => { const s = document.getElementById('f-arm'); s.value = 'treatment';
                          s.dispatchEvent(new Event('change')); })()""")
    page.pump(0.3)
    assert page.dialogs == [] and page.eval("document.querySelectorAll('img').length") == 0
    page.screenshot("report-xss.png", element="items")


def test_large_report_opens(page, tmp_path):
    outcome = many_items(20_000)
    path = _write(tmp_path, outcome)
    start = time.monotonic()
    page.load(path)
    assert time.monotonic() - start < 20
    assert page.errors == [] and page.dialogs == []
    assert page.eval("document.getElementById('pg-info').textContent") == \
        "items 1–25 of 2000 matching (2000 of 20000 items embedded)"
    assert "2,000 of 20,000 items are embedded" in page.eval("document.getElementById('items-count').textContent")
    page.eval("document.getElementById('pg-next').click()")
    assert page.eval("document.getElementById('pg-info').textContent").startswith("items 26–50 of 2000")


# Every cell of every stacked table that is laid out: [left, right, top, bottom] in CSS pixels.
CELLS = """[...document.querySelectorAll('table.stack td, table.stack tbody th')]
    .map(e => e.getBoundingClientRect()).filter(r => r.width > 0 && r.height > 0)
    .map(r => [r.left, r.right, r.top, r.bottom])"""
# The smallest text of an SVG as drawn on screen: its font size times the SVG's scale.
SVG_TEXT_PX = """(() => { const svg = document.getElementById(%r); const scale = svg.getBoundingClientRect().width /
    svg.viewBox.baseVal.width; return Math.min(...[...svg.querySelectorAll('text')].map(t =>
    parseFloat(getComputedStyle(t).fontSize) * scale)); })()"""


# Where the significance card starts (its statistic rows: b, c, clt_se, p_below_reported, ... with names and meanings).
SIGNIFICANCE_CARD_Y = ("document.querySelector('article.finding[data-check=significance]').getBoundingClientRect().top"
                       " + window.scrollY")


def test_page_at_1400_and_420_px(page, tmp_path):
    """The truncation fixture (real lm-eval logs): on a desktop and on a phone. The screenshots are the README's."""
    from audit.claim import load_claim
    from audit.verify import verify
    from conftest import REPO

    outcome = verify(load_claim(REPO / "fixtures/claims/truncation.yaml"),
                     command="audit verify fixtures/claims/truncation.yaml --out audit-out")
    path = tmp_path / "report.html"
    path.write_text(render_html(outcome.report, outcome.records, out="audit-out"), encoding="utf-8")
    folded = [i for i, f in enumerate(outcome.report.findings)
              if f.outcome in ("pass", "info") and i not in outcome.report.gate.failing_findings]
    assert folded

    try:
        _desktop_and_phone(page, path, folded)
    finally:
        page.call("Emulation.clearDeviceMetricsOverride")  # the other tests run at the window's 1280 px


def _desktop_and_phone(page, path: Path, folded: list[int]) -> None:
    page.viewport(1400, 1000)
    page.load(path)
    assert page.errors == [] and page.dialogs == []
    assert page.eval("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    w, _ = page.eval(SIZE % "forest-plot")
    assert w > 500 and page.eval(SIZE % "forest-plot-narrow")[0] == 0  # the wide drawing on a desktop
    assert page.eval("document.querySelectorAll('article.finding.folded details.fold:not([open])').length") == \
        len(folded)  # passing and info findings folded; flags and inconclusive ones open
    assert page.eval("document.querySelectorAll('article.finding:not(.folded) table.stats').length") >= 1
    page.screenshot("report-1400.png", clip=(0, 1000))
    page.screenshot("report-1400-findings.png", clip=(page.eval(SIGNIFICANCE_CARD_Y) - 10, 1100))

    page.viewport(420, 900)
    page.load(path)
    assert page.errors == [] and page.dialogs == []
    assert page.eval("document.documentElement.clientWidth") == 420
    # Nothing pushes the page sideways, and every cell of every stacked table is on screen.
    assert page.eval("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    cells = page.eval(CELLS)
    assert len(cells) > 40
    assert all(left >= 0 and right <= 420.5 for left, right, _, _ in cells), cells
    # The claim table: one block per row, the measured columns above the reported ones.
    measured = page.eval("document.querySelector('#cvm-delta td.measured').getBoundingClientRect().top")
    reported = page.eval("document.querySelector('#cvm-delta td.reported').getBoundingClientRect().top")
    assert measured < reported
    assert page.eval("getComputedStyle(document.querySelector('#cvm-delta td.measured'), '::before').content") == \
        '"measured"'
    # The forest plot: the narrow drawing, its smallest text at least 11 px on screen (the wide one would be ~6 px).
    assert page.eval(SIZE % "forest-plot")[0] == 0
    assert page.eval(SIZE % "forest-plot-narrow")[0] > 350
    assert page.eval(SVG_TEXT_PX % "forest-plot-narrow") >= 11
    forest_end = page.eval("document.getElementById('forest').getBoundingClientRect().bottom + window.scrollY")
    page.screenshot("report-420.png", clip=(0, forest_end + 20))  # the top of the page down to the forest plot
    page.screenshot("report-420-findings.png", clip=(page.eval(SIGNIFICANCE_CARD_Y) - 10, 1700))


@pytest.mark.live
def test_demo_report_in_the_browser(page, tmp_path):
    """The demo claim (fixtures/claims/demo.yaml), live on the embedded model with its first 12 items."""
    from audit.generation.cache import GenerationCache
    from audit.claim import load_claim
    from audit.verify import verify
    from conftest import FIXTURES, require_live

    require_live()
    claim = load_claim(FIXTURES / "claims/demo.yaml")
    claim = claim.model_copy(update={"task": claim.task.model_copy(update={"limit": 12})})
    outcome = verify(claim, cache=GenerationCache(tmp_path / "cache.sqlite"), command="audit verify demo.yaml")
    page.load(_write(tmp_path, outcome))
    assert page.errors == [] and page.dialogs == []
    w, h = page.eval(SIZE % "forest-plot")
    assert w > 200 and h > 100
    w, h = page.eval(SIZE % "item-list")
    assert w > 200 and h > 100
    assert page.eval("document.querySelectorAll('#item-list .item').length") == 12
    page.screenshot("report-demo.png")
