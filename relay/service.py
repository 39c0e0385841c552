"""Relay's moving parts for one app, built once by `create_app` and kept in app.extensions."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

import redis
from flask import current_app

from .config import Settings
from .coordination import Coordination, LocalCoordination, RedisCoordination
from .errors import Forbidden, InvalidRequest, NotFound, RelayError, UpstreamError, UpstreamUnavailable
from .feed import Applied
from .guard import Guard, GuardedFeed, GuardedWatchers
from .hub import Hub, MemoryHub, Replay
from .inputs import prepare
from .memory import housekeep
from .metrics import Metrics
from .output_stream import OutputStreams
from .redis_hub import RedisHub
from .schemas import ModelSchemas
from .streams import StreamLimits, event_stream
from .tokens import TokenSigner
from .upstream import Upstream
from .validation import CreateRequest, parse_create_request
from .watcher import PollPolicy
from .webhooks import SeenIds, WebhookReceiver

__all__ = ["MAX_WATCH_PER_STREAM", "RelayService", "current_service"]

log = logging.getLogger(__name__)


class RunRecords(Protocol):
    """What the service asks of the run records (relay/runs.py, attached by create_app)."""

    def created(self, prediction: Mapping[str, Any], model: str | None, model_input: Any,
                visitor: str) -> None: ...

    def replay_final(self, prediction_id: str) -> bool: ...


MAX_WATCH_PER_STREAM = 32  # predictions one multiplexed stream may follow


class RelayService:
    """The hub, the watchers, the upstream client and the token signer of one app."""

    def __init__(self, settings: Settings, secret_key: str, upstream: Upstream,
                 redis_client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.upstream = upstream
        self.schemas = ModelSchemas(upstream, redis_client)
        self.metrics = Metrics()
        upstream.observe(lambda endpoint, outcome: self.metrics.upstream_requests.labels(endpoint, outcome).inc())
        coordination: Coordination
        hub_limits = {"history_size": settings.history_size, "history_bytes": settings.history_bytes,
                      "tail_bytes": settings.log_tail_bytes, "memory_bytes": settings.hub_max_bytes}
        if redis_client is not None:
            self.hub: Hub = RedisHub(redis_client, **hub_limits)
            coordination = RedisCoordination(redis_client, per_minute=settings.upstream_budget)
        else:
            self.hub = MemoryHub(**hub_limits)
            coordination = LocalCoordination(per_minute=settings.upstream_budget)
        self.hub.on_coalesce = lambda: self.metrics.slow_consumers.labels("coalesced").inc()
        webhooks_on = settings.public_url is not None
        self.output_streams = OutputStreams(self.hub, upstream.http_client,
                                            on_end=lambda pid: self.watchers.poke(pid), coordination=coordination)
        self.feed = GuardedFeed(self.hub, on_stream_url=self.output_streams.ensure,
                                on_finished=lambda _pid, status: self.metrics.predictions_finished.labels(status).inc())
        self.watchers = GuardedWatchers(self.hub, self.feed, upstream, PollPolicy(base=settings.poll_interval),
                                        idle_timeout=settings.watcher_idle_timeout,
                                        reconcile_interval=settings.webhook_reconcile if webhooks_on else None,
                                        coordination=coordination, metrics=self.metrics)
        self.webhooks = WebhookReceiver(settings.webhook_secret, upstream.webhook_secret, SeenIds(redis_client))
        self.signer = TokenSigner(secret_key, settings.token_max_age)
        self.limits = StreamLimits(heartbeat=settings.heartbeat_interval, max_age=settings.stream_max_age)
        self._housekeeper: threading.Thread | None = None
        self.started = time.time()
        self.runs: RunRecords | None = None  # run records, kept outputs, estimates (relay/runs.py)
        self.guard = Guard(self, redis_client)  # the spend guard: budgets, queue, orphans (relay/guard/)

    @property
    def backend(self) -> str:
        return "emulator" if self.settings.uses_emulator else "replicate"

    # -- predictions ------------------------------------------------------------
    def checked_input(self, request: CreateRequest) -> CreateRequest:
        """The request with pins applied and its input checked against the model's schema."""
        if request.entry is None:
            return request
        checked = prepare(request.entry, self.schemas.get(request.entry), request.input)
        return replace(request, input=checked)

    def create(self, request: CreateRequest) -> dict[str, Any]:
        """Start a prediction upstream and begin following it; the create answer's fields."""
        webhook = None
        if self.settings.public_url:
            webhook = f"{self.settings.public_url}/api/webhooks/replicate"
        try:
            prediction = self.upstream.create(
                request.target, request.input, webhook=webhook,
                webhook_events_filter=["start", "output", "logs", "completed"] if webhook else None,
            )
        except NotFound:
            raise UpstreamError("Replicate does not know that model or version.", status=404) from None
        prediction_id = str(prediction.get("id", ""))
        if not prediction_id:
            raise UpstreamUnavailable("Replicate answered the create without a prediction id.")
        if self.runs is not None and request.visitor is not None:
            self.runs.created(prediction, request.target.model, request.input, request.visitor)
        self.feed.apply(prediction)
        self.watchers.ensure(prediction_id)
        self._start_housekeeping()
        log.info("prediction %s created (%s)", prediction_id, request.target.model or "version")
        stream = self.signer.sign(prediction_id, "stream")
        cancel = self.signer.sign(prediction_id, "cancel")
        return {
            "success": True,
            "id": prediction_id,
            "status": str(prediction.get("status") or "starting"),
            "stream_url": f"/api/predictions/{prediction_id}/events?token={stream}",
            "cancel_url": f"/api/predictions/{prediction_id}/cancel?token={cancel}",
        }

    def cancel(self, prediction_id: str) -> dict[str, Any]:
        queued = self.guard.cancel(prediction_id)  # Relay's own ids (the admission queue)
        if queued is not None:
            return queued
        held = self.hub.latest(prediction_id) if self.hub.is_done(prediction_id) else None
        if held is not None:
            # Finished: nothing to cancel, and Replicate would only say so again.
            return {"success": True, "id": prediction_id, "status": str(held.get("status", ""))}
        prediction = self.upstream.cancel(prediction_id)
        self.feed.apply(prediction)
        self.watchers.poke(prediction_id)
        return {"success": True, "id": prediction_id, "status": str(prediction.get("status", ""))}

    def create_from(self, body: Callable[[], object], visitor: str) -> dict[str, Any]:
        """Read (`body()`) and check a create request, then start it; counts the outcome by code.

        The spend guard (relay/guard/) runs the whole create: grant, Idempotency-Key, budgets,
        queue; `body` is read inside it, and the input checked against the model's schema."""
        def checked() -> CreateRequest:
            parsed = parse_create_request(body(), self.settings.allowed_models)
            return replace(self.checked_input(parsed), visitor=visitor)

        try:
            answer = self.guard.create(checked)
        except RelayError as error:
            self.metrics.creates.labels(error.code).inc()
            raise
        self.metrics.creates.labels("created").inc()
        return answer

    def apply_webhook(self, headers: Mapping[str, str], body: Callable[[], bytes]) -> str:
        """Verify and apply one webhook delivery; what became of it, counted (or the refusal's code).

        Headers and timestamp are checked first: a forged or stale delivery is refused before
        its body is read (`body()`)."""
        try:
            self.webhooks.check_headers(headers)
            outcome = self._apply_webhook(headers, body())
        except RelayError as error:
            self.metrics.webhooks.labels(error.code).inc()
            raise
        self.metrics.webhooks.labels(outcome).inc()
        return outcome

    def _apply_webhook(self, headers: Mapping[str, str], raw: bytes) -> str:
        webhook_id, prediction = self.webhooks.verify(headers, raw)
        if self.webhooks.seen.seen(webhook_id):
            return "duplicate"
        applied = self.feed.apply(prediction)
        if applied is Applied.INVALID:
            raise InvalidRequest("The webhook body is not a prediction.", code="invalid_webhook")
        self.webhooks.seen.record(webhook_id)
        self.watchers.note_push(prediction["id"])
        if applied is Applied.NEW:
            self.watchers.ensure(prediction["id"])
        return str(applied.value)

    def ensure_known(self, prediction_id: str) -> None:
        """Make sure the hub has the prediction (raise NotFound if Replicate doesn't know it)."""
        if self.hub.knows(prediction_id):
            return
        if self.runs is not None and self.runs.replay_final(prediction_id):
            return  # finished, and held by no hub (say, after a restart): from its record
        try:
            self.feed.apply(self.upstream.get(prediction_id))
        except (UpstreamUnavailable, UpstreamError) as error:
            # The stream opens anyway; its watcher retries and reports the upstream state.
            log.warning("could not fetch %s before streaming: %s", prediction_id, error.message)

    # -- streams --------------------------------------------------------------------
    def open_multiplexed(self, tokens: Sequence[str]) -> list[str]:
        """The predictions a multiplexed stream's `watch` tokens grant, each made known."""
        if not tokens:
            raise InvalidRequest("Pass one or more `watch` tokens (the `token` of each stream_url).")
        if len(tokens) > MAX_WATCH_PER_STREAM:
            raise InvalidRequest(f"One stream may follow at most {MAX_WATCH_PER_STREAM} predictions.")
        ids: list[str] = []
        for token in tokens:
            prediction_id = self.signer.verify(token, "stream")
            if prediction_id is None:
                raise Forbidden("One of the `watch` tokens is not valid (wrong, expired or malformed).")
            if prediction_id not in ids:
                ids.append(prediction_id)
        for prediction_id in ids:
            self.ensure_known(prediction_id)
        return ids

    def stream(self, prediction_ids: Sequence[str], last_ids: Sequence[str | None], *,
               multiplexed: bool, on_close: Callable[[], None] | None = None) -> Iterator[bytes] | None:
        """The body of an SSE response, or None when every prediction is past `done` (204).

        `on_close` runs when the body ends (never when None is returned).
        """
        pairs = zip(prediction_ids, last_ids, strict=True)
        replays: list[Replay] = [self.hub.replay(pid, last) for pid, last in pairs]
        for last, replay in zip(last_ids, replays, strict=True):
            if last is not None and not replay.finished:
                self.metrics.resumes.labels(replay.source).inc()
        if all(replay.finished for replay in replays):
            self.metrics.no_content.inc()
            return None
        for pid, replay in zip(prediction_ids, replays, strict=True):
            if not replay.finished:
                self.guard.opened(pid)
                # An unwatched prediction is polled slowly; its first subscriber wants news now.
                first = self.hub.subscriber_count(pid) == 0
                self.watchers.ensure(pid)
                if first:
                    self.watchers.poke(pid)
        self._start_housekeeping()
        return event_stream(self.hub, prediction_ids, replays, self.limits,
                            multiplexed=multiplexed, positions=last_ids, metrics=self.metrics,
                            on_close=on_close)

    def health(self) -> tuple[dict[str, Any], bool]:
        """The /healthz document, and whether this process can serve (its hub answers)."""
        degraded_since = self.watchers.degraded_since
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(degraded_since)) if degraded_since else None
        hub_ok = self.hub_ok()
        return {
            "status": "ok" if hub_ok else "unavailable",
            "backend": self.backend,
            "hub": {"kind": self.hub.kind, "ok": hub_ok},
            "upstream": {"state": "degraded" if degraded_since else "ok", "since": since},
            "streams": self.hub.open_streams(),
            "watchers": self.watchers.running(),
            "guard": self.guard.status(),
        }, hub_ok

    def hub_ok(self) -> bool:
        """False when the Redis hub cannot reach Redis (the in-process hub is always fine)."""
        return self.hub.ping()

    def log_text(self, prediction_id: str) -> str:
        """The whole log of a prediction (NotFound when neither the hub nor Replicate knows it)."""
        self.ensure_known(prediction_id)
        text = self.hub.log_text(prediction_id)
        if text is None:
            raise NotFound("No prediction with that id.")
        return text

    # -- lifecycle --------------------------------------------------------------------
    def _start_housekeeping(self) -> None:
        if self._housekeeper is None:
            self._housekeeper = threading.Thread(target=housekeep, args=(self.hub,), name="relay-housekeeping",
                                                 daemon=True)
            self._housekeeper.start()

    def shutdown(self) -> None:
        """End every stream and watcher now: clients resume on another worker."""
        log.info("shutting down: ending %d streams", self.hub.open_streams())
        self.watchers.close()
        self.guard.close()
        self.output_streams.closing = True
        self.hub.close()
        self.upstream.close()


def current_service() -> RelayService:
    """The service of the app handling this request (the routes' one way to it)."""
    service = current_app.extensions["relay"]
    assert isinstance(service, RelayService)
    return service
