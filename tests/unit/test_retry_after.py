"""A 429 is waited out as long as Replicate asks: Retry-After first, then `retry_after`, then the text."""

from __future__ import annotations

import email.utils

import pytest

from relay.errors import UpstreamThrottled
from relay.feed import Feed
from relay.hub import MemoryHub
from relay.upstream import Upstream, throttle_wait
from relay.watcher import PollPolicy, Watchers
from testbed import wait_until
from testbed.scripted import Answer, scripted_upstream

NOW = 1_700_000_000.0
DONE = {"id": "p1", "status": "succeeded", "output": "ok", "logs": ""}


@pytest.mark.parametrize(("headers", "body", "wait"), [
    ({"retry-after": "3"}, None, 3.0),
    ({"retry-after": email.utils.formatdate(NOW + 7, usegmt=True)}, None, 7.0),
    ({}, {"detail": "Request was throttled.", "retry_after": 4}, 4.0),
    ({}, {"detail": "Request was throttled. Your rate limit resets in ~30s."}, 30.0),
    ({}, {"detail": "Request was throttled. Expected available in 5 seconds."}, 5.0),
    ({"retry-after": "6"}, {"retry_after": 1, "detail": "resets in ~9s"}, 6.0),
    ({"retry-after": "soon"}, {"retry_after": 8}, 8.0),
    ({}, {"detail": "Request was throttled."}, 2.0),
])
def test_the_wait_comes_from_the_header_then_the_field_then_the_text(
        headers: dict[str, str], body: object, wait: float) -> None:
    assert throttle_wait(headers, body, now=NOW) == pytest.approx(wait, abs=0.01)


def test_a_429_with_retry_after_is_raised_with_its_wait() -> None:
    with scripted_upstream([Answer(429, {"detail": "Request was throttled."}, {"Retry-After": "3"})]) as fake:
        with pytest.raises(UpstreamThrottled) as raised:
            Upstream("token", fake.url).get("p1")
    assert raised.value.retry_after == 3.0


def test_the_watcher_waits_out_retry_after_before_polling_again() -> None:
    script = [Answer(429, {"detail": "Request was throttled."}, {"Retry-After": "3"}), Answer(200, DONE)]
    with scripted_upstream(script) as fake:
        hub = MemoryHub()
        watchers = Watchers(hub, Feed(hub), Upstream("token", fake.url), PollPolicy(base=0.05),
                            idle_timeout=60)
        watchers.ensure("p1")
        wait_until(lambda: hub.is_done("p1"), timeout=15)
        first, second = fake.times()[:2]
    assert second - first >= 3.0
