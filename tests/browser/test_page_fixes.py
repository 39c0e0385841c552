"""Page fixes found by trying the page (issue #18 item 5), each checked in Chromium."""

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.browser.relay_page import card_status, connection_badge, fill_form, open_relay, start

IMAGE = "relay/image-demo"
TEXT = "relay/text-demo"
ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def test_a_text_card_says_processing_once_its_tokens_stream(relay_site: Any, new_page: Any) -> None:
    page = new_page()
    open_relay(page, relay_site.url)
    card = start(page, TEXT, "a story about a lighthouse", fields={"Max tokens": 60}, extra={"token_delay": 0.08})
    text = card.locator(".text-output")
    expect(text).not_to_be_empty(timeout=15000)
    seen = page.evaluate("""(node) => [node.querySelector('.card-status').textContent,
                                        node.querySelector('.text-output').textContent.length]""",
                         card.element_handle())
    assert seen[1] > 0 and seen[0] != "Starting", seen
    expect(card_status(card)).to_have_text("Succeeded", timeout=30000)
    tokens = card.locator(".progress-text")
    expect(tokens).to_contain_text(re.compile(r"\b60 tokens"))


def test_focus_stays_on_generate_and_moves_to_the_cards_next_action_after_cancel(
        relay_site: Any, new_page: Any) -> None:
    page = new_page()
    open_relay(page, relay_site.url)
    fill_form(page, IMAGE, fields={"Steps": 300})
    generate = page.get_by_role("button", name="Generate")
    generate.focus()
    page.keyboard.press("Enter")
    card = page.get_by_role("article").first
    expect(card.get_by_role("button", name="Cancel")).to_be_visible()
    assert page.evaluate("document.activeElement.id") == "generate"
    expect(generate).not_to_have_attribute("aria-disabled", "true")

    expect(card_status(card)).to_have_text("Processing", timeout=15000)
    card.get_by_role("button", name="Cancel").focus()
    page.keyboard.press("Enter")
    expect(card_status(card)).to_have_text("Canceled", timeout=15000)
    remove = card.get_by_role("button", name="Remove")
    expect(remove).to_be_focused()


def test_on_a_phone_the_new_card_is_brought_into_view(relay_site: Any, new_page: Any) -> None:
    page = new_page(viewport={"width": 390, "height": 700})
    open_relay(page, relay_site.url)
    card = start(page, IMAGE, "a phone-sized fox", fields={"Steps": 20}, extra={"step_delay": 0.05})
    expect(card).to_be_in_viewport()


def test_the_bar_moves_between_updates_at_the_rate_they_arrive(relay_site: Any, new_page: Any) -> None:
    page = new_page()
    open_relay(page, relay_site.url)
    card = start(page, IMAGE, "a slow fox", fields={"Steps": 12}, extra={"step_delay": 0.7})
    fill = card.locator(".progress-fill")
    # Updates come about 0.7 s apart, each step's log line: the bar takes about that long to move.
    page.wait_for_function("(el) => parseFloat(getComputedStyle(el).transitionDuration) >= 0.4",
                           arg=fill.element_handle(), timeout=20000)
    style = fill.evaluate("(el) => [getComputedStyle(el).transitionDuration, "
                          "getComputedStyle(el).transitionTimingFunction]")
    assert 0.4 <= float(style[0].removesuffix("s")) <= 4 and style[1] == "linear", style
    expect(card_status(card)).to_have_text("Succeeded", timeout=30000)
    # Asked for reduced motion, the bar jumps.
    page.emulate_media(reduced_motion="reduce")
    assert fill.evaluate("(el) => getComputedStyle(el).transitionProperty === 'none' "
                         "|| parseFloat(getComputedStyle(el).transitionDuration) === 0")


def test_a_failed_card_says_where_it_failed_instead_of_an_eta(relay_site: Any, new_page: Any) -> None:
    page = new_page()
    open_relay(page, relay_site.url)
    card = start(page, IMAGE, "a fox that trips", fields={"Steps": 50},
                 extra={"step_delay": 0.05, "fail_at_step": 11})
    expect(card_status(card)).to_have_text("Failed", timeout=30000)
    line = card.locator(".progress-text")
    expect(line).to_have_text(re.compile(r"^Failed at step 1[01] of 50$"))
    expect(line).not_to_contain_text("left")


