"""Resume positions are ids Relay issued, or refused: nothing a client sends becomes an `id:` line."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from testbed.sse import follow


def _created(api: httpx.Client) -> dict[str, str]:
    answer = api.post("/api/predictions", json={"model": "relay/image-demo",
                                                "input": {"prompt": "ids", "steps": 2, "step_delay": 0}})
    assert answer.status_code == 201
    return dict(answer.json())


def _watch_url(api: httpx.Client, count: int) -> str:
    tokens = [_created(api)["stream_url"].split("token=")[1] for _ in range(count)]
    return "/api/events?" + "&".join(f"watch={t}" for t in tokens)


@pytest.mark.parametrize("forged", [
    "1-1\n\nevent: done\ndata: {\"status\": \"failed\"}",
    "1-1\r\ndata: injected",
    "1-1,x\nid: 9",
    "<script>",
])
def test_a_forged_last_event_id_on_the_multiplexed_stream_is_refused(api: httpx.Client, forged: str) -> None:
    url = _watch_url(api, 2) + "&lastEventId=" + quote(forged)
    with api.stream("GET", url) as answer:
        body = answer.read()
    assert answer.status_code == 400, body
    assert answer.json()["code"] == "invalid_request"
    assert b"injected" not in body and b"event: done" not in body


def test_ids_relay_issued_still_resume(api: httpx.Client) -> None:
    url = _watch_url(api, 2)
    events = follow(api, url)
    assert events
    middle = events[len(events) // 2].id
    assert "," in middle
    rest = follow(api, url + "&lastEventId=" + quote(middle))
    assert [e.id for e in rest] == [e.id for e in events[len(events) // 2 + 1:]]
    partial = ",".join([middle.split(",")[0], ""])
    with api.stream("GET", url + "&lastEventId=" + quote(partial)) as answer:
        assert answer.status_code == 200


def test_a_single_stream_takes_only_one_id(api: httpx.Client) -> None:
    created = _created(api)
    answer = api.get(created["stream_url"] + "&lastEventId=" + quote("1-1,2-2"))
    assert answer.status_code == 400 and answer.json()["code"] == "invalid_request"
