"""Replicate (or the emulator) through the real `replicate` client, errors mapped to ours.

Failures become two kinds the rest of Relay acts on:
- `UpstreamError` (errors.py): Replicate refused the request; retrying won't help.
- `UpstreamUnavailable` (errors.py): throttled, failing or unreachable; retry later.
and `NotFound` for a prediction Replicate does not know.

The client's own RetryTransport would retry throttled GETs up to ten times
inside one call, silently; Relay's watcher owns retries instead, so it can tell
subscribers the upstream is degraded while it waits, and (with Redis) back off
together with other processes. So each call here is one HTTP attempt.

The HTTP transport can be given (`transport=`, handed to the client, which still
wraps it in its RetryTransport): tests reach the emulator in-process through
`httpx.WSGITransport`, with no socket and no server.
"""

from __future__ import annotations

import email.utils
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from replicate.client import Client, RetryTransport
from replicate.exceptions import ReplicateError

from .errors import NotFound, UpstreamError, UpstreamThrottled, UpstreamUnavailable

__all__ = ["EMULATOR_TOKEN", "Target", "Upstream", "throttle_wait"]

log = logging.getLogger(__name__)

# The emulator accepts any bearer token; this placeholder is not a secret.
EMULATOR_TOKEN = "relay-emulator"  # noqa: S105
_PREDICTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
# Replicate's 429 wording, old ("Expected available in 5 seconds") and new ("resets in ~30s").
_WAIT_IN_TEXT = re.compile(r"(?:available|resets) in ~?(\d+(?:\.\d+)?) ?s", re.IGNORECASE)
_DEFAULT_THROTTLE_WAIT = 2.0
# Replicate statuses whose detail a person can act on; others are our problem, not theirs.
_PASS_THROUGH = frozenset({400, 404, 409, 413, 422})


@dataclass(frozen=True, slots=True)
class Target:
    """What to run: a model by name (`owner/name`) or a version id (optionally with its model)."""

    model: str | None = None
    version: str | None = None


