"""The embeddable widget in real Chromium, framed by a host page on another origin.

Two tiny static sites on other ports of 127.0.0.1 play the embedding pages: one
whose origin is in RELAY_EMBED_ORIGINS, one whose origin is not.
"""

from __future__ import annotations

import html
import json
import os
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx
import pytest
from playwright.sync_api import Frame, Page, expect

from testbed import ROOT, SiteServer, wait_until

IMAGE = "relay/image-demo"
RELAY_EVENTS = ["relay:ready", "relay:status", "relay:progress", "relay:done", "relay:error"]

# The host page's own bookkeeping: every relay:* event on the widget's element
# (with the iframe's height at that moment), and every message the window got.
# Its message listener is added after the snippet's, so once a message shows up
# here the snippet has already handled (or ignored) it.
HOST_RECORDER = """
  window.relayEvents = [];
  window.relayMessages = [];
  const widget = document.getElementById('widget');
  for (const name of EVENT_NAMES) {
    widget.addEventListener(name, (event) => {
      const frame = widget.querySelector('iframe');
      window.relayEvents.push({type: event.type, detail: event.detail,
                               height: frame ? frame.getBoundingClientRect().height : null});
    });
  }
  window.addEventListener('message', (event) => {
    window.relayMessages.push({origin: event.origin, data: event.data});
  });
  window.frameLoads = 0;
  const frame = widget.querySelector('iframe');
  if (frame) frame.addEventListener('load', () => { window.frameLoads += 1; });
""".replace("EVENT_NAMES", json.dumps(RELAY_EVENTS))

# Installed in every frame before its scripts: records the target origin of every
# postMessage. A cross-origin window's postMessage cannot be wrapped in place, so
# `parent` and `iframe.contentWindow` hand out recording stand-ins, and
# MessageEvent.source maps the real window to its stand-in so the origin-and-source
# checks on both sides still hold.
POST_RECORDER = """
(() => {
  window.__postTargets = [];
  const standIns = new WeakMap();
  const targetOf = (options) => (options && typeof options === 'object')
    ? (options.targetOrigin === undefined ? '/' : String(options.targetOrigin)) : String(options);
  const standIn = (real) => {
    if (!real || real === window) return real;
    if (!standIns.has(real)) {
      standIns.set(real, { postMessage(message, options, transfer) {
        window.__postTargets.push({type: message && message.type, target: targetOf(options)});
        return real.postMessage(message, options, transfer);
      } });
    }
    return standIns.get(real);
  };
  const ownPost = window.postMessage.bind(window);
  window.postMessage = (message, options, transfer) => {
    window.__postTargets.push({type: message && message.type, target: targetOf(options)});
    return ownPost(message, options, transfer);
  };
  const realParent = window.parent;
  Object.defineProperty(window, 'parent', { configurable: true, get: () => standIn(realParent) });
  const frameWindow = Object.getOwnPropertyDescriptor(HTMLIFrameElement.prototype, 'contentWindow');
  Object.defineProperty(HTMLIFrameElement.prototype, 'contentWindow', {
    configurable: true, get() { return standIn(frameWindow.get.call(this)); } });
  const source = Object.getOwnPropertyDescriptor(MessageEvent.prototype, 'source');
  Object.defineProperty(MessageEvent.prototype, 'source', {
    configurable: true, get() { const real = source.get.call(this); return standIns.get(real) || real; } });
})();
"""


