"""PollPolicy (relay/watcher.py): polls slow down while nothing changes, failures back off
exponentially to a cap, an upstream's Retry-After hint is honoured, and jitter stays in its band."""

from __future__ import annotations

import pytest

from relay.watcher import PollPolicy


def steady(**kwargs: float) -> PollPolicy:
    return PollPolicy(jitter=0.0, **kwargs)


def test_polls_at_the_base_interval_while_things_change() -> None:
    policy = steady(base=1.0)
    assert policy.next_poll(0, watched=True) == 1.0
    assert policy.next_poll(1, watched=True) == 1.0


def test_polls_slow_down_by_half_again_per_unchanged_poll_up_to_the_slowest_factor() -> None:
    policy = steady(base=1.0, slowest_factor=5.0)
    delays = [policy.next_poll(n, watched=True) for n in range(1, 9)]
    assert delays[:4] == pytest.approx([1.0, 1.5, 2.25, 3.375])
    assert delays == sorted(delays)
    assert max(delays) == 5.0 and delays[-1] == 5.0


def test_an_unwatched_prediction_is_polled_at_the_slowest_rate() -> None:
    policy = steady(base=0.5, slowest_factor=4.0)
    assert policy.next_poll(0, watched=False) == 2.0


def test_failures_back_off_exponentially_to_the_cap() -> None:
    policy = steady(base=1.0, backoff_cap=15.0)
    delays = [policy.retry_after_failure(n, None) for n in range(1, 7)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 15.0, 15.0]


def test_a_longer_retry_after_hint_wins_and_a_shorter_one_does_not() -> None:
    policy = steady(base=1.0)
    assert policy.retry_after_failure(1, 7.0) == 7.0
    assert policy.retry_after_failure(3, 1.0) == 4.0


def test_jitter_spreads_delays_within_its_band() -> None:
    policy = PollPolicy(base=1.0, jitter=0.1)
    delays = [policy.next_poll(0, watched=True) for _ in range(500)]
    assert all(0.9 <= d <= 1.1 for d in delays)
    assert len({round(d, 6) for d in delays}) > 100  # spread, not one value
