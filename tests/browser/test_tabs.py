"""One event stream per browser: three tabs of one origin share it, and closing the leader hands it over.

The tabs are pages in one browser context (so they share navigator.locks
and BroadcastChannel, as a person's tabs do). Each records, in the page,
every EventSource it makes (instrument.py) and every event the leader relays
to it over the BroadcastChannel, with the event id.
"""

from typing import Any

from playwright.sync_api import expect

from testbed import wait_until
from tests.browser.instrument import INSTRUMENT
from tests.browser.relay_page import card_status, open_relay, start

IMAGE = "relay/image-demo"

RELAYED = """
(() => {
  window.relayedEvents = [];
  const channel = new BroadcastChannel('relay-events /api/events');
  channel.onmessage = (event) => {
    const m = event.data;
    if (m && m.type === 'event') {
      window.relayedEvents.push({ id: m.id, type: m.eventType, position: m.position, from: m.from });
    }
  };
})();
"""


def key(event_id: str) -> tuple[int, int]:
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq)


def open_streams(pages: list[Any]) -> list[tuple[int, str]]:
    found = []
    for index, page in enumerate(pages):
        if page.is_closed():
            continue
        for url in page.evaluate("window.relayInstruments.openStreams()"):
            found.append((index, url))
    return found


def test_three_tabs_hold_one_stream_and_the_leaders_close_loses_and_repeats_nothing(
        relay_site: Any, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    try:
        context.add_init_script(INSTRUMENT)
        context.add_init_script(RELAYED)
        pages = [context.new_page() for _ in range(3)]
        cards = []
        for page in pages:
            open_relay(page, relay_site.url)
        for n, page in enumerate(pages):
            cards.append(start(page, IMAGE, f"tab {n} lantern", fields={"Steps": 150}, extra={"step_delay": 0.1}))
        wait_until(lambda: len(open_streams(pages)) == 1 and open_streams(pages)[0][1].count("watch=") == 3,
                 timeout=10, what="one stream watching all three predictions")
        leader = open_streams(pages)[0][0]
        for other in (i for i in range(3) if i != leader):
            wait_until(lambda other=other: len(pages[other].evaluate("window.relayedEvents")) >= 3, timeout=10,
                     what="events relayed to a follower tab")

        pages[leader].close()
        followers = [i for i in range(3) if i != leader]
        wait_until(lambda: len(open_streams(pages)) == 1, timeout=10, what="a new leader's stream")
        new_leader, resumed_url = open_streams(pages)[0]
        assert new_leader in followers
        assert "lastEventId=" in resumed_url, resumed_url  # resumed by id, not from scratch
        for i in followers:
            expect(card_status(cards[i])).to_have_text("Succeeded", timeout=30000)
            expect(cards[i].get_by_role("img")).to_be_visible()
        assert len(open_streams(pages)) == 0, "the stream ends once every followed prediction is done"

        # The follower that stayed a follower saw every relayed event once, in order, per prediction;
        # across the handover, the ids go on rising (no repeat) and the prediction ends with its done event.
        survivor = next(i for i in followers if i != new_leader)
        relayed = pages[survivor].evaluate("window.relayedEvents")
        own_id = cards[survivor].evaluate("(node) => node.dataset.predictionId")
        mine = [e for e in relayed if e["id"] == own_id]
        positions = [key(e["position"]) for e in mine]
        assert positions == sorted(set(positions)), f"an event repeated or went back: {positions}"
        assert len({e["from"] for e in mine}) == 2, "events came from the old leader and then the new one"
        assert mine[-1]["type"] == "done"
        for i in followers:
            assert pages[i].evaluate("window.relayInstruments.streams().length") <= 1
    finally:
        context.close()
