"""Estimates from past runs (relay/estimates.py): medians, the per-status rules, no history."""

from __future__ import annotations

from relay.estimates import NO_ESTIMATE, Estimator, same_state

CREATED = "2026-01-01T00:00:00.000000Z"
T0 = 1767225600.0  # CREATED as epoch seconds


def estimator(rows: dict[tuple[str, str | None], list[tuple[float | None, float | None]]],
              now: float) -> Estimator:
    return Estimator(lambda model, version: rows.get((model, version), []), clock=lambda: now)


def test_without_history_the_times_are_null() -> None:
    shown = estimator({}, T0).estimate({"status": "starting", "created_at": CREATED}, "a/b", None)
    assert shown == NO_ESTIMATE == {"start_in": None, "finish_in": None, "based_on": 0}
    assert estimator({}, T0).estimate({"status": "starting"}, None, None) == NO_ESTIMATE


def test_starting_counts_down_from_the_median_boot_and_finish_includes_it() -> None:
    rows = {("a/b", None): [(10.0, 4.0), (30.0, 6.0), (20.0, 5.0)]}
    shown = estimator(rows, T0 + 5).estimate({"status": "starting", "created_at": CREATED}, "a/b", None)
    assert shown == {"start_in": 15.0, "finish_in": 20.0, "based_on": 3}
    late = estimator(rows, T0 + 40).estimate({"status": "starting", "created_at": CREATED}, "a/b", None)
    assert late["start_in"] == 0 and late["finish_in"] == 5.0


def test_processing_counts_down_the_run_time_and_the_end_is_zero() -> None:
    rows = {("a/b", None): [(1.0, 8.0)]}
    shown = estimator(rows, T0 + 3).estimate({"status": "processing", "started_at": CREATED}, "a/b", None)
    assert shown == {"start_in": 0.0, "finish_in": 5.0, "based_on": 1}
    done = estimator(rows, T0).estimate({"status": "succeeded"}, "a/b", None)
    assert done == {"start_in": 0.0, "finish_in": 0.0, "based_on": 1}


def test_a_version_with_enough_history_is_used_on_its_own() -> None:
    rows = {("a/b", "v1"): [(1.0, 1.0)] * 3, ("a/b", None): [(100.0, 100.0)] * 5,
            ("a/b", "v2"): [(1.0, 1.0)]}
    assert estimator(rows, T0).estimate({"status": "starting", "created_at": CREATED}, "a/b", "v1")["based_on"] == 3
    # Too little for v2 alone: the model's runs of every version count.
    assert estimator(rows, T0).estimate({"status": "starting", "created_at": CREATED}, "a/b", "v2")["based_on"] == 5


def test_a_repeat_of_the_held_state_is_recognised_whatever_its_estimate() -> None:
    held = {"id": "x", "status": "starting", "estimate": {"start_in": 3.0}}
    assert same_state({"id": "x", "status": "starting"}, held)
    assert not same_state({"id": "x", "status": "processing"}, held)
    assert not same_state({"id": "x", "status": "starting"}, None)
