"""Leases in relay/coordination.py on a real Redis: one holder at a time, renewal keeps it,
a holder that stops renewing (a dead process) loses it to another within a lease time,
and nobody can release a lease it does not hold."""

from __future__ import annotations

import secrets
import time

import pytest
import redis

from relay.coordination import RedisCoordination
from testbed import wait_until

LEASE = 0.3  # seconds


@pytest.fixture
def pair(redis_url: str) -> tuple[RedisCoordination, RedisCoordination, str]:
    """Two processes' coordination on one Redis, and a prediction id of this test's own."""
    first = RedisCoordination(redis.Redis.from_url(redis_url), lease_seconds=LEASE)
    second = RedisCoordination(redis.Redis.from_url(redis_url), lease_seconds=LEASE)
    return first, second, "lease-" + secrets.token_hex(6)


def test_one_holder_at_a_time_and_renewing_keeps_the_lease(
        pair: tuple[RedisCoordination, RedisCoordination, str]) -> None:
    first, second, pid = pair
    assert first.hold("watch", pid)
    assert not second.hold("watch", pid)
    deadline = time.monotonic() + 3 * LEASE
    while time.monotonic() < deadline:  # renewing for longer than a lease: never lost
        assert first.hold("watch", pid)
        assert not second.hold("watch", pid)
        time.sleep(LEASE / 4)


def test_a_holder_that_stops_renewing_is_taken_over_within_a_lease(
        pair: tuple[RedisCoordination, RedisCoordination, str]) -> None:
    first, second, pid = pair
    assert first.hold("watch", pid)
    stopped = time.monotonic()  # the first process dies here: no more renewals
    wait_until(lambda: second.hold("watch", pid), timeout=5 * LEASE, interval=0.02, what="the takeover")
    waited = time.monotonic() - stopped
    assert waited >= LEASE * 0.8, "taken over before the lease ran out"
    assert not first.hold("watch", pid), "the old holder came back and took it again"


def test_only_the_holder_can_release_and_then_another_may_take_it(
        pair: tuple[RedisCoordination, RedisCoordination, str]) -> None:
    first, second, pid = pair
    assert first.hold("watch", pid)
    second.release("watch", pid)  # not its lease: nothing happens
    assert not second.hold("watch", pid)
    first.release("watch", pid)
    assert second.hold("watch", pid)


def test_leases_of_different_names_and_predictions_are_apart(
        pair: tuple[RedisCoordination, RedisCoordination, str]) -> None:
    first, second, pid = pair
    assert first.hold("watch", pid)
    assert second.hold("stream", pid)
    assert second.hold("watch", pid + "-other")