class Upstream:
    """One `Client` per app, built once the base URL is known."""

    def __init__(self, api_token: str | None, base_url: str | None, *,
                 timeout: float = 10.0, connect_timeout: float = 5.0,
                 observe: Callable[[str, str], None] | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._observe = observe
        self._transport = transport
        self._token = api_token or EMULATOR_TOKEN
        self._base_url = base_url
        self._unix_socket: str | None = None
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._client: Client | None = None
        # Headers sent with every create (Cancel-After from RELAY_DEADLINE): the client's
        # create() takes none, so an httpx request hook adds them (see `client`).
        self.create_headers: dict[str, str] = {}
        self._lock = threading.Lock()

    def observe(self, observer: Callable[[str, str], None]) -> None:
        """Call `observer(endpoint, outcome)` after every request (for metrics)."""
        self._observe = observer

    @property
    def base_url(self) -> str | None:
        return self._base_url

    def discover_base_url(self, base_url: str, *, unix_socket: str | None = None) -> None:
        """Set the base URL if none was configured (the embedded emulator's own address),
        reached over `unix_socket` when the server listens on one."""
        with self._lock:
            if self._base_url is None:
                self._unix_socket = unix_socket
                self._base_url = base_url

    @property
    def client(self) -> Client:
        with self._lock:
            if self._client is None:
                if self._base_url is None:
                    raise UpstreamUnavailable("The prediction service is not reachable yet.")
                extra: dict[str, Any] = {}
                if self._transport is not None:
                    extra["transport"] = self._transport
                elif self._unix_socket is not None:
                    extra["transport"] = httpx.HTTPTransport(uds=self._unix_socket)
                client = Client(self._token, base_url=self._base_url, timeout=self._timeout,
                                event_hooks={"response": [_throttled]}, **extra)
                retry = client._client._transport  # private: see the module docstring
                if isinstance(retry, RetryTransport):
                    retry.max_attempts = 1
                client._client.event_hooks["request"].append(self._add_create_headers)
                self._client = client
            return self._client

    def _add_create_headers(self, request: httpx.Request) -> None:
        if request.method == "POST" and request.url.path.endswith("/predictions"):
            request.headers.update(self.create_headers)

    @contextmanager
    def _observed(self, endpoint: str) -> Iterator[None]:
        """Count each call by endpoint and outcome (ok, throttled, unavailable, ...)."""
        try:
            yield
        except Exception as error:
            if self._observe is not None:
                self._observe(endpoint, _outcome(error))
            raise
        if self._observe is not None:
            self._observe(endpoint, "ok")

    def close(self) -> None:
        """Close pooled connections (at shutdown: idle keep-alives would hold the worker open)."""
        with self._lock:
            if self._client is not None:
                self._client._client.close()  # private: see http_client()
                self._client = None

    def http_client(self) -> httpx.Client:
        """The client's own httpx client (auth, base URL, timeouts), for reading output streams."""
        return self.client._client  # private: the replicate client has no public accessor

    # -- calls ----------------------------------------------------------------
    def create(self, target: Target, input: Mapping[str, Any], *, webhook: str | None = None,
               webhook_events_filter: list[str] | None = None) -> dict[str, Any]:
        """Start a prediction; the prediction as Replicate returned it (raw JSON).

        The body is the one the client's own `predictions.create` sends; the answer
        is read as JSON rather than through the client's `Prediction` model, which
        refuses an answer that lacks `model` or `version` after the prediction was made.
        """
        body: dict[str, Any] = {"input": dict(input)}
        if webhook:
            body["webhook"] = webhook
            body["webhook_events_filter"] = webhook_events_filter
        if target.version is not None:
            body["version"] = f"{target.model}:{target.version}" if target.model else target.version
            path = "/v1/predictions"
        else:
            assert target.model is not None
            path = f"/v1/models/{target.model}/predictions"
        return self._json("POST", path, body, endpoint="create")

    def get(self, prediction_id: str) -> dict[str, Any]:
        """The prediction's current state, as raw JSON (the client cannot parse `aborted`)."""
        return self._json("GET", f"/v1/predictions/{_checked_id(prediction_id)}")

    def cancel(self, prediction_id: str) -> dict[str, Any]:
        """Ask Replicate to cancel; the prediction as it answered."""
        return self._json("POST", f"/v1/predictions/{_checked_id(prediction_id)}/cancel")

    def webhook_secret(self) -> str:
        """The account's default webhook signing secret."""
        data = self._json("GET", "/v1/webhooks/default/secret")
        key = data.get("key")
        if not isinstance(key, str) or not key:
            raise UpstreamError("Replicate answered the webhook secret request without a key.")
        return key

    def _json(self, method: str, path: str, body: Mapping[str, Any] | None = None,
              endpoint: str | None = None) -> dict[str, Any]:
        endpoint = endpoint or ("cancel" if path.endswith("/cancel") else "secret" if "webhooks" in path else "get")
        with self._observed(endpoint), _mapped_errors(path):
            # private: raw JSON, see get() and create()
            response = self.client._request(method, path, **({"json": body} if body is not None else {}))
            try:
                data = response.json()
            except ValueError:
                raise UpstreamUnavailable("Replicate answered with something that is not JSON.") from None
        if not isinstance(data, dict):
            raise UpstreamUnavailable("Replicate answered with an unexpected JSON shape.")
        return data


def _outcome(error: BaseException) -> str:
    if isinstance(error, UpstreamThrottled):
        return "throttled"
    if isinstance(error, UpstreamUnavailable):
        return "unavailable"
    if isinstance(error, NotFound):
        return "not_found"
    return "refused"


def _checked_id(prediction_id: str) -> str:
    if not _PREDICTION_ID.match(prediction_id):
        raise NotFound("There is no prediction with that id.")
    return prediction_id


@contextmanager
def _mapped_errors(what: str) -> Iterator[None]:
    """Turn the client's and httpx's exceptions into Relay's."""
    try:
        yield
    except ReplicateError as error:
        raise _from_replicate_error(error) from None
    except httpx.TimeoutException:
        log.debug("upstream %s timed out", what)
        raise UpstreamUnavailable("Replicate did not answer in time.", retry_after=2) from None
    except httpx.HTTPError as error:
        log.debug("upstream %s failed: %s", what, type(error).__name__)
        raise UpstreamUnavailable("Replicate could not be reached.", retry_after=2) from None


def _sentence(detail: str) -> str:
    """Replicate lists input problems as "- input.x: ..." lines; make them one readable sentence."""
    items = [line.strip().removeprefix("- ").strip() for line in detail.splitlines() if line.strip()]
    text = "; ".join(items)
    return text if not text or text.endswith((".", "!", "?")) else text + "."


def throttle_wait(headers: Mapping[str, str], body: object, now: float | None = None) -> float:
    """How long a 429 asks us to wait: Retry-After (seconds or an HTTP date), then the body's
    `retry_after`, then the wait named in its `detail` text, else a short default."""
    header = (headers.get("retry-after") or "").strip()
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(header)
            except (TypeError, ValueError, IndexError):
                when = None
            if when is not None and when.tzinfo is not None:
                return max(0.0, when.timestamp() - (time.time() if now is None else now))
    if isinstance(body, dict):
        field = body.get("retry_after")
        if isinstance(field, (int, float)) and not isinstance(field, bool) and 0 <= field < 86400:
            return float(field)
        detail = body.get("detail")
        match = _WAIT_IN_TEXT.search(detail) if isinstance(detail, str) else None
        if match:
            return float(match.group(1))
    return _DEFAULT_THROTTLE_WAIT


def _throttled(response: httpx.Response) -> None:
    """httpx response hook: a 429 becomes UpstreamThrottled with the wait it names.

    The client's ReplicateError keeps only the body, and Replicate puts the wait
    in the Retry-After header first, so the 429 is read here, where headers are seen.
    """
    if response.status_code != 429:
        return
    response.read()
    try:
        body: object = response.json()
    except ValueError:
        body = None
    wait = throttle_wait(response.headers, body)
    raise UpstreamThrottled("Replicate is throttling requests; try again shortly.",
                            retry_after=max(1.0, min(wait, 3600.0)))


def _from_replicate_error(error: ReplicateError) -> Exception:
    status = error.status or 502
    detail = (error.detail or error.title or "").strip()
    if status == 429:  # only when the response hook did not see it first
        wait = throttle_wait({}, {"detail": detail})
        return UpstreamThrottled("Replicate is throttling requests; try again shortly.",
                                 retry_after=max(1.0, wait))
    if status >= 500:
        return UpstreamUnavailable(f"Replicate is failing right now (HTTP {status}).", retry_after=2)
    if status == 404:
        return NotFound("There is no prediction with that id.")
    if status in (401, 403):
        log.error("Replicate refused Relay's credentials (HTTP %s)", status)
        return UpstreamError("Relay's Replicate credentials were refused; tell the site's owner.")
    if status in _PASS_THROUGH:
        return UpstreamError(_sentence(detail) or f"Replicate refused the request (HTTP {status}).", status=status)
    return UpstreamError(detail or f"Replicate refused the request (HTTP {status}).")
