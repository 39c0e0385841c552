"""The spend guard (docs/spend-guard.md): who may create, how much, how many at once, for how long.

`Guard.create` is the whole create path in front of `Service.create`:

    grant (403 grant_required)  ->  Idempotency-Key (a repeat answers the first answer)
    -> body checks -> grant's model -> one atomic count of grant uses, budget, quota
       (429 grant_exhausted / budget_exhausted / quota_exceeded; nothing sent upstream)
    -> a running slot (RELAY_MAX_RUNNING) or the queue -> Replicate

Its parts: budget.py (fixed windows), grants.py, idempotency.py, admission.py
(the queue, Relay ids), orphans.py (RELAY_ORPHAN_TIMEOUT), hooks.py (how it sees
every prediction state), on a `Store` (store.py: in-process; redis_store.py;
sql_store.py, the run records' database when there is no Redis). One
ticker per process (every `TICK` seconds, started on first use) refreshes viewer
marks and, in the process holding the admitter lease, admits from the queue and
cancels orphans. RELAY_DEADLINE is not here: upstream.py sends it as Cancel-After.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import redis
import sqlalchemy as sa
from flask import request
from prometheus_client import Gauge

from ..config import Settings
from ..errors import HubUnavailable, RelayError
from ..feed import Feed
from ..hub import Hub
from ..metrics import Metrics
from ..tokens import TokenSigner
from ..upstream import Upstream
from ..validation import CreateRequest
from ..visitors import current_visitor
from ..watcher import Watchers
from .admission import PREFIX, Admission
from .budget import Budgets
from .grants import Grant, GrantRequired, read_grant
from .hooks import GuardedFeed, GuardedWatchers
from .idempotency import Idempotency
from .orphans import Orphans
from .redis_store import RedisStore
from .store import MemoryStore, Store


class Service(Protocol):
    """What the guard uses of `Service`, which builds it (read-only, so subclasses fit)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def upstream(self) -> Upstream: ...
    @property
    def hub(self) -> Hub: ...
    @property
    def feed(self) -> Feed: ...
    @property
    def watchers(self) -> Watchers: ...
    @property
    def metrics(self) -> Metrics: ...
    @property
    def signer(self) -> TokenSigner: ...

    def create(self, request: CreateRequest) -> dict[str, Any]: ...
    def cancel(self, prediction_id: str) -> dict[str, Any]: ...

__all__ = ["PREFIX", "Guard", "GuardedFeed", "GuardedWatchers"]

log = logging.getLogger(__name__)

STORE_ERRORS = (redis.RedisError, sa.exc.SQLAlchemyError, OSError)
TICK = 0.5
LEASE = 3.0


class _Host:
    def __init__(self, service: Service) -> None:
        self._service = service
        self.hub = service.hub
        self.feed = service.feed

    def create(self, request: CreateRequest) -> dict[str, Any]:
        return self._service.create(request)

    def cancel_upstream(self, prediction_id: str) -> dict[str, Any]:
        return self._service.cancel(prediction_id)

    def follow(self, prediction_id: str) -> None:
        self._service.watchers.ensure(prediction_id)


