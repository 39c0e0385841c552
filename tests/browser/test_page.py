"""The page against a live Relay: what a person sees while predictions run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from .relay_page import (
    card_status,
    connection_badge,
    fill_form,
    generate,
    history,
    newest_card,
    open_relay,
    progress_bar,
    progress_now,
    start,
)

IMAGE = "relay/image-demo"
TEXT = "relay/text-demo"


def assert_non_decreasing(values: list[float]) -> None:
    assert values == sorted(values), f"progress went backwards: {values}"


def test_landmarks_are_named_for_people_and_assistive_technology(relay_site: Any, new_page: Any) -> None:
    page = new_page()
    open_relay(page, relay_site.url)
    expect(page.get_by_role("combobox", name="Model")).to_be_visible()
    expect(page.get_by_role("textbox", name="Prompt")).to_be_visible()
    expect(page.get_by_role("button", name="Generate")).to_be_enabled()
    page.get_by_text("More options").click()  # optional inputs are folded there
    expect(page.get_by_role("spinbutton", name="Steps")).to_have_value("20")
    expect(page.get_by_text("Emulator — set REPLICATE_API_TOKEN to use Replicate")).to_be_visible()
    expect(connection_badge(page)).to_have_attribute("role", "status")
    page.get_by_role("combobox", name="Model").select_option(TEXT)
    page.get_by_text("More options").click()
    expect(page.get_by_role("spinbutton", name="Max tokens")).to_be_visible()
    expect(page.get_by_role("spinbutton", name="Steps")).to_have_count(0)
    assert page.problems.errors == []


def test_image_prediction_shows_rising_progress_then_the_image(relay_site: Any, new_page: Any) -> None:
    page = new_page()
    open_relay(page, relay_site.url)
    prompt = "a red fox in fresh snow"
    card = start(page, IMAGE, prompt, fields={"Steps": 30}, extra={"step_delay": 0.05})

    expect(page.get_by_role("status", name="connected")).to_be_visible()
    expect(card.get_by_role("button", name="Cancel")).to_be_visible()
    expect(card_status(card)).to_have_text("Succeeded", timeout=30000)

    image = card.get_by_role("img", name=f"Generated image for: {prompt}")
    expect(image).to_be_visible()
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    expect(progress_bar(card)).to_have_attribute("aria-valuenow", "100")
    expect(card.get_by_role("button", name="Cancel")).to_have_count(0)

    seen = history(page, "progress", card)
    assert_non_decreasing(seen)
    assert len({v for v in seen if 0 < v < 100}) >= 2, f"too few intermediate values: {seen}"
    card.get_by_text("Logs").click()
    expect(card.locator(".logs-text")).to_contain_text("30/30")
    assert page.problems.errors == []


def test_cancel_stops_a_running_prediction(relay_site: Any, new_page: Any) -> None:
    page = new_page()
    open_relay(page, relay_site.url)
    card = start(page, IMAGE, "a very slow painting", fields={"Steps": 200}, extra={"step_delay": 0.05})
    page.wait_for_function("(bar) => Number(bar.getAttribute('aria-valuenow')) > 0",
                           arg=progress_bar(card).element_handle(), timeout=15000)

    card.get_by_role("button", name="Cancel").click()

    expect(card_status(card)).to_have_text("Canceled", timeout=15000)
    expect(card.get_by_role("button", name="Cancel")).to_have_count(0)
    expect(card.get_by_role("img")).to_have_count(0)
    assert progress_now(card) < 100
    assert page.problems.errors == []


def test_text_tokens_appear_as_they_stream(relay_site: Any, new_page: Any) -> None:
    page = new_page()
    open_relay(page, relay_site.url)
    fill_form(page, TEXT, "Tell me about rivers", fields={"Max tokens": 30}, extra={"token_delay": 0.08})
    # Keyboard path: Ctrl+Enter in the prompt submits the form.
    page.get_by_role("textbox", name="Prompt").press("Control+Enter")
    card = newest_card(page, 1)

    output = card.locator(".text-output")
    expect(output).to_have_attribute("aria-live", "polite")
    expect(card_status(card)).to_have_text("Succeeded", timeout=30000)
    final_text = output.inner_text()
    assert len(final_text.split()) == 30

    lengths = history(page, "text", card)
    intermediate = [n for n in lengths if 0 < n < len(final_text)]
    assert len(set(intermediate)) >= 5, f"text arrived in too few steps: {lengths}"
    assert_non_decreasing(lengths)
    assert page.problems.errors == []


def test_an_invalid_input_shows_the_servers_sentence(relay_site: Any, new_page: Any) -> None:
    page = new_page()
    open_relay(page, relay_site.url)
    answer = page.request.post(f"{relay_site.url}/api/predictions",
                               data={"model": IMAGE, "input": {"prompt": "x", "steps": 100000}})
    expected = answer.json()
    assert answer.status >= 400 and expected["success"] is False

    assert expected["code"] == "invalid_input" and expected["field"] == "steps"

    fill_form(page, IMAGE, "x", fields={"Steps": 100000})
    generate(page)

    # The sentence is tied to the field it names (docs/models.md), which takes the focus.
    steps = page.get_by_role("spinbutton", name="Steps")
    expect(steps).to_have_attribute("aria-invalid", "true")
    expect(steps).to_have_accessible_description(re.compile(re.escape(expected["error"])))
    expect(steps).to_be_focused()
    expect(page.get_by_role("article")).to_have_count(0)
    expect(page.get_by_role("button", name="Generate")).to_be_enabled()


def test_eight_predictions_at_once_all_finish_over_one_stream(relay_site: Any, new_page: Any) -> None:
    page = new_page()
    streams: list[str] = []
    page.on("request", lambda request: streams.append(request.url) if "/events" in request.url else None)
    open_relay(page, relay_site.url)
    fill_form(page, IMAGE, fields={"Steps": 25}, extra={"step_delay": 0.1})
    for n in range(8):
        page.get_by_role("textbox", name="Prompt").fill(f"lantern number {n + 1}")
        generate(page)
        expect(page.get_by_role("article")).to_have_count(n + 1)

    cards = page.get_by_role("article")
    for index in range(8):
        expect(card_status(cards.nth(index))).to_have_text("Succeeded", timeout=45000)
    for index in range(8):
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0",
                               arg=cards.nth(index).get_by_role("img").element_handle())
    assert streams and all("/api/events?" in url for url in streams), streams
    assert page.problems.errors == []


def test_phone_sized_screen_has_no_sideways_scrolling(relay_site: Any, new_page: Any) -> None:
    page = new_page(viewport={"width": 375, "height": 740})
    open_relay(page, relay_site.url)
    card = start(page, TEXT, "A haiku about phones", fields={"Max tokens": 8}, extra={"token_delay": 0.02})
    expect(card_status(card)).to_have_text("Succeeded", timeout=20000)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    box = page.get_by_role("button", name="Generate").bounding_box()
    assert box is not None and box["width"] > 200, "the main action spans the phone's width"


def test_screenshot_of_a_finished_page(relay_site: Any, new_page: Any, screenshot_path: Path) -> None:
    page = new_page(viewport={"width": 1280, "height": 760})
    page.emulate_media(reduced_motion="reduce")  # no bar mid-transition in the picture
    open_relay(page, relay_site.url)
    image = start(page, IMAGE, "a lighthouse on a cliff at dawn, watercolor", fields={"Steps": 20},
                  extra={"step_delay": 0.03})
    expect(card_status(image)).to_have_text("Succeeded", timeout=30000)
    text = start(page, TEXT, "Write a short poem about the sea", fields={"Max tokens": 40},
                 extra={"token_delay": 0.02})
    expect(card_status(text)).to_have_text("Succeeded", timeout=30000)
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0",
                           arg=image.get_by_role("img").element_handle())
    page.get_by_role("textbox", name="Extra input (JSON)").fill("")
    page.get_by_text("More input").click()
    page.mouse.move(0, 0)
    page.screenshot(path=str(screenshot_path))
    assert screenshot_path.stat().st_size > 10_000
    assert re.search(r"connected|idle", connection_badge(page).inner_text())