class HostSite:
    """A static site on its own port (so its own origin): pages by path, set by the test."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(urlsplit(self.path).path)
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def host_page(relay_url: str, mount: dict[str, Any] | None = None, widget_attributes: str = "",
              extra_script: str = "") -> str:
    """A host page that loads the snippet from Relay and mounts the widget in #widget.

    `mount` mounts with RelayEmbed.mount(); without it, `widget_attributes`
    (data-relay-src and friends) let the snippet mount the element itself.
    """
    call = ""
    if mount is not None:
        # "</" would end this inline script early when a test puts markup in the options.
        options = json.dumps(mount).replace("</", "<\\/")
        call = f"window.embedHandle = RelayEmbed.mount(document.getElementById('widget'), {options});"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A host page</title><link rel="icon" href="data:,"></head>
<body>
  <h1>Someone else's page</h1>
  <div id="widget" style="width: 420px" {widget_attributes}></div>
  <script src="{relay_url}/static/relay-embed.js"></script>
  <script>
    {call}
    {HOST_RECORDER}
    {extra_script}
  </script>
</body></html>"""


@pytest.fixture(scope="module")
def allowed_host() -> Iterator[HostSite]:
    site = HostSite()
    yield site
    site.close()


@pytest.fixture(scope="module")
def foreign_host() -> Iterator[HostSite]:
    site = HostSite()
    yield site
    site.close()


@pytest.fixture(scope="module")
def embed_site(browser: Any, allowed_host: HostSite,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteServer]:
    """Relay with the allowed host's origin (and only it) in RELAY_EMBED_ORIGINS."""
    site = SiteServer(tmp_path_factory.mktemp("relay-embed"))
    site.env["RELAY_EMBED_ORIGINS"] = allowed_host.url
    site.start()
    yield site
    site.stop()


def events(page: Page, kind: str | None = None) -> list[dict[str, Any]]:
    recorded: list[dict[str, Any]] = page.evaluate("window.relayEvents")
    return [e for e in recorded if kind is None or e["type"] == kind]


def wait_for_event(page: Page, kind: str, timeout: float = 30000) -> dict[str, Any]:
    page.wait_for_function("(kind) => window.relayEvents.some((e) => e.type === kind)", arg=kind,
                           timeout=timeout)
    return events(page, kind)[-1]


def widget_frame(page: Page, relay_url: str) -> Frame:
    return wait_until(lambda: next((f for f in page.frames if f.url.startswith(relay_url + "/embed?")), None),
                    timeout=15, what="the widget's frame")


def run_input(steps: int = 12, step_delay: float = 0.05) -> dict[str, Any]:
    return {"steps": steps, "step_delay": step_delay}