class Guard:
    def __init__(self, service: Service, redis_client: redis.Redis | None) -> None:
        settings = service.settings
        self.service = service
        self.grant_secret = settings.grant_secret
        if settings.deadline:
            service.upstream.create_headers["Cancel-After"] = settings.deadline
        self.use_store(RedisStore(redis_client) if redis_client is not None else MemoryStore())
        for part in (service.feed, service.watchers):
            if isinstance(part, (GuardedFeed, GuardedWatchers)):
                part.guard = self
        self._ticker: threading.Thread | None = None
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._gauge = Gauge("relay_budget_remaining", "What is left of RELAY_BUDGET (creations) and "
                            "RELAY_BUDGET_SECONDS (seconds) in the current window.", ["kind"],
                            registry=service.metrics.registry, multiprocess_mode="mostrecent")
        self._queued = Gauge("relay_queue_length", "Predictions waiting in Relay's admission queue.",
                             registry=service.metrics.registry, multiprocess_mode="mostrecent")

    def use_store(self, store: Store) -> None:
        """Keep the guard's state in `store` (create_app hands over the database's when there is no Redis)."""
        settings = self.service.settings
        self.store = store
        self.budgets = Budgets(store, settings.budget, settings.budget_seconds, settings.quota)
        self.idempotency = Idempotency(store)
        self.admission = Admission(store, _Host(self.service), settings.max_running)
        self.orphans = Orphans(store, self.service.hub, settings.orphan_timeout, cancel=self._cancel_orphan,
                               follow=settings.max_running is not None or settings.budget_seconds is not None)

    # -- create --------------------------------------------------------------------------
    def create(self, parse: Callable[[], CreateRequest]) -> dict[str, Any]:
        """The create answer (see the module docstring); RelayError for every refusal."""
        try:
            return self._guarded(parse)
        except STORE_ERRORS:
            raise HubUnavailable("Relay's shared state (Redis or the database) is not answering; retry in a moment.",
                                 retry_after=2) from None

    def _guarded(self, parse: Callable[[], CreateRequest]) -> dict[str, Any]:
        grant = read_grant(dict(request.headers), self.grant_secret) if self.grant_secret else None
        visitor = current_visitor()
        key = Idempotency.check_key(request.headers.get("Idempotency-Key"))
        if key is None:
            return self._create(parse(), visitor.counted_as, grant)
        # A cookieless first request is remembered for its address and for the cookie it is given.
        scopes = [f"g:{grant.sub}"] if grant is not None and grant.sub else \
            [f"a:{visitor.address}", f"v:{visitor.id}"] if visitor.fresh else [f"v:{visitor.id}"]
        slot = Idempotency.slot(scopes[0], key)
        token, first = self.idempotency.begin(slot)
        if first is not None:
            return first
        assert token is not None
        try:
            answer = self._create(parse(), visitor.counted_as, grant)
        except BaseException:
            self.idempotency.abandon(slot, token)
            raise
        self.idempotency.finish(slot, token, answer, [Idempotency.slot(scope, key) for scope in scopes[1:]])
        return answer

    def _create(self, create: CreateRequest, visitor_keys: tuple[str, ...], grant: Grant | None) -> dict[str, Any]:
        if grant is not None and not grant.allows(create.target.model):
            raise GrantRequired("Your grant does not cover this model; ask the site for one that does.")
        if grant is not None and grant.sub:
            visitor_keys = (f"g:{grant.sub}",)
        spend = self.budgets.take(visitor_keys, grant)
        try:
            self.start()
            placeholder = self.admission.reserve()
            if placeholder is None:
                rid, position = self.admission.enqueue(create, spend)
                self.orphans.track(rid)
                signer = self.service.signer
                return {"success": True, "id": rid, "status": "queued", "queue": {"position": position},
                        "stream_url": f"/api/predictions/{rid}/events?token={signer.sign(rid, 'stream')}",
                        "cancel_url": f"/api/predictions/{rid}/cancel?token={signer.sign(rid, 'cancel')}"}
            try:
                answer = self.service.create(create)
            except BaseException:
                self.admission.unreserve(placeholder)
                raise
            self.admission.started(placeholder, str(answer["id"]), str(answer["id"]))
            self.orphans.track(str(answer["id"]))
            return answer
        except RelayError:
            self.budgets.give_back(spend)
            raise

    # -- hooks -------------------------------------------------------------------------------
    def cancel(self, prediction_id: str) -> dict[str, Any] | None:
        """The answer for a Relay id's cancel; None: cancel upstream as usual."""
        if prediction_id.startswith(PREFIX):
            self.start()
        return self.admission.cancel(prediction_id)

    def opened(self, prediction_id: str) -> None:
        """A stream of this id opened (orphans count from its last viewer, never before the first)."""
        self.orphans.opened(prediction_id)
        if self.orphans.following or prediction_id.startswith(PREFIX):
            self.start()

    def observe(self, prediction: Mapping[str, Any], terminal: bool) -> None:
        try:
            self.budgets.observe(prediction, terminal)
            if terminal:
                prediction_id = str(prediction.get("id"))
                self.admission.finished(prediction_id)
                self.orphans.untrack(prediction_id)
        except STORE_ERRORS as error:
            log.warning("the spend guard could not record a prediction's state: %s", error)

    def _cancel_orphan(self, client_id: str) -> None:
        if client_id.startswith(PREFIX) and self.admission.drop(client_id):
            return
        self.service.cancel(client_id)

    # -- the ticker --------------------------------------------------------------------------
    def start(self) -> None:
        if not self.orphans.following:
            return
        with self._lock:
            if self._ticker is None:
                self._ticker = threading.Thread(target=self._run, name="relay-guard", daemon=True)
                self._ticker.start()

    def _run(self) -> None:
        while not self._closing.wait(TICK):
            try:
                self.orphans.refresh()
                if self.admission.lead(LEASE):
                    self.admission.tick()
                    self.orphans.follow_all(self.service.watchers.ensure)
                    self.orphans.sweep()
            except (*STORE_ERRORS, RelayError) as error:
                log.warning("spend guard round failed: %s", error)
            except Exception:
                log.exception("spend guard round failed")

    def close(self) -> None:
        self._closing.set()

    # -- reporting ---------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        try:
            out = self.budgets.status(time.time())
            queue = self.admission.status()
        except STORE_ERRORS:
            return {"ok": False}
        if queue:
            out["queue"] = queue
        return out

    def refresh_gauges(self) -> None:
        status = self.status()
        for kind in ("creations", "seconds"):
            if isinstance(status.get(kind), dict):
                self._gauge.labels(kind).set(status[kind]["remaining"])
        if isinstance(status.get("queue"), dict):
            self._queued.set(status["queue"]["queued"])
