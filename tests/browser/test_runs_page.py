"""The page's runs in Chromium: the "Your runs" list, reattaching after a reload, queue places, estimates."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from testbed import SiteServer, wait_until

from .relay_page import RECORDER, card_status, history, open_relay, progress_bar, progress_now, start

IMAGE = "relay/image-demo"
TEXT = "relay/text-demo"


def count_creates(page: Page) -> list[str]:
    """Every POST /api/predictions the page makes, across reloads."""
    posts: list[str] = []

    def note(request: Any) -> None:
        if request.method == "POST" and re.search(r"/api/predictions/?$", request.url.split("?")[0]):
            posts.append(request.url)

    page.on("request", note)
    return posts


def server_runs(page: Page, url: str) -> list[dict[str, Any]]:
    answer = page.request.get(f"{url}/api/runs")  # the page's context: the same relay_visitor cookie
    assert answer.ok
    runs: list[dict[str, Any]] = answer.json()["runs"]
    return runs


def reload_page(page: Page) -> None:
    page.reload()
    expect(page.get_by_role("combobox", name="Model")).to_be_enabled()


def assert_non_decreasing(values: list[float]) -> None:
    assert values == sorted(values), f"progress went backwards: {values}"


# Collects every "about N s left" the estimate line shows, in seconds.
COUNTDOWN_RECORDER = """
(line) => {
  window.relayLeft = [];
  const note = () => {
    const match = /about (?:(\\d+) min ?)?(?:(\\d+) s)? left/.exec(line.textContent);
    if (match) window.relayLeft.push(Number(match[1] || 0) * 60 + Number(match[2] || 0));
  };
  note();
  new MutationObserver(note).observe(line, { childList: true, characterData: true, subtree: true });
}
"""


def test_reload_mid_run_reattaches_without_a_second_post(relay_site: Any, new_page: Any) -> None:
    page = new_page()
    posts = count_creates(page)
    open_relay(page, relay_site.url)
    card = start(page, IMAGE, "a slow harbour at night", fields={"Steps": 40}, extra={"step_delay": 0.12})
    page.wait_for_function("(bar) => Number(bar.getAttribute('aria-valuenow')) >= 20",
                           arg=progress_bar(card).element_handle(), timeout=20000)
    before = progress_now(card)
    assert len(posts) == 1

    with page.expect_request(lambda request: "/api/events" in request.url) as resumed:
        reload_page(page)
    # The stream resumes from the last event the card showed, not from scratch.
    assert "lastEventId=" in resumed.value.url, resumed.value.url
    # The reloaded card shows at once what it showed before: never a lower bar.
    expect(card).to_have_count(1)
    first_after = progress_now(card)
    assert first_after >= before, (before, first_after)
    page.evaluate(RECORDER)
    expect(card_status(card)).to_have_text("Succeeded", timeout=30000)

    seen = history(page, "progress", card)
    assert_non_decreasing([first_after, *seen])
    assert len({v for v in seen if before < v < 100}) >= 2, f"progress did not continue: {seen}"
    assert progress_now(card) == 100
    assert len(posts) == 1, f"the reload made another create: {posts}"
    assert page.problems.errors == []


def test_a_reloaded_text_run_ends_with_exactly_the_servers_text(relay_site: Any, new_page: Any) -> None:
    page = new_page()
    posts = count_creates(page)
    open_relay(page, relay_site.url)
    card = start(page, TEXT, "Tell me about lighthouses", fields={"Max tokens": 60}, extra={"token_delay": 0.1})
    output = card.locator(".text-output")
    page.wait_for_function("(node) => node.textContent.split(' ').length >= 10",
                           arg=output.element_handle(), timeout=20000)
    shown_before = output.inner_text()

    reload_page(page)
    expect(card).to_have_count(1)
    restored = output.text_content() or ""
    assert restored.startswith(shown_before.strip()) or restored == shown_before
    page.evaluate(RECORDER)
    expect(card_status(card)).to_have_text("Succeeded", timeout=30000)

    run = next(r for r in server_runs(page, relay_site.url) if r["model"] == TEXT)
    expected = "".join(run["output"])
    assert output.text_content() == expected, "the text differs from the server's: a token repeated or lost"
    assert len(run["output"]) == 60
    expect(card.locator(".progress-text")).to_contain_text("60 tokens")
    lengths = history(page, "text", card)
    assert_non_decreasing(lengths)
    assert len(posts) == 1
    assert page.problems.errors == []


def test_earlier_runs_are_listed_after_a_reload_and_reopen(relay_site: Any, new_page: Any) -> None:
    page = new_page()
    open_relay(page, relay_site.url)
    first = start(page, IMAGE, "a green teapot", fields={"Steps": 4}, extra={"step_delay": 0.02})
    expect(card_status(first)).to_have_text("Succeeded", timeout=20000)
    second = start(page, TEXT, "Say hello", fields={"Max tokens": 5}, extra={"token_delay": 0.02})
    expect(card_status(second)).to_have_text("Succeeded", timeout=20000)

    reload_page(page)
    runs = page.get_by_role("list").filter(has=page.locator(".run-item"))
    expect(page.get_by_role("heading", name="Your runs")).to_be_visible()
    items = runs.get_by_role("listitem")
    expect(items).to_have_count(2)
    expect(items.nth(0)).to_contain_text("Say hello")  # newest first
    expect(items.nth(1)).to_contain_text("a green teapot")
    expect(items.nth(1)).to_contain_text("Succeeded")
    thumb = items.nth(1).locator("img.run-thumb")
    expect(thumb).to_have_count(1)
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())

    # Finished runs are not reopened by themselves; opening one shows its final state.
    expect(page.get_by_role("article")).to_have_count(0)
    items.nth(1).get_by_role("button").click()
    card = page.get_by_role("article")
    expect(card).to_have_count(1)
    expect(card_status(card)).to_have_text("Succeeded")
    expect(card.get_by_role("img", name="Generated image for: a green teapot")).to_be_visible()
    expect(progress_bar(card)).to_have_attribute("aria-valuenow", "100")
    items.nth(1).get_by_role("button").click()  # already open: no second card
    expect(page.get_by_role("article")).to_have_count(1)
    assert page.problems.errors == []


def test_queued_cards_say_their_place_in_line(browser: Any, new_page: Any, tmp_path: Path) -> None:
    site = SiteServer(tmp_path)
    assert site.env is not None
    site.env["RELAY_MAX_RUNNING"] = "1"
    site.start()
    try:
        page = new_page()
        posts = count_creates(page)
        open_relay(page, site.url)
        running = start(page, IMAGE, "the one running", fields={"Steps": 60}, extra={"step_delay": 0.1})
        first = start(page, IMAGE, "first in the queue", fields={"Steps": 2}, extra={"step_delay": 0.01})
        second = start(page, IMAGE, "second in the queue", fields={"Steps": 2}, extra={"step_delay": 0.01})
        expect(card_status(first)).to_have_text("Queued")
        expect(first.locator(".progress-text")).to_have_text("1st in line")
        expect(second.locator(".progress-text")).to_have_text("2nd in line")
        # A reload keeps the queued cards on Relay's own ids, still in line, with no new create.
        reload_page(page)
        expect(page.get_by_role("article")).to_have_count(3)
        expect(second.locator(".progress-text")).to_have_text(re.compile(r"^(1st|2nd) in line$"))
        assert len(posts) == 3, posts
        # As the queue moves, the place updates from the stream's snapshots.
        expect(card_status(running)).to_have_text("Succeeded", timeout=30000)
        expect(second.locator(".progress-text")).not_to_have_text("2nd in line", timeout=20000)
        for card in (first, second):
            expect(card_status(card)).to_have_text("Succeeded", timeout=30000)
        assert len(posts) == 3, posts
        assert page.problems.errors == []
    finally:
        site.stop()


def test_the_estimate_shows_during_starting_once_the_model_has_history(own_site: SiteServer,
                                                                       new_page: Any) -> None:
    own_site.start()
    page = new_page()
    open_relay(page, own_site.url)
    # Runs of about 3 s of boot and 2 s of steps each: the history the estimate is made from.
    slow = {"step_delay": 0.1, "boot_delay": 3}
    for n in range(2):
        done = start(page, IMAGE, f"warm up {n}", fields={"Steps": 20}, extra=slow)
        expect(card_status(done)).to_have_text("Succeeded", timeout=20000)

    card = start(page, IMAGE, "a slow boot", fields={"Steps": 20}, extra=slow)
    line = card.locator(".card-estimate")
    expect(card_status(card)).to_have_text("Starting")
    expect(line).to_contain_text(re.compile(r"^Usually starts in ~\d+ s · "), timeout=5000)
    expect(line).to_contain_text(re.compile(r"\d+ s elapsed"))
    expect(line).to_contain_text(re.compile(r"about \d+ s left"))
    # The elapsed counter moves on its own, with no event from the server.
    first = line.text_content()
    expect(line).not_to_have_text(first or "", timeout=3000)
    page.evaluate(COUNTDOWN_RECORDER, line.element_handle())
    # Once the logs give an ETA it wins: the progress text has the time left, the line no longer.
    expect(card.locator(".progress-text")).to_contain_text(re.compile(r"about \d+ s left"), timeout=15000)
    expect(line).not_to_contain_text("left")
    expect(line).to_contain_text("elapsed")
    expect(card_status(card)).to_have_text("Succeeded", timeout=30000)
    left = page.evaluate("() => window.relayLeft")
    assert len(left) >= 3, left
    rises = [b - a for a, b in zip(left, left[1:], strict=False) if b > a]
    assert all(rise <= 3 for rise in rises), f"the remaining time jumped up: {left}"
    expect(line).to_be_hidden()
    assert page.problems.errors == []


def test_a_run_that_finished_while_the_page_was_away_shows_finished(relay_site: Any, new_page: Any) -> None:
    page = new_page()
    posts = count_creates(page)
    open_relay(page, relay_site.url)
    card = start(page, TEXT, "Tell me about tides", fields={"Max tokens": 30}, extra={"token_delay": 0.1})
    page.wait_for_function("(node) => node.textContent.length > 0", arg=card.locator(".text-output").element_handle())
    page.goto("about:blank")  # the tab leaves; the run goes on without it

    def finished() -> dict[str, Any] | None:
        runs = server_runs(page, relay_site.url)
        return runs[0] if runs and runs[0]["status"] == "succeeded" else None

    run = wait_until(finished, timeout=20, what="the run to finish upstream")
    open_relay(page, relay_site.url)
    expect(card).to_have_count(1)
    expect(card_status(card)).to_have_text("Succeeded")
    assert card.locator(".text-output").text_content() == "".join(run["output"])
    expect(card.locator(".card-estimate")).to_be_hidden()
    kept = "() => Object.keys(JSON.parse(localStorage.getItem('relay.unfinished-runs.v1') || '{}'))"
    assert page.evaluate(kept) == [], "a finished run stays in the store"
    assert len(posts) == 1
    assert page.problems.errors == []


def test_a_used_up_quota_is_a_sentence_by_the_form_with_the_wait(browser: Any, new_page: Any,
                                                                 tmp_path: Path) -> None:
    site = SiteServer(tmp_path)
    assert site.env is not None
    site.env["RELAY_QUOTA"] = "1/hour"
    site.start()
    try:
        page = new_page()
        open_relay(page, site.url)
        card = start(page, TEXT, "the only one", fields={"Max tokens": 3}, extra={"token_delay": 0.01})
        expect(card_status(card)).to_have_text("Succeeded", timeout=20000)
        page.get_by_role("button", name="Generate").click()
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("You have started as many predictions as this site allows for now.")
        expect(alert).to_contain_text(re.compile(r"Try again in \d+ min( \d+ s)?\."))
        expect(alert).not_to_contain_text("try again in", ignore_case=False)  # the server's own wait is replaced
        expect(page.get_by_role("button", name="Generate")).to_have_attribute("aria-disabled", "true")
        expect(page.get_by_role("article")).to_have_count(1)
        # Chromium logs the refused request itself; nothing else may go wrong.
        assert [e for e in page.problems.errors if "status of 429" not in e] == []
    finally:
        site.stop()