def test_a_widget_on_another_origin_runs_a_prediction_and_reports_it(
        embed_site: SiteServer, allowed_host: HostSite, new_page: Any) -> None:
    prompt = "a harbour at night, <b>ink</b> & \"rain\""
    allowed_host.pages["/run.html"] = host_page(embed_site.url, mount={
        "src": embed_site.url, "model": IMAGE, "prompt": prompt, "autostart": True, "theme": "light",
        # Long enough (about 3 s) that a browser slowed by a busy machine still sees it move.
        "editable": ["prompt"], "input": run_input(steps=20, step_delay=0.15)})
    page = new_page()
    page.goto(allowed_host.url + "/run.html")

    done = wait_for_event(page, "relay:done")
    snapshot = done["detail"]
    assert snapshot["status"] == "succeeded"
    assert isinstance(snapshot["output"], list) and len(snapshot["output"]) == 1
    # The embedded emulator's images are paths on Relay's origin (RELAY_PUBLIC_URL makes them absolute).
    output_url = urljoin(embed_site.url + "/", snapshot["output"][0])
    image = httpx.get(output_url, timeout=10)
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")

    percents = [e["detail"]["progress"]["percent"] for e in events(page, "relay:progress")]
    assert percents == sorted(percents), f"progress went backwards: {percents}"
    assert len({p for p in percents if 0 < p < 100}) >= 2, f"too few intermediate values: {percents}"
    assert percents[-1] == 100
    statuses = [e["detail"]["status"] for e in events(page, "relay:status")]
    assert statuses[0] == "starting" and statuses[-1] == "succeeded", statuses
    assert all(e["detail"]["id"] == snapshot["id"] for e in events(page) if e["detail"])
    assert events(page, "relay:error") == []

    # Inside the frame: the page's landmarks, by role and name.
    frame = widget_frame(page, embed_site.url)
    expect(frame.get_by_role("combobox", name="Model")).to_be_disabled()  # editable: prompt only
    expect(frame.get_by_role("textbox", name="Prompt")).to_have_value(prompt)
    expect(frame.get_by_role("button", name="Generate")).to_be_enabled()
    card = frame.get_by_role("article")
    expect(card.get_by_role("status")).to_have_text("Succeeded")
    expect(card.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(card.get_by_role("button", name="Cancel")).to_be_hidden()
    picture = card.get_by_role("img", name=f"Generated image for: {prompt}")
    expect(picture).to_have_attribute("src", snapshot["output"][0])
    assert page.problems.errors == []


def test_the_iframe_keeps_the_height_of_the_widgets_content(
        embed_site: SiteServer, allowed_host: HostSite, new_page: Any) -> None:
    attributes = (f'data-relay-src="{embed_site.url}" data-model="{IMAGE}" data-prompt="a tall lighthouse" '
                  f'data-autostart="1" data-input=\'{json.dumps(run_input(steps=15))}\'')
    allowed_host.pages["/grow.html"] = host_page(embed_site.url, widget_attributes=attributes)
    page = new_page()
    page.goto(allowed_host.url + "/grow.html")

    first_progress = wait_for_event(page, "relay:progress")
    wait_for_event(page, "relay:done")
    frame = widget_frame(page, embed_site.url)
    picture = frame.get_by_role("img", name="Generated image for: a tall lighthouse")
    frame.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=picture.element_handle())

    iframe = page.locator("#widget iframe")
    content = "Math.ceil(document.documentElement.getBoundingClientRect().height)"

    def heights_agree() -> int | None:
        outer = round(iframe.evaluate("(f) => f.getBoundingClientRect().height"))
        inner = int(frame.evaluate(content))
        return outer if abs(outer - inner) <= 1 else None

    final = wait_until(heights_agree, timeout=10, what="the iframe to take the content's height")
    assert first_progress["height"] is not None
    assert final > first_progress["height"] + 150, (first_progress["height"], final)
    # Sized to fit: nothing inside the frame scrolls.
    assert frame.evaluate("document.documentElement.scrollHeight <= document.documentElement.clientHeight + 1")
    assert page.problems.errors == []


def test_a_visitor_can_cancel_from_the_widget(
        embed_site: SiteServer, allowed_host: HostSite, new_page: Any) -> None:
    allowed_host.pages["/cancel.html"] = host_page(embed_site.url, mount={
        "src": embed_site.url, "model": IMAGE, "prompt": "a very slow fresco", "autostart": True,
        "input": run_input(steps=300, step_delay=0.05)})
    page = new_page()
    page.goto(allowed_host.url + "/cancel.html")
    wait_for_event(page, "relay:progress")
    frame = widget_frame(page, embed_site.url)
    card = frame.get_by_role("article")
    expect(frame.get_by_role("button", name="Generate")).to_be_disabled()  # one prediction at a time

    card.get_by_role("button", name="Cancel").click()

    done = wait_for_event(page, "relay:done")
    assert done["detail"]["status"] == "canceled"
    assert done["detail"]["progress"]["percent"] < 100
    expect(card.get_by_role("status")).to_have_text("Canceled")
    expect(card.get_by_role("button", name="Cancel")).to_be_hidden()
    expect(card.get_by_role("img")).to_have_count(0)
    expect(frame.get_by_role("button", name="Generate")).to_be_enabled()
    assert page.problems.errors == []


