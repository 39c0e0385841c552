"""Lone UTF-16 surrogates: refused at the edge with 400, and harmless when Replicate sends one."""

from __future__ import annotations

import httpx
import pytest

from relay.feed import Feed
from relay.hub import MemoryHub
from relay.upstream import Upstream
from relay.watcher import PollPolicy, Watchers
from testbed import wait_until
from testbed.scripted import Answer, scripted_upstream

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("body", [
    b'{"model": "relay/image-demo", "input": {"prompt": "a \\ud800 cat"}}',
    b'{"model": "relay/image-demo", "input": {"prompt": "x", "\\udfff": 1}}',
    b'{"model": "relay/text-demo", "input": {"prompt": ["ok", "\\udc00"]}}',
])
def test_a_prompt_with_a_lone_surrogate_is_refused_with_400(api: httpx.Client, body: bytes) -> None:
    answer = api.post("/api/predictions", content=body, headers=JSON)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "invalid_request"
    assert "surrogate" in answer.json()["error"]


def test_a_real_pair_is_text_and_accepted(api: httpx.Client) -> None:
    body = b'{"model": "relay/image-demo", "input": {"prompt": "a \\ud83d\\ude00 cat", "steps": 1}}'
    assert api.post("/api/predictions", content=body, headers=JSON).status_code == 201


def test_an_upstream_answer_with_a_lone_surrogate_does_not_stop_the_watcher() -> None:
    bad = Answer(200, b'{"id": "p1", "status": "processing", "logs": "step \\ud800", "output": null}')
    done = Answer(200, {"id": "p1", "status": "succeeded", "output": "ok", "logs": "step \u2713"})
    with scripted_upstream([bad, done]) as fake:
        hub = MemoryHub()
        watchers = Watchers(hub, Feed(hub), Upstream("token", fake.url), PollPolicy(base=0.05),
                            idle_timeout=60)
        watchers.ensure("p1")
        wait_until(lambda: hub.is_done("p1"), timeout=10)
    events = hub.channels.history("p1")
    assert next(e.delta_text() for e in events if e.kind == "logs") == "step \ufffd"
