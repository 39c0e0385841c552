"""Every guard Store keeps the same contract: the in-process one and the database one (SQLite here).

The same sequence of operations runs against MemoryStore and SqlStore; the SQLite store is also
hit from several threads with their own engines (as separate workers would be) to show `take`
never overshoots.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from relay.guard.sql_store import SqlStore
from relay.guard.store import MemoryStore, Store
from relay.records import engine_for, migrate
from testbed import wait_until


def sql_store(instance: Path) -> SqlStore:
    engine = engine_for(None, instance)
    migrate(engine)
    return SqlStore(engine)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    made = sql_store(tmp_path)
    yield made
    made.engine.dispose()


def test_take_is_all_or_none_and_says_which_cap_refused(store: Store) -> None:
    assert store.take([("a", 2, 60), ("b", 1, 60)]) == -1
    assert store.take([("a", 2, 60), ("b", 1, 60)]) == 1  # b is full: a is not counted either
    assert store.count("a") == 1 and store.count("b") == 1
    assert store.take([("a", 2, 60)]) == -1
    assert store.take([("a", 2, 60)]) == 0
    store.give_back(["a", "b", "never-taken"])
    assert store.count("a") == 1 and store.count("b") == 0 and store.count("never-taken") == 0
    store.add("seconds", 2.5, 60)
    store.add("seconds", 1.0, 60)
    assert store.count("seconds") == 3.5


def test_values_expire_claims_are_exclusive_and_deletes_can_be_conditional(store: Store) -> None:
    assert store.claim("k", "mine", 60) and not store.claim("k", "theirs", 60)
    assert store.get("k") == "mine"
    assert not store.delete("k", only_if="theirs") and store.delete("k", only_if="mine")
    assert store.get("k") is None and not store.delete("k")
    store.put("short", "v", 0.2)
    assert store.take([("window", 1, 0.2)]) == -1 and store.take([("window", 1, 0.2)]) == 0
    # The expiry is what is tested: poll for it, with a deadline far above the 0.2 s it takes.
    wait_until(lambda: store.get("short") is None, timeout=5, what="the value to expire")
    assert store.claim("short", "again", 60)
    wait_until(lambda: store.take([("window", 1, 0.2)]) == -1, timeout=5, what="a new window")


def test_tables_and_the_queue_keep_order_and_caps(store: Store) -> None:
    store.table_set("t", "f", "1")
    store.table_set("t", "f", "2")
    assert store.table_get("t", "f") == "2" and store.table_all("t") == {"f": "2"}
    assert store.table_pop("t", "f") and not store.table_pop("t", "f")
    assert store.reserve("run", "r1", "x", 2, "q") and store.reserve("run", "r2", "x", 2, "q")
    assert not store.reserve("run", "r3", "x", 2, "q")  # at the cap
    assert [store.enqueue("q", item) for item in ("one", "two", "three")] == [1, 2, 3]
    assert store.queued("q") == ["one", "two", "three"]
    assert store.admit("q", "run", 2, "v") is None  # still full
    store.table_pop("run", "r1")
    assert not store.reserve("run", "r4", "x", 3, "q")  # somebody queues: no jumping the line
    assert store.admit("q", "run", 2, "v") == "one"
    assert store.table_get("run", "p:one") == "v"
    store.requeue("q", "one")
    assert store.queued("q") == ["one", "two", "three"]
    assert store.unqueue("q", "two") and not store.unqueue("q", "two")
    assert store.queued("q") == ["one", "three"]


def test_sqlite_take_never_overshoots_across_engines(tmp_path: Path) -> None:
    stores = [sql_store(tmp_path) for _ in range(4)]  # four "workers", each with its own connections
    taken: list[int] = []
    barrier = threading.Barrier(len(stores) * 3)

    def worker(each: SqlStore) -> None:
        barrier.wait()
        for _ in range(5):
            taken.append(each.take([("budget", 7, 3600)]))

    threads = [threading.Thread(target=worker, args=(s,)) for s in stores for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert taken.count(-1) == 7 and taken.count(0) == 60 - 7
    assert stores[0].count("budget") == 7