def test_a_site_not_in_relay_embed_origins_cannot_frame_the_widget(
        embed_site: SiteServer, foreign_host: HostSite, new_page: Any) -> None:
    foreign_host.pages["/steal.html"] = host_page(embed_site.url, mount={
        "src": embed_site.url, "model": IMAGE, "prompt": "framed by a stranger", "autostart": True,
        "input": run_input()})
    page = new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    served_before = sum(1 for line in embed_site.output if re.search(r"\"GET /embed[ ?]", line))
    posts_before = embed_site.create_posts()
    page.goto(foreign_host.url + "/steal.html")

    page.wait_for_function("window.frameLoads > 0")
    wait_until(lambda: any("frame-ancestors" in text for text in console), timeout=10,
             what="Chromium to report the frame-ancestors violation")
    # Relay did answer; the browser refused to show the answer in the frame.
    wait_until(lambda: sum(1 for line in embed_site.output if re.search(r"\"GET /embed[ ?]", line)) > served_before,
             timeout=10, what="Relay to log the /embed request")
    widget = [f for f in page.frames if f.url.startswith(embed_site.url)]
    assert widget == [], [f.url for f in page.frames]
    assert all("Relay widget" not in frame.title() for frame in page.frames if frame != page.main_frame)
    # The snippet notices that the widget never said it was ready, and says why, in a sentence.
    error = wait_for_event(page, "relay:error", timeout=10000)
    assert "RELAY_EMBED_ORIGINS" in error["detail"]["error"]
    assert foreign_host.url in error["detail"]["error"]
    expect(page.get_by_role("alert")).to_contain_text("RELAY_EMBED_ORIGINS")
    expect(page.locator("#widget iframe")).to_be_hidden()
    assert [e["type"] for e in events(page)] == ["relay:error"]
    assert [m for m in page.evaluate("window.relayMessages") if m["origin"] == embed_site.url] == []
    # And autostart started nothing: the widget's script never ran.
    assert embed_site.create_posts() == posts_before


def test_the_snippet_ignores_messages_that_are_not_from_its_widget(
        embed_site: SiteServer, allowed_host: HostSite, foreign_host: HostSite, new_page: Any) -> None:
    forged = {"source": "relay-embed", "version": 1, "type": "done",
              "snapshot": {"id": "forged", "status": "succeeded", "output": ["https://evil.test/x.png"]}}
    # A page on another origin, framed by the host, posting what the widget would post.
    foreign_host.pages["/forger.html"] = f"""<!doctype html><html><body><script>
      const frame = new URLSearchParams(location.search).get('frame');
      const forged = Object.assign({json.dumps(forged)}, {{frame}});
      parent.postMessage(Object.assign({{}}, forged, {{marker: 'foreign-done'}}), {json.dumps(allowed_host.url)});
      // A hello to the widget from a sibling frame: not its parent, so it must not answer.
      parent.frames[0].postMessage({{source: 'relay-host', version: 1, frame, type: 'hello'}}, '*');
      parent.postMessage({{source: 'relay-embed', version: 1, frame, type: 'resize', height: 7,
                          marker: 'foreign-resize'}}, {json.dumps(allowed_host.url)});
    </script></body></html>"""
    allowed_host.pages["/forged.html"] = host_page(embed_site.url, mount={
        "src": embed_site.url, "model": IMAGE, "prompt": "a genuine picture", "autostart": True,
        "input": run_input()})
    page = new_page()
    page.goto(allowed_host.url + "/forged.html")
    wait_for_event(page, "relay:done")
    height_before = page.locator("#widget iframe").evaluate("(f) => f.getBoundingClientRect().height")
    done_before = len(events(page, "relay:done"))

    page.evaluate("""([forged, forgerUrl]) => {
      const frameId = window.embedHandle.frame;
      // From the host's own window: right shape and frame id, wrong origin and source.
      window.postMessage(Object.assign({}, forged, {frame: frameId, marker: 'self-done'}), location.origin);
      // Right origin, wrong shapes: nothing of these may reach the element either.
      const forger = document.createElement('iframe');
      forger.src = forgerUrl + '?frame=' + encodeURIComponent(frameId);
      document.body.appendChild(forger);
    }""", [forged, foreign_host.url + "/forger.html"])

    page.wait_for_function("""() => ['self-done', 'foreign-done', 'foreign-resize'].every(
        (marker) => window.relayMessages.some((m) => m.data && m.data.marker === marker))""")
    origins = {m["data"]["marker"]: m["origin"] for m in page.evaluate("window.relayMessages")
               if isinstance(m["data"], dict) and "marker" in m["data"]}
    assert origins == {"self-done": allowed_host.url, "foreign-done": foreign_host.url,
                       "foreign-resize": foreign_host.url}
    assert len(events(page, "relay:done")) == done_before
    assert all(e["detail"] is None or e["detail"].get("id") != "forged" for e in events(page))
    assert page.locator("#widget iframe").evaluate("(f) => f.getBoundingClientRect().height") == height_before

    # The widget's side: a hello for another frame id is ignored, the genuine one answered once.
    # Messages from one window arrive in order, so the answer to the genuine hello comes last.
    ready_before = len(events(page, "relay:ready"))
    page.evaluate("""(relay) => {
      const frame = window.embedHandle.iframe.contentWindow;
      frame.postMessage({source: 'relay-host', version: 1, frame: 'someone-else', type: 'hello'}, relay);
      frame.postMessage({source: 'relay-host', version: 1, frame: window.embedHandle.frame, type: 'hello'}, relay);
    }""", embed_site.url)
    page.wait_for_function("(n) => window.relayEvents.filter((e) => e.type === 'relay:ready').length > n",
                           arg=ready_before)
    assert len(events(page, "relay:ready")) == ready_before + 1
    assert page.problems.errors == []


