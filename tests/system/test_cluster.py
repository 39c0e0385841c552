"""Several gunicorn gevent workers on Redis, with the standalone emulator: one system.

60 subscribers spread over 3 workers each get every event of a prediction
exactly once; one process follows it upstream; killing that process (SIGKILL)
or restarting Redis mid-prediction loses and repeats nothing.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from testbed import EmulatorServer, RedisServer, RelayServer, wait_until
from testbed.sse import Event, iter_events

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorServer]:
    made = EmulatorServer(tmp_path / "emulator").start()
    yield made
    made.stop()


class Subscriber(threading.Thread):
    """Follows one stream to `done`, reconnecting with Last-Event-ID whenever it drops."""

    def __init__(self, base_url: str, stream_url: str) -> None:
        super().__init__(daemon=True)
        self.base_url, self.stream_url = base_url, stream_url
        self.events: list[Event] = []
        self.reconnects = 0
        self.first = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.base_url, timeout=30) as client:
                for _ in range(100):
                    last = self.events[-1].id if self.events else None
                    try:
                        for event in iter_events(client, self.stream_url, last_event_id=last):
                            self.events.append(event)
                            self.first.set()
                            if event.kind == "done":
                                return
                    except httpx.HTTPError:
                        pass
                    self.reconnects += 1
        except BaseException as error:  # reported by the test
            self.error = error


def run_subscribers(server: RelayServer, stream_url: str, count: int) -> list[Subscriber]:
    subscribers = [Subscriber(server.url, stream_url) for _ in range(count)]
    for subscriber in subscribers:
        subscriber.start()
    for subscriber in subscribers:
        assert subscriber.first.wait(30), "a subscriber got no first event"
    return subscribers


def finish(subscribers: list[Subscriber]) -> None:
    for subscriber in subscribers:
        subscriber.join(120)
        assert subscriber.error is None, subscriber.error
        assert not subscriber.is_alive()


def stream_ids(redis_url: str, prediction_id: str) -> list[str]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    return [entry_id for entry_id, _ in client.xrange(f"relay:{{{prediction_id}}}:events")]


def assert_exactly_once(subscribers: list[Subscriber], all_ids: list[str]) -> None:
    for subscriber in subscribers:
        ids = [e.id for e in subscriber.events]
        assert len(ids) == len(set(ids)), "an event was delivered twice"
        assert subscriber.events[-1].kind == "done"
        start = all_ids.index(ids[0])
        assert ids == all_ids[start:], "an event was lost"


def cluster(start_server: Any, redis_url: str, emulator: EmulatorServer, workers: int) -> RelayServer:
    server: RelayServer = start_server({"REDIS_URL": redis_url, "REPLICATE_BASE_URL": emulator.url,
                                        "RELAY_POLL_INTERVAL": "0.2", "RELAY_UPSTREAM_BUDGET": "100000",
                                        # 60 subscribers from one address: the cap now counts across workers
                                        "RELAY_MAX_STREAMS_PER_CLIENT": "1000"},
                                       workers=workers)
    return server


def create(server: RelayServer, **input: Any) -> dict[str, Any]:
    answer = httpx.post(server.url + "/api/predictions", json={"model": "relay/image-demo", "input": input}, timeout=10)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def test_sixty_subscribers_on_three_workers_get_every_event_once(
        start_server: Any, redis_url: str, emulator: EmulatorServer) -> None:
    single = cluster(start_server, redis_url, emulator, workers=1)
    one = create(single, prompt="alone", steps=15, step_delay=0.1, boot_delay=0.2)
    finish(run_subscribers(single, one["stream_url"], 1))
    single.stop()

    server = cluster(start_server, redis_url, emulator, workers=3)
    created = create(server, prompt="together", steps=15, step_delay=0.1, boot_delay=0.2)
    subscribers = run_subscribers(server, created["stream_url"], 60)
    finish(subscribers)
    assert_exactly_once(subscribers, stream_ids(redis_url, created["id"]))
    many, alone = emulator.gets(created["id"]), emulator.gets(one["id"])
    assert many <= 1.1 * alone + 1, (many, alone)


def lease_holder(redis_url: str, prediction_id: str) -> int:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    owner = wait_until(lambda: client.get(f"relay:{{{prediction_id}}}:lease:watch"), timeout=10)
    return int(str(owner).split("-")[0])


def test_killing_the_worker_that_follows_upstream_loses_and_repeats_nothing(
        start_server: Any, redis_url: str, emulator: EmulatorServer) -> None:
    server = cluster(start_server, redis_url, emulator, workers=3)
    created = create(server, prompt="survive", steps=60, step_delay=0.15, boot_delay=0.2)
    subscribers = run_subscribers(server, created["stream_url"], 30)
    victim = lease_holder(redis_url, created["id"])
    before = {id(s): len(s.events) for s in subscribers}
    os.kill(victim, signal.SIGKILL)
    finish(subscribers)
    assert_exactly_once(subscribers, stream_ids(redis_url, created["id"]))
    assert all(s.events[-1].data["status"] == "succeeded" for s in subscribers)
    for subscriber in subscribers:
        percents = [e.data["progress"]["percent"] for e in subscriber.events
                    if e.kind == "message" and e.data.get("progress")]
        assert percents == sorted(percents), "progress went backwards"
    # The kill happened mid-prediction: every subscriber got events after it, and some had to reconnect.
    assert all(len(s.events) > before[id(s)] for s in subscribers)
    assert any(s.reconnects for s in subscribers)


def test_redis_restarted_mid_prediction_every_subscriber_still_finishes(
        start_server: Any, emulator: EmulatorServer, own_redis: RedisServer) -> None:
    server = cluster(start_server, own_redis.url, emulator, workers=2)
    created = create(server, prompt="outage", steps=40, step_delay=0.1, boot_delay=0.2)
    subscribers = run_subscribers(server, created["stream_url"], 10)
    own_redis.stop()
    down = httpx.get(server.url + "/healthz")
    assert down.status_code == 503 and down.json()["hub"] == {"kind": "redis", "ok": False}
    own_redis.start()
    finish(subscribers)
    for subscriber in subscribers:
        ids = [e.id for e in subscriber.events]
        assert len(ids) == len(set(ids))
        assert subscriber.events[-1].kind == "done"
        final = [e for e in subscriber.events if e.kind == "message"][-1]
        assert final.data["status"] == "succeeded"
    health = httpx.get(server.url + "/healthz").json()
    assert health["hub"]["kind"] == "redis"
