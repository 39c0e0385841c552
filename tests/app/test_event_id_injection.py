"""Resume positions are ids Relay issued: anything else counts as never issued and is never echoed."""

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
    "1-1\n\nevent: done\ndata: {\"status\": \"failed\"}\n\n,",
    "1-1\r\ndata: injected,",
    "1-1,x\nid: 9",
    "<script>,2-2",
])
def test_a_forged_last_event_id_is_never_written_back(api: httpx.Client, forged: str) -> None:
    url = _watch_url(api, 2) + "&lastEventId=" + quote(forged)
    with api.stream("GET", url) as answer:
        assert answer.status_code == 200
        body = answer.read()
    assert b"injected" not in body and b"failed" not in body and b"script" not in body and b"id: 9" not in body
    ids = [line[4:] for line in body.decode().split("\n") if line.startswith("id: ")]
    assert ids and all(all(part == "" or part.replace("-", "").isdigit() for part in i.split(",")) for i in ids)
    # Like any id never issued: each prediction starts from its current snapshot, then done.
    kinds = [line[7:] for line in body.decode().split("\n") if line.startswith("event: ")]
    assert kinds.count("done") == 2


def test_ids_relay_issued_still_resume(api: httpx.Client) -> None:
    url = _watch_url(api, 2)
    events = follow(api, url)
    middle = events[len(events) // 2].id
    assert "," in middle
    rest = follow(api, url + "&lastEventId=" + quote(middle))
    assert [e.id for e in rest] == [e.id for e in events[len(events) // 2 + 1:]]