def test_at_run_time_every_message_names_its_one_target_origin(
        embed_site: SiteServer, allowed_host: HostSite, browser: Any) -> None:
    allowed_host.pages["/targets.html"] = host_page(embed_site.url, mount={
        "src": embed_site.url, "model": IMAGE, "prompt": "a counted lantern", "autostart": True,
        "input": run_input()})
    context = browser.new_context()
    try:
        context.add_init_script(POST_RECORDER)
        page = context.new_page()
        page.set_default_timeout(15000)
        page.goto(allowed_host.url + "/targets.html")
        wait_for_event(page, "relay:done")
        frame = widget_frame(page, embed_site.url)
        # The reply to hello went through the recording stand-in, so source checks still pass.
        page.wait_for_function("window.relayEvents.some((e) => e.type === 'relay:ready')")

        from_widget = frame.evaluate("window.__postTargets")
        from_host = page.evaluate("window.__postTargets")
    finally:
        context.close()
    widget_types = {p["type"] for p in from_widget}
    assert {"status", "progress", "done", "resize", "ready"} <= widget_types, from_widget
    assert {p["target"] for p in from_widget} == {allowed_host.url}
    assert {p["type"] for p in from_host} == {"hello"}
    assert {p["target"] for p in from_host} == {embed_site.url}


