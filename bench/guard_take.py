"""What the spend guard's atomic check costs per create: `Store.take` over a budget and a
visitor's quota, in memory, on Redis and in the run records' SQLite database (the store
without Redis), beside a bare Redis INCR (the baseline: one round trip).

    python -m bench.guard_take [--n 2000]

Prints p50/p99 in milliseconds and writes bench/results/guard-take.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import redis

from bench.common.output import latency_summary, machine, write_json
from relay.guard.redis_store import RedisStore
from relay.guard.sql_store import SqlStore
from relay.guard.store import MemoryStore, Store
from relay.records import engine_for, migrate
from testbed import RedisServer


def timed(call: object, n: int) -> dict[str, float]:
    assert callable(call)
    seconds = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return latency_summary(seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    n = parser.parse_args().n
    server = RedisServer(Path(tempfile.mkdtemp(prefix="bench-redis-"))).start()
    try:
        client = redis.Redis.from_url(server.url)
        engine = engine_for(None, Path(tempfile.mkdtemp(prefix="bench-sqlite-")))
        migrate(engine)
        stores: dict[str, Store] = {"memory": MemoryStore(), "redis": RedisStore(client),
                                    "sqlite": SqlStore(engine)}
        limits = [("budget:0", 1e12, 3600), ("quota:0:v:someone", 1e12, 3600)]
        results = {"redis INCR (baseline)": timed(lambda: client.incr("bench:x"), n)}
        for name, store in stores.items():
            results[f"{name} take (budget + quota)"] = timed(lambda s=store: s.take(limits), n)
    finally:
        server.stop()
    for name, summary in results.items():
        print(f"{name:32s} p50 {summary['p50_ms']:.3f} ms  p99 {summary['p99_ms']:.3f} ms")
    print("wrote", write_json("guard-take.json", {"benchmark": "guard_take", "machine": machine(), "n": n,
                                                  "results": results}))


if __name__ == "__main__":
    main()
