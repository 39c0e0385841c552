"""The spend guard across gunicorn workers sharing Redis (docs/spend-guard.md), against the standalone emulator.

- RELAY_BUDGET=5/hour: 12 simultaneous creates over 3 workers, exactly 5 reach the emulator;
- Idempotency-Key: simultaneous repeats on several workers create once;
- RELAY_MAX_RUNNING=2: never more than 2 unfinished upstream, queued ones stream `queued`
  with positions and start in order, a queued one cancels without reaching the emulator;
- RELAY_ORPHAN_TIMEOUT=3: an unwatched prediction is canceled, a watched one and one
  whose stream was never opened are not.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis

from testbed import EmulatorServer, RelayServer, wait_until
from testbed.sse import Event, iter_events

pytestmark = pytest.mark.timeout(240)

_DBS = itertools.count(1)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    made = EmulatorServer(tmp_path_factory.mktemp("emulator")).start(timeout=60)  # a busy machine starts Python slowly
    yield made
    made.stop()


@pytest.fixture
def cluster(start_server: Any, redis_url: str, emulator: EmulatorServer) -> Any:
    """Start Relay on 3 workers with its own (flushed) Redis database."""
    def start(workers: int = 3, **env: str) -> RelayServer:
        url = redis_url.rsplit("/", 1)[0] + f"/{next(_DBS) % 16}"
        redis.Redis.from_url(url).flushdb()
        server: RelayServer = start_server({"REDIS_URL": url, "REPLICATE_BASE_URL": emulator.url, **env},
                                           workers=workers, start_timeout=120)  # slow boots on a busy machine
        return server
    return start


def post(server: RelayServer, headers: dict[str, str] | None = None, **input: Any) -> httpx.Response:
    body = {"model": "relay/image-demo", "input": {"prompt": "a lighthouse", **input}}
    return httpx.post(server.url + "/api/predictions", json=body, headers=headers or {}, timeout=30)


def test_budget_of_five_holds_exactly_under_twelve_simultaneous_creates(
        cluster: Any, emulator: EmulatorServer) -> None:
    server = cluster(RELAY_BUDGET="5/hour")
    before = emulator.creates()
    barrier = threading.Barrier(12)

    def one(_: int) -> httpx.Response:
        barrier.wait()
        return post(server)

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(one, range(12)))
    created = [a for a in answers if a.status_code == 201]
    refused = [a for a in answers if a.status_code != 201]
    assert len(created) == 5 and len(refused) == 7
    assert {(a.status_code, a.json()["code"]) for a in refused} == {(429, "budget_exhausted")}
    assert all(1 <= int(a.headers["Retry-After"]) <= 3600 for a in refused)
    assert emulator.creates() - before == 5
    assert httpx.get(server.url + "/healthz").json()["guard"]["creations"]["remaining"] == 0
    assert 'relay_budget_remaining{kind="creations"} 0.0' in httpx.get(server.url + "/metrics").text


def test_simultaneous_repeats_of_one_key_create_once(cluster: Any, emulator: EmulatorServer) -> None:
    server = cluster(RELAY_BUDGET="2/hour")
    with httpx.Client(base_url=server.url) as first_client:
        first_client.get("/")  # a page: one visitor (its cookie) for every repeat
        cookies = dict(first_client.cookies)
    before = emulator.creates()
    barrier = threading.Barrier(8)

    def one(_: int) -> httpx.Response:
        barrier.wait()
        body = {"model": "relay/image-demo", "input": {"prompt": "once"}}
        return httpx.post(server.url + "/api/predictions", json=body, cookies=cookies,
                          headers={"Idempotency-Key": "same-key"}, timeout=30)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(8)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    assert emulator.creates() - before == 1
    # The repeats counted against no budget: one of the two creations is left.
    assert post(server).status_code == 201
    assert post(server).json()["code"] == "budget_exhausted"


class Watch(threading.Thread):
    """Follows one stream to `done`, keeping every event."""

    def __init__(self, server: RelayServer, stream_url: str) -> None:
        super().__init__(daemon=True)
        self.server, self.stream_url = server, stream_url
        self.events: list[Event] = []
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.server.url, timeout=60) as client:
                while not self.events or self.events[-1].kind != "done":
                    last = self.events[-1].id if self.events else None
                    for event in iter_events(client, self.stream_url, last_event_id=last, timeout=60):
                        self.events.append(event)
        except BaseException as error:
            self.error = error

    def snapshots(self) -> list[dict[str, Any]]:
        return [e.data for e in self.events if e.kind == "message"]


def test_max_running_two_queues_in_order_across_workers(cluster: Any, emulator: EmulatorServer) -> None:
    server = cluster(RELAY_MAX_RUNNING="2")
    before = emulator.creates()
    # The module's emulator still runs the earlier tests' predictions: only this test's count.
    earlier = {p["id"] for p in emulator.predictions()}
    most = [0]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.02):
            most[0] = max(most[0], emulator.unfinished(ignoring=earlier))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        running = [post(server, steps=300, step_delay=0.1).json() for _ in range(2)]
        queued = [post(server, steps=6, step_delay=0.1).json() for _ in range(4)]
        assert [a["status"] for a in running] == ["starting", "starting"]
        assert [a["status"] for a in queued] == ["queued"] * 4
        assert [a["queue"]["position"] for a in queued] == [1, 2, 3, 4]
        canceled = httpx.post(server.url + queued[1]["cancel_url"]).json()
        assert canceled["status"] == "canceled"
        watches = [Watch(server, a["stream_url"]) for a in queued]
        wait_until(lambda: all(w.snapshots() for w in watches), timeout=30)
        for answer in running:  # their ends free the slots
            assert httpx.post(server.url + answer["cancel_url"]).status_code == 200
        for watch in watches:
            watch.join(90)
            assert watch.error is None and watch.events[-1].kind == "done"
    finally:
        sampling.set()
        sampler.join(5)
    assert most[0] <= 2
    assert emulator.creates() - before == 5  # the canceled one never reached the emulator
    dropped = watches[1].snapshots()
    assert [s["status"] for s in dropped] == ["canceled"] and dropped[0]["id"] == queued[1]["id"]
    starts = []
    for answer, watch in zip([queued[0], queued[2], queued[3]], [watches[0], watches[2], watches[3]], strict=True):
        snaps = watch.snapshots()
        assert all(s["id"] == answer["id"] for s in snaps)
        assert snaps[-1]["status"] == "succeeded"
        waiting = [s for s in snaps if s["status"] == "queued"]
        positions = [s["queue"]["position"] for s in waiting]
        assert positions == sorted(positions, reverse=True) and all(p >= 1 for p in positions)
        starts.append(next(s["created_at"] for s in snaps if s["status"] != "queued"))
    assert starts == sorted(starts)  # created upstream in the order they were queued


def test_orphans_are_canceled_but_watched_and_never_opened_ones_are_not(
        cluster: Any, emulator: EmulatorServer) -> None:
    server = cluster(workers=2, RELAY_ORPHAN_TIMEOUT="3")
    long = {"steps": 300, "step_delay": 0.1}
    watched, left, never = (post(server, **long).json() for _ in range(3))
    watch = Watch(server, watched["stream_url"])
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for _event in iter_events(client, left["stream_url"], limit=1):
            pass  # opened, then left
    wait_until(lambda: emulator.prediction(left["id"])["status"] == "canceled", timeout=15)
    assert emulator.prediction(watched["id"])["status"] in ("starting", "processing")
    assert emulator.prediction(never["id"])["status"] in ("starting", "processing")
    assert watch.is_alive() and watch.error is None
    for answer in (watched, never):
        httpx.post(server.url + answer["cancel_url"])
    watch.join(30)
