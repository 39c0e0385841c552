"""The widget with grants (RELAY_GRANT_SECRET, docs/spend-guard.md) in real Chromium, on another origin.

- without a grant the widget's create is refused: Relay answers 403 grant_required and the
  widget shows the refusal's sentence (and reports it, with its code, to the host page as
  relay:error); a grant handed over later with handle.setGrant() lets the next Generate run;
- with a grant minted here (given as `data-grant` or `RelayEmbed.mount(el, {grant})`) it runs a
  prediction to success; the grant reaches Relay only as the create's `Authorization` header,
  never in a URL (the frame's URL and Relay's access log do not contain it).
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from relay.guard.grants import mint
from testbed import SiteServer
from tests.browser.test_embed import IMAGE, HostSite, events, host_page, run_input, wait_for_event, widget_frame

SECRET = "a-secret-only-the-host-backend-and-relay-know"


@pytest.fixture(scope="module")
def host() -> Iterator[HostSite]:
    site = HostSite()
    yield site
    site.close()


@pytest.fixture(scope="module")
def grant_site(browser: Any, host: HostSite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteServer]:
    site = SiteServer(tmp_path_factory.mktemp("relay-grant"))
    site.env["RELAY_EMBED_ORIGINS"] = host.url
    site.env["RELAY_GRANT_SECRET"] = SECRET
    site.start()
    yield site
    site.stop()


def watch_creates(page: Page) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def on_response(response: Any) -> None:
        if response.request.method == "POST" and response.url.endswith("/api/predictions"):
            seen.append({"status": response.status, "body": response.json(),
                         "authorization": response.request.headers.get("authorization")})

    page.on("response", on_response)
    return seen


def test_a_widget_without_a_grant_is_refused_with_grant_required(
        grant_site: SiteServer, host: HostSite, new_page: Any) -> None:
    host.pages["/none.html"] = host_page(grant_site.url, mount={
        "src": grant_site.url, "model": IMAGE, "prompt": "a fox", "autostart": True,
        "editable": ["prompt"], "input": run_input()})
    page = new_page()
    seen = watch_creates(page)
    before = grant_site.create_posts()
    page.goto(host.url + "/none.html")

    error = wait_for_event(page, "relay:error")
    assert "valid grant" in error["detail"]["error"]
    assert error["detail"]["code"] == "grant_required"
    frame = widget_frame(page, grant_site.url)
    expect(frame.get_by_role("alert")).to_contain_text("needs a valid grant")
    assert [(s["status"], s["body"]["code"]) for s in seen] == [(403, "grant_required")]
    assert seen[0]["authorization"] is None
    assert grant_site.create_posts() - before == 1
    assert events(page, "relay:done") == []

    # The host reacts as the docs say: a fresh grant through the handle, and the next Generate runs.
    grant = mint(SECRET, {"sub": "visitor-late", "exp": int(time.time()) + 600, "models": [IMAGE]})
    page.evaluate("(grant) => window.embedHandle.setGrant(grant)", grant)
    frame.get_by_role("button", name="Generate").click()
    done = wait_for_event(page, "relay:done")
    assert done["detail"]["status"] == "succeeded"
    assert [(s["status"], s["authorization"]) for s in seen][1:] == [(201, f"Relay-Grant {grant}")]


@pytest.mark.parametrize("how", ["mount", "data-grant"])
def test_a_widget_with_a_valid_grant_runs_a_prediction(
        grant_site: SiteServer, host: HostSite, new_page: Any, how: str) -> None:
    grant = mint(SECRET, {"sub": f"visitor-{how}", "exp": int(time.time()) + 600, "models": [IMAGE], "max": 3})
    if how == "mount":
        page_html = host_page(grant_site.url, mount={
            "src": grant_site.url, "model": IMAGE, "prompt": "a fox", "autostart": True,
            "editable": ["prompt"], "input": run_input(), "grant": grant})
    else:
        attributes = (f'data-relay-src="{html.escape(grant_site.url)}" data-model="{IMAGE}" data-prompt="a fox" '
                      f'data-autostart="1" data-editable="prompt" data-grant="{html.escape(grant)}"')
        page_html = host_page(grant_site.url, widget_attributes=attributes)
    host.pages[f"/{how}.html"] = page_html
    page = new_page()
    seen = watch_creates(page)
    page.goto(host.url + f"/{how}.html")

    done = wait_for_event(page, "relay:done")
    assert done["detail"]["status"] == "succeeded"
    assert events(page, "relay:error") == []
    assert [s["status"] for s in seen] == [201]
    assert seen[0]["authorization"] == f"Relay-Grant {grant}"
    frame = widget_frame(page, grant_site.url)
    expect(frame.get_by_role("article").get_by_role("status")).to_have_text("Succeeded")
    # The grant travelled only in a header: not in the frame's URL, not in any logged request line.
    assert grant not in frame.url and frame.url.endswith("#grant")
    signature = grant.split(".")[1]
    assert not [line for line in grant_site.output if signature in line]
