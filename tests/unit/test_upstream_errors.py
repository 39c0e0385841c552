"""How relay/upstream.py maps Replicate's answers and transport failures to Relay's errors.

The real `replicate` client runs; only its HTTP transport is replaced (`httpx.MockTransport`,
through Upstream's `transport=` seam), so each answer is exactly the one under test.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from relay.errors import NotFound, UpstreamError, UpstreamThrottled, UpstreamUnavailable
from relay.upstream import Target, Upstream

Handler = Callable[[httpx.Request], httpx.Response]


def upstream(handler: Handler, calls: list[httpx.Request] | None = None,
             observed: list[tuple[str, str]] | None = None) -> Upstream:
    def record(request: httpx.Request) -> httpx.Response:
        if calls is not None:
            calls.append(request)
        return handler(request)

    made = Upstream("r8_test", "http://replicate.test", transport=httpx.MockTransport(record))
    if observed is not None:
        made.observe(lambda endpoint, outcome: observed.append((endpoint, outcome)))
    return made


def problem(status: int, detail: str, **headers: str) -> Handler:
    return lambda request: httpx.Response(status, json={"title": "Problem", "detail": detail, "status": status},
                                          headers=headers)


def test_a_throttled_answer_is_retryable_after_the_time_replicate_names_and_is_sent_once() -> None:
    calls: list[httpx.Request] = []
    client = upstream(problem(429, "Request was throttled. Expected available in 7 seconds."), calls)
    with pytest.raises(UpstreamThrottled) as raised:
        client.get("abc")
    assert raised.value.retry_after == 7.0
    assert len(calls) == 1  # the client's own retries are off: the watcher owns them


def test_a_throttled_answer_without_a_time_waits_at_least_a_second() -> None:
    with pytest.raises(UpstreamThrottled) as raised:
        upstream(problem(429, "slow down")).get("abc")
    assert raised.value.retry_after is not None and raised.value.retry_after >= 1.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_unavailable_and_retryable(status: int) -> None:
    with pytest.raises(UpstreamUnavailable) as raised:
        upstream(problem(status, "boom")).get("abc")
    assert not isinstance(raised.value, UpstreamThrottled)
    assert str(status) in str(raised.value) and raised.value.retry_after


def test_an_unknown_prediction_is_not_found() -> None:
    with pytest.raises(NotFound):
        upstream(problem(404, "Not found.")).get("abc")


def test_an_id_that_cannot_be_a_prediction_is_not_found_without_asking() -> None:
    calls: list[httpx.Request] = []
    with pytest.raises(NotFound):
        upstream(problem(200, ""), calls).get("../etc")
    assert calls == []


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_say_so_without_replicates_words(status: int) -> None:
    with pytest.raises(UpstreamError) as raised:
        upstream(problem(status, "Invalid token r8_secret")).get("abc")
    assert "credentials" in str(raised.value) and "r8_secret" not in str(raised.value)


def test_input_problems_pass_through_as_one_sentence_with_their_status() -> None:
    detail = "- input.steps: must be at most 50\n- input.prompt: is required"
    with pytest.raises(UpstreamError) as raised:
        upstream(problem(422, detail)).create(Target(model="owner/name"), {"steps": 99})
    assert str(raised.value) == "input.steps: must be at most 50; input.prompt: is required."
    assert raised.value.status == 422


def test_other_refusals_keep_replicates_detail() -> None:
    with pytest.raises(UpstreamError) as raised:
        upstream(problem(418, "I am a teapot")).get("abc")
    assert str(raised.value) == "I am a teapot"


def test_a_timeout_and_a_refused_connection_are_unavailable() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(UpstreamUnavailable, match="in time"):
        upstream(timeout).get("abc")
    with pytest.raises(UpstreamUnavailable, match="reached"):
        upstream(refused).cancel("abc")


@pytest.mark.parametrize("body", [b"<html>oops</html>", b"[1, 2]"])
def test_an_answer_that_is_not_a_json_object_is_unavailable(body: bytes) -> None:
    with pytest.raises(UpstreamUnavailable):
        upstream(lambda request: httpx.Response(200, content=body)).get("abc")


def test_every_call_is_counted_by_endpoint_and_outcome() -> None:
    observed: list[tuple[str, str]] = []
    answers = iter([httpx.Response(200, json={"id": "abc", "status": "starting"}),
                    httpx.Response(429, json={"detail": "slow"}), httpx.Response(404, json={"detail": "no"})])
    client = upstream(lambda request: next(answers), observed=observed)
    client.get("abc")
    with pytest.raises(UpstreamThrottled):
        client.cancel("abc")
    with pytest.raises(NotFound):
        client.get("abc")
    assert observed == [("get", "ok"), ("cancel", "throttled"), ("get", "not_found")]