def test_the_badge_uses_plain_words_and_offers_retry_now(relay_site: Any, new_page: Any) -> None:
    page = new_page()
    open_relay(page, relay_site.url)
    card = start(page, IMAGE, "a fox offline", fields={"Steps": 400}, extra={"step_delay": 0.1})
    expect(page.get_by_role("status", name="connected")).to_be_visible()
    retry = page.get_by_role("button", name="Retry now")
    expect(retry).to_be_hidden()
    page.context.set_offline(True)
    expect(connection_badge(page)).to_have_text(re.compile(r"^(offline|reconnecting)$"), timeout=15000)
    expect(retry).to_be_visible()
    streams_before = page.evaluate("performance.getEntriesByType('resource').length")
    retry.click()  # tries at once; offline, the attempt fails and the badge keeps saying so
    expect(connection_badge(page)).to_have_text(re.compile(r"^(offline|reconnecting)$"))
    assert page.evaluate("performance.getEntriesByType('resource').length") >= streams_before
    page.context.set_offline(False)
    expect(page.get_by_role("status", name="connected")).to_be_visible(timeout=15000)
    expect(retry).to_be_hidden()
    card.get_by_role("button", name="Cancel").click()


def test_the_event_log_of_the_demo_page_is_a_list_inside_a_log(relay_site: Any, new_page: Any) -> None:
    page = new_page()
    page.goto(relay_site.url + "/embed/demo")
    log = page.get_by_role("log")
    expect(log).to_be_visible()
    assert log.evaluate("(node) => node.tagName") != "OL"
    assert log.locator("ol").count() == 1


def run_axe(page: Any) -> list[dict[str, Any]]:
    # evaluate() runs through DevTools, which the pages' CSP (script-src 'self') does not govern.
    page.evaluate(AXE.read_text() + "\n;window.axe !== undefined")
    result: list[dict[str, Any]] = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map((v) => ({id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' '))}));
    }""")
    return result


def test_axe_finds_no_violation_on_the_page_the_widget_and_the_demo(relay_site: Any, new_page: Any) -> None:
    for scheme in ("light", "dark"):
        page = new_page()
        page.emulate_media(color_scheme=scheme)
        open_relay(page, relay_site.url)
        assert run_axe(page) == [], (scheme, "empty page")
        card = start(page, IMAGE, "an accessible fox", fields={"Steps": 10}, extra={"step_delay": 0.05})
        expect(card_status(card)).to_have_text("Succeeded", timeout=30000)
        assert run_axe(page) == [], (scheme, "page with a card")

        widget = new_page()
        widget.emulate_media(color_scheme=scheme)
        widget.goto(relay_site.url + f"/embed?model={IMAGE}&prompt=a%20fox")
        expect(widget.get_by_role("button", name="Generate")).to_be_enabled()
        assert run_axe(widget) == [], (scheme, "widget")

        demo = new_page()
        demo.emulate_media(color_scheme=scheme)
        demo.goto(relay_site.url + "/embed/demo")
        expect(demo.get_by_role("log")).to_be_attached()
        assert run_axe(demo) == [], (scheme, "demo")


def test_the_rate_limit_message_counts_down_with_generate_unavailable(own_site: Any, new_page: Any) -> None:
    own_site.env["RELAY_RATE_LIMIT"] = "1/minute"
    own_site.start()
    page = new_page()
    open_relay(page, own_site.url)
    start(page, IMAGE, "the one allowed fox", fields={"Steps": 5}, extra={"step_delay": 0.05})
    page.get_by_role("button", name="Generate").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(re.compile(r"Try again in \d+ seconds?\."))
    generate = page.locator("#generate")
    expect(generate).to_have_attribute("aria-disabled", "true")
    first = int(re.search(r"in (\d+) second", alert.inner_text()).group(1))  # type: ignore[union-attr]
    page.wait_for_function("(n) => { const m = /in (\\d+) second/.exec(document.getElementById('form-error')"
                           ".textContent); return m && Number(m[1]) < n; }", arg=first, timeout=5000)
    generate.click(force=True)  # unavailable: no new POST while the countdown runs
    expect(page.get_by_role("article")).to_have_count(1)
    assert own_site.create_posts() == 2
