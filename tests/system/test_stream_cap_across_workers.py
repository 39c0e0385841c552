"""With Redis, RELAY_MAX_STREAMS_PER_CLIENT holds across processes, and a dead one's slots free themselves."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import httpx
import pytest
import redis

from relay.errors import RateLimited
from relay.slots import RedisStreamSlots
from testbed import ROOT, RelayServer, wait_until


def _hold_stream(url: str, opened: threading.Event, stop: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        created = client.post("/api/predictions", json={"model": "relay/image-demo", "input": {
            "prompt": "hold", "steps": 200, "step_delay": 0.2}}).json()
        with client.stream("GET", created["stream_url"]) as answer:
            assert answer.status_code == 200
            opened.set()
            for _ in answer.iter_bytes():
                if stop.is_set():
                    return


def test_the_cap_counts_streams_on_every_server(
        redis_url: str, start_server: Callable[..., RelayServer]) -> None:
    env = {"REDIS_URL": redis_url, "RELAY_MAX_STREAMS_PER_CLIENT": "3"}
    first, second = start_server(env), start_server(env)
    stop = threading.Event()
    holders = []
    try:
        for server in (first, first, second):
            opened = threading.Event()
            thread = threading.Thread(target=_hold_stream, args=(server.url, opened, stop), daemon=True)
            thread.start()
            holders.append(thread)
            assert opened.wait(15)
        with httpx.Client(base_url=second.url, timeout=10) as client:
            created = client.post("/api/predictions", json={"model": "relay/image-demo", "input": {
                "prompt": "one too many", "steps": 2}}).json()
            answer = client.get(created["stream_url"])
        assert answer.status_code == 429
        assert answer.json()["code"] == "too_many_streams"
    finally:
        stop.set()
        for thread in holders:
            thread.join(10)


_HOLDER = """
import sys, time, redis
from relay.slots import RedisStreamSlots
slots = RedisStreamSlots(redis.Redis.from_url(sys.argv[1]), per_client=2, ttl=1.0)
slots.acquire("203.0.113.9"); slots.acquire("203.0.113.9")
print("held", flush=True)
time.sleep(600)
"""


def test_a_dead_process_frees_its_slots_by_expiry(redis_url: str) -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, redis_url], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        slots = RedisStreamSlots(redis.Redis.from_url(redis_url), per_client=2, ttl=1.0)
        with pytest.raises(RateLimited):
            slots.acquire("203.0.113.9")
        assert slots.held("203.0.113.9") == 2
        # Alive, the holder keeps renewing: still full after longer than the ttl. (Proving that
        # nothing expires takes waiting: there is no event to wait on.)
        time.sleep(1.5)
        assert slots.held("203.0.113.9") == 2
        holder.send_signal(signal.SIGKILL)
        holder.wait(5)
        slot = wait_until(lambda: _try(slots), timeout=5)
        slot.release()
        assert slots.held("203.0.113.9") == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(5)
        if holder.stdout is not None:
            holder.stdout.close()


def _try(slots: RedisStreamSlots):  # type: ignore[no-untyped-def]
    try:
        return slots.acquire("203.0.113.9")
    except RateLimited:
        return None