def test_bad_parameters_get_a_clear_message_and_every_value_is_escaped(
        embed_site: SiteServer, allowed_host: HostSite, new_page: Any) -> None:
    attack = '"><script>window.pwned=1</script><img src=x onerror="window.pwned=2">'
    answer = httpx.get(f"{embed_site.url}/embed", params={"model": "nobody/" + attack, "theme": attack},
                       timeout=10)
    assert answer.status_code == 400
    assert "text/html" in answer.headers["Content-Type"]
    assert "<script>window.pwned" not in answer.text and "onerror=\"window" not in answer.text
    shown = answer.text.replace("&#34;", "&quot;")  # Jinja and html.escape spell '"' differently
    assert f"The model “{html.escape('nobody/' + attack)}” is not available here" in shown

    ok = httpx.get(f"{embed_site.url}/embed", params={"prompt": attack, "input.seed": attack}, timeout=10)
    assert ok.status_code == 200
    assert "<script>window.pwned" not in ok.text and "onerror=\"window" not in ok.text

    allowed_host.pages["/bad.html"] = host_page(embed_site.url, mount={
        "src": embed_site.url, "model": "nobody/nothing", "prompt": attack, "theme": "sepia"})
    page = new_page()
    page.goto(allowed_host.url + "/bad.html")
    error = wait_for_event(page, "relay:error")
    assert "The model “nobody/nothing” is not available here" in error["detail"]["error"]
    assert "theme must be light, dark or auto" in error["detail"]["error"]
    frame = widget_frame(page, embed_site.url)
    alert = frame.get_by_role("alert")
    expect(alert).to_contain_text("This widget cannot start")
    expect(alert).to_contain_text("relay/image-demo, relay/text-demo")
    assert frame.evaluate("window.pwned === undefined")
    assert page.evaluate("window.pwned === undefined")

    # The prompt reaches the textarea as text, never as markup.
    allowed_host.pages["/escaped.html"] = host_page(embed_site.url, mount={
        "src": embed_site.url, "model": IMAGE, "prompt": attack})
    page.goto(allowed_host.url + "/escaped.html")
    wait_for_event(page, "relay:ready")
    frame = widget_frame(page, embed_site.url)
    expect(frame.get_by_role("textbox", name="Prompt")).to_have_value(attack)
    assert frame.evaluate("window.pwned === undefined")


def test_the_theme_parameter_wins_over_the_system_preference(embed_site: SiteServer, browser: Any) -> None:
    context = browser.new_context(color_scheme="dark")
    try:
        page = context.new_page()
        backgrounds = {}
        for theme in ("light", "dark", "auto"):
            page.goto(f"{embed_site.url}/embed?theme={theme}&model={quote(IMAGE)}")
            backgrounds[theme] = page.evaluate("getComputedStyle(document.body).backgroundColor")
    finally:
        context.close()
    assert backgrounds["light"] == "rgb(255, 255, 255)"
    assert backgrounds["dark"] != backgrounds["light"]
    assert backgrounds["auto"] == backgrounds["dark"]  # the system asks for dark here


def test_the_demo_page_shows_the_snippet_and_logs_the_widgets_events(
        embed_site: SiteServer, new_page: Any, tmp_path: Path) -> None:
    page = new_page(viewport={"width": 1200, "height": 1100})
    page.goto(embed_site.url + "/embed/demo")
    expect(page.get_by_role("heading", name="Embed it")).to_be_visible()
    expect(page.get_by_text(f'<script src="{embed_site.url}/static/relay-embed.js"')).to_be_visible()
    frame = widget_frame(page, embed_site.url)
    expect(frame.get_by_role("textbox", name="Prompt")).to_be_visible()
    frame.get_by_label("Steps").fill("10")
    frame.get_by_role("button", name="Generate").click()

    log = page.get_by_role("log")
    expect(log.locator('li[data-event="relay:done"]')).to_contain_text("succeeded", timeout=30000)
    expect(log.locator('li[data-event="relay:progress"]').first).to_be_visible()
    picture = frame.get_by_role("article").get_by_role("img")
    frame.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=picture.element_handle())
    # Like the page's screenshot: docs/embed.png is rewritten only when asked to.
    updating = os.environ.get("RELAY_UPDATE_SCREENSHOT") == "1"
    target = ROOT / "docs" / "embed.png" if updating else tmp_path / "embed.png"
    wait_until(lambda: _sized(page, frame), timeout=10, what="the iframe to fit the widget")
    page.screenshot(path=str(target), full_page=True)
    assert page.problems.errors == []


def _sized(page: Page, frame: Frame) -> bool:
    outer = round(page.locator("#demo-widget iframe").evaluate("(f) => f.getBoundingClientRect().height"))
    inner = int(frame.evaluate("Math.ceil(document.documentElement.getBoundingClientRect().height)"))
    return abs(outer - inner) <= 1
