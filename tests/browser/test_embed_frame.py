"""The widget's frame: autostart only when framed (issue #11, item 10), and a height that follows
every change of the content, the output image's load included (issue #18)."""

import json
import re
from typing import Any

from playwright.sync_api import expect

from testbed import wait_until

# The widget's module-scoped servers (embed_site, allowed_host) are test_embed.py's fixtures.
from tests.browser.test_embed import (  # noqa: F401
    IMAGE,
    HostSite,
    allowed_host,
    embed_site,
    host_page,
    run_input,
    wait_for_event,
    widget_frame,
)


def test_autostart_does_nothing_when_the_widget_is_not_framed(embed_site: Any, new_page: Any) -> None:  # noqa: F811
    page = new_page()
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.goto(f"{embed_site.url}/embed?model={IMAGE}&prompt=spend%20their%20credits&autostart=1")
    expect(page.get_by_role("button", name="Generate")).to_be_enabled()
    page.wait_for_load_state("networkidle")
    assert posts == [], "a top-level visit to /embed?autostart=1 must not start a prediction"
    expect(page.get_by_role("article")).to_have_count(0)
    # A person who wants it can still press Generate.
    page.get_by_role("button", name="Generate").click()
    expect(page.get_by_role("article")).to_have_count(1)
    assert len(posts) == 1


def test_the_iframe_grows_when_the_output_image_loads(
        embed_site: Any, allowed_host: HostSite, new_page: Any) -> None:  # noqa: F811
    # A tall image: the card keeps a square for it until it loads, then takes the image's own shape.
    tall = {**run_input(steps=5), "width": 256, "height": 1024}
    attributes = (f'data-relay-src="{embed_site.url}" data-model="{IMAGE}" data-prompt="a slow lighthouse" '
                  f'data-autostart="1" data-input=\'{json.dumps(tall)}\'')
    allowed_host.pages["/slow-image.html"] = host_page(embed_site.url, widget_attributes=attributes)
    page = new_page()
    held: list[Any] = []
    # The kept file (/files/runs/<id>/0/output.png?sig=…), or the emulator's own before it is kept.
    page.route(re.compile(r"/output\.png(\?.*)?$"), lambda route: held.append(route))
    page.goto(allowed_host.url + "/slow-image.html")
    wait_for_event(page, "relay:done")
    frame = widget_frame(page, embed_site.url)
    iframe = page.locator("#widget iframe")
    content = "Math.ceil(document.getElementById('relay-embed').getBoundingClientRect().height)"

    def agreed_height() -> int | None:
        outer = round(iframe.evaluate("(f) => f.getBoundingClientRect().height"))
        inner = int(frame.evaluate(content))
        return outer if abs(outer - inner) <= 2 else None

    wait_until(lambda: held, timeout=10, what="the image request")
    before = wait_until(agreed_height, timeout=10, what="the iframe to fit the card without its image")
    for route in held:
        route.continue_()
    picture = frame.get_by_role("img", name="Generated image for: a slow lighthouse")
    frame.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=picture.element_handle())
    after = wait_until(lambda: (h := agreed_height()) is not None and h > before + 60 and h, timeout=10,
                     what="the iframe to grow with the loaded image")
    assert after > before + 60, (before, after)
    assert frame.evaluate("document.documentElement.scrollHeight <= document.documentElement.clientHeight + 1")
    assert page.problems.errors == []
