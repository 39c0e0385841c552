"""Each model's form built from its schema, and each kind of output shown with its own element."""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from testbed.recorded import RecordedReplicate

from .conftest import SiteServer
from .relay_page import card_status, generate, newest_card, open_relay

RAN_FOR = re.compile(r"^Ran for \d")


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


def choose(page: Page, model: str) -> None:
    page.get_by_role("combobox", name="Model").select_option(model)


def more_options(page: Page) -> None:
    summary = page.locator("#model-inputs details.more-options > summary")
    if not page.locator("#model-inputs details.more-options[open]").count():
        summary.click()


def run(page: Page, model: str, setup: Any = None) -> Locator:
    before = page.get_by_role("article").count()
    choose(page, model)
    if setup is not None:
        setup()
    generate(page)
    card = newest_card(page, before + 1)
    expect(card_status(card)).to_have_text("Succeeded", timeout=30000)
    return card


def test_each_demo_model_gets_the_right_control_for_each_input(relay_site: Any, new_page: Any) -> None:
    page = new_page()
    open_relay(page, relay_site.url)

    choose(page, "relay/image-demo")
    expect(page.get_by_role("textbox", name="Prompt")).to_have_value("a lighthouse at dawn")
    expect(page.get_by_role("spinbutton", name="Steps")).to_have_count(0)  # folded until asked for
    more_options(page)
    steps = page.get_by_role("spinbutton", name="Steps")
    expect(steps).to_have_value("20")
    expect(steps).to_have_attribute("min", "1")
    expect(steps).to_have_attribute("max", "500")
    expect(steps).to_have_attribute("step", "1")
    expect(steps).to_have_accessible_description("Denoising steps")
    expect(page.get_by_role("spinbutton", name="Step Delay")).to_have_attribute("step", "any")

    choose(page, "relay/caption-demo")
    expect(page.get_by_role("textbox", name="Prompt")).to_be_hidden()  # this model has no prompt
    image = page.get_by_role("textbox", name="Image", exact=True)
    expect(image).to_have_value(re.compile(r"^data:image/"))  # required: in view, default filled in
    expect(page.get_by_label("Upload a file for Image")).to_have_attribute("type", "file")
    more_options(page)
    style = page.get_by_role("combobox", name="Style")
    expect(style).to_have_value("short")
    expect(style.locator("option")).to_have_text(["short", "detailed"])

    choose(page, "relay/json-demo")
    expect(page.get_by_role("textbox", name="Text", exact=True)).to_have_value("What a lovely day by the sea")
    assert page.problems.errors == []


def test_each_kind_of_output_has_its_own_element_and_a_finished_card_its_action(
        relay_site: Any, new_page: Any) -> None:
    page = new_page()
    open_relay(page, relay_site.url)

    image = run(page, "relay/image-demo")
    expect(image.get_by_role("img", name=re.compile("Generated image for"))).to_be_visible()
    expect(image.get_by_role("link", name="Download")).to_have_attribute("download", "output.png")
    expect(image.locator(".run-time")).to_have_text(RAN_FOR)

    text = run(page, "relay/text-demo")
    expect(text.locator(".text-output")).not_to_be_empty()
    expect(text.get_by_role("button", name="Copy")).to_be_visible()
    expect(text.locator(".run-time")).to_have_text(RAN_FOR)

    audio = run(page, "relay/audio-demo")
    player = audio.locator("audio[controls]")
    expect(player).to_have_count(1)
    page.wait_for_function("(a) => a.readyState >= 1 && a.duration > 0", arg=player.element_handle())
    expect(audio.get_by_role("link", name="Download")).to_be_visible()

    data = run(page, "relay/json-demo")
    tree = data.get_by_role("tree")
    expect(tree).to_contain_text("sentiment")
    expect(tree.locator("details").first).to_have_attribute("open", "")
    data.get_by_role("button", name="Copy").click()
    expect(data.get_by_role("button", name=re.compile("^Cop"))).to_be_visible()
    assert page.problems.errors == []


def test_a_file_input_uploads_through_relay(relay_site: Any, new_page: Any, tmp_path: Path) -> None:
    page = new_page()
    open_relay(page, relay_site.url)
    picture = tmp_path / "room.png"
    picture.write_bytes(png())
    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.method) if r.url.endswith("/api/uploads") else None)

    def upload() -> None:
        page.get_by_label("Upload a file for Image").set_input_files(str(picture))
        expect(page.get_by_role("textbox", name="Image", exact=True)).to_have_value(
            re.compile(r"^data:image/png;base64,"))

    card = run(page, "relay/caption-demo", upload)
    assert uploads == ["POST"]
    expect(card.locator(".text-output, .output-text").first).not_to_be_empty()
    expect(card.get_by_role("button", name="Copy")).to_be_visible()


@pytest.fixture
def recorded_site(browser: Any, tmp_path: Path) -> Iterator[SiteServer]:
    replicate = RecordedReplicate(["stability-ai__sdxl", "meta__llama-2-70b-chat"]).start()
    site = SiteServer(tmp_path)
    site.env.update({"REPLICATE_API_TOKEN": "r8_recorded", "REPLICATE_BASE_URL": replicate.url,
                     "RELAY_ALLOWED_MODELS": "stability-ai/sdxl?num_outputs=1,meta/llama-2-70b-chat"})
    yield site.start()
    site.stop()
    replicate.stop()


def test_a_real_model_s_form_from_its_recorded_schema(recorded_site: SiteServer, new_page: Any) -> None:
    page = new_page()
    open_relay(page, recorded_site.url)
    choose(page, "stability-ai/sdxl")
    expect(page.get_by_role("textbox", name="Prompt")).to_have_value("An astronaut riding a rainbow unicorn")
    more_options(page)
    expect(page.get_by_role("textbox", name="Negative Prompt")).to_have_js_property("tagName", "TEXTAREA")
    scheduler = page.get_by_role("combobox", name="Scheduler")
    expect(scheduler).to_have_value("K_EULER")
    expect(scheduler.locator("option")).to_have_count(7)
    expect(page.get_by_role("checkbox", name="Apply Watermark")).to_be_checked()
    expect(page.get_by_role("checkbox", name="Disable Safety Checker")).not_to_be_checked()
    expect(page.get_by_label("Upload a file for Mask")).to_have_attribute("type", "file")
    guidance = page.get_by_role("spinbutton", name="Guidance Scale")
    expect(guidance).to_have_value("7.5")
    expect(guidance).to_have_attribute("max", "50")
    expect(page.get_by_role("spinbutton", name="Num Outputs")).to_have_count(0)  # pinned: not offered
    # Schema order (x-order): prompt first (its own box), then negative prompt, image, mask, width...
    names = page.locator("#model-inputs [data-input-key]").evaluate_all("(nodes) => nodes.map(n => n.name)")
    assert names[:4] == ["negative_prompt", "image", "mask", "width"], names
