"""useRelay in a React 19 app, in Chromium: StrictMode, one POST, one stream, cancel, unmount.

The app (tests/browser/react_app/app.jsx) is bundled here with esbuild from
node_modules, React in development mode so that <StrictMode> mounts,
unmounts and remounts every component once. It is served on Relay's own
origin through a Playwright route, so useRelay() with no options follows
this page's origin.
"""

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.instrument import INSTRUMENT, open_streams, streams

ROOT = Path(__file__).resolve().parents[2]
ESBUILD = ROOT / "node_modules" / ".bin" / "esbuild"


@pytest.fixture(scope="module")
def react_bundle(tmp_path_factory: pytest.TempPathFactory) -> str:
    if not ESBUILD.exists() or shutil.which("node") is None:
        pytest.skip("esbuild and React come from npm ci")
    out = tmp_path_factory.mktemp("react-app") / "app.js"
    subprocess.run([str(ESBUILD), str(ROOT / "tests" / "browser" / "react_app" / "app.jsx"), "--bundle",
                    "--format=iife", "--jsx=automatic", "--define:process.env.NODE_ENV=\"development\"",
                    f"--outfile={out}"], cwd=ROOT, check=True, capture_output=True, timeout=120)
    return out.read_text()


def open_app(relay_site: Any, new_page: Any, bundle: str, query: str) -> Any:
    page = new_page()
    page.add_init_script(INSTRUMENT)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and r.url.endswith("/api/predictions")
            else None)
    page.posts = posts
    html = ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>React app</title>'
            '<link rel="icon" href="data:,"></head><body><div id="root"></div>'
            '<script src="/react-app.js"></script></body></html>')
    page.route(f"{relay_site.url}/react-app.html*", lambda route: route.fulfill(body=html, content_type="text/html"))
    page.route(f"{relay_site.url}/react-app.js", lambda route: route.fulfill(body=bundle,
                                                                              content_type="text/javascript"))
    page.goto(f"{relay_site.url}/react-app.html?{query}")
    return page


def test_a_strict_mode_app_runs_a_prediction_to_its_output_over_one_stream(
        relay_site: Any, new_page: Any, react_bundle: str) -> None:
    page = open_app(relay_site, new_page, react_bundle, "steps=10&delay=0.05")
    card = page.get_by_role("article", name="Prediction")
    expect(card.get_by_role("status")).to_have_text("succeeded", timeout=30000)
    expect(card.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(card.get_by_role("img", name="Generated image for: a fox made of paper")).to_be_visible()
    expect(card.get_by_label("Logs")).to_contain_text("10/10")
    assert len(page.posts) == 1, page.posts
    assert len(streams(page)) == 1, streams(page)
    assert page.problems.errors == []


def test_cancel_then_unmount_closes_the_stream_and_leaves_no_timer(
        relay_site: Any, new_page: Any, react_bundle: str) -> None:
    page = open_app(relay_site, new_page, react_bundle, "steps=400&delay=0.1")
    card = page.get_by_role("article", name="Prediction")
    expect(card.get_by_role("status")).to_have_text("processing", timeout=30000)
    card.get_by_role("button", name="Cancel").click()
    expect(card.get_by_role("status")).to_have_text("canceled")
    assert len(page.posts) == 1
    assert len(streams(page)) == 1


def test_unmounting_a_running_prediction_closes_its_stream_within_3_s(
        relay_site: Any, new_page: Any, react_bundle: str) -> None:
    page = open_app(relay_site, new_page, react_bundle, "steps=400&delay=0.1")
    card = page.get_by_role("article", name="Prediction")
    expect(card.get_by_role("status")).to_have_text("processing", timeout=30000)
    assert len(open_streams(page)) == 1
    page.get_by_role("button", name="Unmount").click()
    expect(page.get_by_text("Unmounted")).to_be_visible()
    page.wait_for_function("() => window.relayInstruments.openStreams().length === 0", timeout=3000)
    page.wait_for_function("() => window.relayInstruments.pendingTimers() === 0", timeout=3000)
    assert len(page.posts) == 1
    assert len(streams(page)) == 1
    assert page.problems.errors == []
