"""The guard's Redis store against a real Redis, beside the in-process one: the same answers,
and `take` never overshoots with many clients at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis

from relay.guard.redis_store import RedisStore
from relay.guard.store import MemoryStore, Store


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    url = request.getfixturevalue("redis_url").rsplit("/", 1)[0] + "/15"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield RedisStore(client)
    client.flushdb()
    client.close()


def test_take_is_all_or_nothing_and_exact_under_contention(store: Store) -> None:
    assert store.take([("a", 1, 60), ("b", 3, 60)]) == -1
    assert store.take([("b", 3, 60), ("a", 1, 60)]) == 1
    assert store.count("b") == 1
    results: list[int] = []
    barrier = threading.Barrier(16)

    def one() -> None:
        barrier.wait()
        results.append(store.take([("c", 5, 60)]))

    threads = [threading.Thread(target=one) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(-1) == 5 and store.count("c") == 5
    store.give_back(["c"])
    assert store.count("c") == 4


def test_seconds_claims_and_tables(store: Store) -> None:
    store.add("s", 1.5, 60)
    store.add("s", 2.0, 60)
    assert store.count("s") == pytest.approx(3.5)
    assert store.claim("k", "one", 60) and not store.claim("k", "two", 60)
    assert not store.delete("k", only_if="two") and store.get("k") == "one"
    assert store.delete("k", only_if="one") and store.get("k") is None
    store.table_set("t", "x", "1")
    assert store.table_all("t") == {"x": "1"} and store.table_pop("t", "x") and not store.table_pop("t", "x")


def test_queue_reserve_and_admit_respect_the_cap_and_the_order(store: Store) -> None:
    assert store.reserve("run", "p:1", "0", 1, "q")
    assert not store.reserve("run", "p:2", "0", 1, "q")  # full
    assert [store.enqueue("q", item) for item in ("r1", "r2", "r3")] == [1, 2, 3]
    assert store.admit("q", "run", 1, "0") is None  # still full
    store.table_pop("run", "p:1")
    assert not store.reserve("run", "p:3", "0", 5, "q")  # others are waiting: no jumping the queue
    assert store.admit("q", "run", 1, "0") == "r1"
    assert store.unqueue("q", "r3") and not store.unqueue("q", "r3")
    store.requeue("q", "r1")
    assert store.queued("q") == ["r1", "r2"]
