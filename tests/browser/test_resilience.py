"""The page when the network or the server misbehaves: it must end right, on its own."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from testbed import wait_until

from .relay_page import (
    card_status,
    connection_badge,
    history,
    open_relay,
    progress_bar,
    progress_now,
    start,
)

IMAGE = "relay/image-demo"


def wait_for_progress(page: Any, card: Any, at_least: float) -> None:
    page.wait_for_function("([bar, n]) => Number(bar.getAttribute('aria-valuenow')) >= n",
                           arg=[progress_bar(card).element_handle(), at_least], timeout=20000)


def test_a_killed_and_restarted_server_still_ends_the_prediction(own_site: Any, new_page: Any) -> None:
    own_site.start()
    page = new_page()
    open_relay(page, own_site.url)
    prompt = "a harbour at night"
    card = start(page, IMAGE, prompt, fields={"Steps": 80}, extra={"step_delay": 0.1})
    wait_for_progress(page, card, 15)

    own_site.kill()
    # Stay down until the client has failed at least one retry, then come back.
    # The badge says it in plain words; the attempt count is for scripts (data-attempt), not for people.
    expect(connection_badge(page)).to_have_text("reconnecting", timeout=20000)
    page.wait_for_function("() => Number(document.getElementById('connection-badge').dataset.attempt) >= 2",
                           timeout=20000)
    expect(page.get_by_role("button", name="Retry now")).to_be_visible()
    before_restart = progress_now(card)
    own_site.start()

    expect(card_status(card)).to_have_text("Succeeded", timeout=45000)
    image = card.get_by_role("img", name=f"Generated image for: {prompt}")
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    seen = history(page, "progress", card)
    assert seen == sorted(seen), f"progress went backwards: {seen}"
    assert seen[-1] == 100 and before_restart < 100
    assert own_site.create_posts() == 1, "a reconnect must never repeat the POST"


def test_a_silent_stall_is_noticed_and_the_client_reconnects(own_site: Any, new_page: Any,
                                                              freezable_proxy: Any) -> None:
    own_site.start()
    proxy = freezable_proxy(own_site.port)
    page = new_page()
    open_relay(page, proxy.url)
    card = start(page, IMAGE, "a frozen lake", fields={"Steps": 90}, extra={"step_delay": 0.1})
    wait_for_progress(page, card, 5)
    assert proxy.requests_for("/api/events") == 1

    frozen = proxy.freeze("/api/events")
    assert frozen == 1
    frozen_at = progress_now(card)

    # Heartbeats are 1 s here, so the watchdog gives up after a few seconds of silence.
    wait_until(lambda: proxy.requests_for("/api/events") >= 2, timeout=15, what="a new /api/events request")
    wait_for_progress(page, card, frozen_at + 1)
    expect(card_status(card)).to_have_text("Succeeded", timeout=30000)
    seen = history(page, "progress", card)
    assert seen == sorted(seen), f"progress went backwards: {seen}"
    assert own_site.create_posts() == 1


def test_an_upstream_outage_shows_a_notice_that_clears_and_the_prediction_goes_on(
        own_site: Any, new_page: Any) -> None:
    own_site.env["RELAY_EMULATOR_FAULTS"] = "1"
    own_site.start()
    page = new_page()
    open_relay(page, own_site.url)
    card = start(page, IMAGE, "a storm at sea", fields={"Steps": 60}, extra={"step_delay": 0.1})
    wait_for_progress(page, card, 5)

    fault = {"status": 503, "methods": ["GET"], "path_prefix": "/v1/predictions", "seconds": 3}
    answer = page.request.post(f"{own_site.url}/emulator/_emulator/faults", data=fault)
    assert answer.ok, answer.text()

    notice = page.get_by_role("status").filter(has_text="is not answering right now")
    expect(notice).to_be_visible(timeout=10000)
    # One plain sentence that names the emulator (the backend here).
    expect(notice).to_have_text(re.compile(r"^The emulator is not answering right now; Relay (tries again in \d+ "
                                           r"seconds?|is trying again), and your predictions keep running\.$"))
    expect(card_status(card)).not_to_have_text("Failed")
    expect(notice).to_be_hidden(timeout=20000)
    expect(card_status(card)).to_have_text("Succeeded", timeout=30000)
