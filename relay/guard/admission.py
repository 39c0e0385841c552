"""The admission queue (RELAY_MAX_RUNNING) and Relay's own ids for queued predictions.

State, all in the guard's Store (so shared across workers with Redis):
- table `running`: one row per slot: an upstream id (-> the id clients use), or
  a placeholder `p:<...>` while a create is on its way upstream;
- queue `queue`: Relay ids waiting, in arrival order; `job:<rid>` their request;
- `up:<rid>` -> the upstream id once created; `alias:<upstream id>` -> rid.

A create takes a slot with `reserve` (atomic: under the cap and nobody waiting)
or joins the queue and is answered at once with a Relay id (`rq-...`). Its
stream is the hub channel of that id: `queued` snapshots with `queue.position`,
then, once created upstream, every state of the upstream prediction copied
under the Relay id (hooks.py), so the create answer's id, stream and cancel
URLs stay valid throughout.

One process at a time admits (a lease renewed every tick): it frees the slots of
finished predictions, keeps a watcher on every unfinished one (watched or not,
so that its end frees its slot), pops the queue's head into each free slot
(`admit`, atomic) and creates it upstream, and republishes queue positions.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from typing import Any, Protocol

from ..errors import NotFound, RelayError, UpstreamUnavailable
from ..feed import Feed
from ..hub import Hub
from ..upstream import Target
from ..validation import CreateRequest
from .store import Store

__all__ = ["PREFIX", "Admission"]

log = logging.getLogger(__name__)

PREFIX = "rq-"
RUNNING, QUEUE = "running", "queue"
DAY = 86400.0
STALE_PLACEHOLDER = 120.0


class Host(Protocol):
    @property
    def hub(self) -> Hub: ...
    @property
    def feed(self) -> Feed: ...

    def create(self, request: CreateRequest) -> dict[str, Any]: ...
    def cancel_upstream(self, prediction_id: str) -> dict[str, Any]: ...
    def follow(self, prediction_id: str) -> None: ...


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


class Admission:
    def __init__(self, store: Store, host: Host, cap: int | None) -> None:
        self.store = store
        self.host = host
        self.cap = cap
        self._owner = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._aliases: dict[str, str] = {}
        self._not_aliased: dict[str, float] = {}
        self._published: dict[str, int] = {}

    # -- creates -------------------------------------------------------------------
    def reserve(self) -> str | None:
        """A slot's placeholder for a create going upstream now, or None: queue it."""
        if self.cap is None:
            return ""
        field = "p:" + secrets.token_hex(8)
        return field if self.store.reserve(RUNNING, field, repr(time.time()), self.cap, QUEUE) else None

    def started(self, placeholder: str, upstream_id: str, client_id: str) -> None:
        if self.cap is None:
            return
        self.store.table_set(RUNNING, upstream_id, client_id)
        self.store.table_pop(RUNNING, placeholder)

    def unreserve(self, placeholder: str) -> None:
        if placeholder:
            self.store.table_pop(RUNNING, placeholder)

    def enqueue(self, request: CreateRequest, spend: list[str]) -> tuple[str, int]:
        rid = PREFIX + secrets.token_hex(12)
        created = _now_iso()
        job = {"model": request.target.model, "version": request.target.version, "input": request.input,
               "visitor": request.visitor, "created_at": created, "spend": spend}
        self.store.put(f"job:{rid}", json.dumps(job), DAY)
        # Published before it joins the queue, so no later state can precede it; the
        # admitter corrects the position within a tick if others joined meanwhile.
        guess = len(self.store.queued(QUEUE)) + 1
        self.host.hub.publish(rid, "snapshot", queued_snapshot(rid, created, guess))
        position = self.store.enqueue(QUEUE, rid)
        return rid, position

    # -- ids -----------------------------------------------------------------------------
    def upstream_id(self, client_id: str) -> str | None:
        if not client_id.startswith(PREFIX):
            return client_id
        return self.store.get(f"up:{client_id}")

    def alias_of(self, upstream_id: str) -> str | None:
        """The Relay id an upstream prediction is streamed under, if it came from the queue."""
        if self.cap is None or upstream_id.startswith(PREFIX):
            return None
        known = self._aliases.get(upstream_id)
        if known is not None:
            return known
        if self._not_aliased.get(upstream_id, 0.0) > time.monotonic():
            return None
        alias = self.store.get(f"alias:{upstream_id}")
        if alias is None:
            self._not_aliased[upstream_id] = time.monotonic() + 2.0
            return None
        self._aliases[upstream_id] = alias
        return alias

    # -- cancel ------------------------------------------------------------------------------
    def cancel(self, client_id: str) -> dict[str, Any] | None:
        """Cancel a Relay id (queued: dropped, never reaching Replicate); None for upstream ids."""
        if not client_id.startswith(PREFIX):
            return None
        if self.store.unqueue(QUEUE, client_id):
            self._end_queued(client_id, "canceled", None)
            return {"success": True, "id": client_id, "status": "canceled"}
        upstream_id = self.store.get(f"up:{client_id}")
        if upstream_id is None:
            if self.store.get(f"job:{client_id}") is None:
                raise NotFound("There is no prediction with that id.")
            # Popped from the queue, on its way upstream: the admitter cancels it once created.
            self.store.put(f"cancel:{client_id}", "1", DAY)
            return {"success": True, "id": client_id, "status": "starting"}
        answer = self.host.cancel_upstream(upstream_id)
        return {**answer, "id": client_id}

    def _end_queued(self, rid: str, status: str, error: str | None) -> None:
        """End a prediction that never ran upstream; what it counted against caps is given back."""
        raw = self.store.get(f"job:{rid}")
        if raw is not None and self.store.delete(f"job:{rid}", only_if=raw):
            self.store.give_back(list(json.loads(raw).get("spend") or []))
        held = self.host.hub.latest(rid) or {}
        snapshot = {**queued_snapshot(rid, held.get("created_at"), None), "status": status, "error": error,
                    "completed_at": _now_iso()}
        snapshot.pop("queue", None)
        self.host.hub.publish(rid, "snapshot", snapshot)
        self.host.hub.publish(rid, "done", {"id": rid, "status": status})
        self._published.pop(rid, None)

    def drop(self, rid: str) -> bool:
        """Take a queued prediction out of the queue (orphaned); False if it had left it."""
        if self.store.unqueue(QUEUE, rid):
            self._end_queued(rid, "canceled", "Nobody was watching this prediction, so it left the queue.")
            return True
        return False

    # -- the admitter -------------------------------------------------------------------------
    def lead(self, lease: float) -> bool:
        """Take or keep the admitter's lease."""
        if self.store.claim("admitter", self._owner, lease):
            return True
        if self.store.get("admitter") == self._owner:
            self.store.put("admitter", self._owner, lease)
            return True
        return False

    def finished(self, upstream_id: str) -> None:
        if self.cap is not None:
            self.store.table_pop(RUNNING, upstream_id)

    def tick(self) -> None:
        """The leader's round: free, follow, admit, report positions."""
        if self.cap is None:
            return
        now = time.time()
        for field, value in self.store.table_all(RUNNING).items():
            if field.startswith("p:"):
                if not field.startswith(f"p:{PREFIX}") and now - float(value) > STALE_PLACEHOLDER:
                    self.store.table_pop(RUNNING, field)  # its process died before creating
                continue
            if self.host.hub.is_done(field):
                self.store.table_pop(RUNNING, field)
            else:
                self.host.follow(field)
        while (rid := self.store.admit(QUEUE, RUNNING, self.cap, repr(now))) is not None:
            self._start(rid)
        queued = self.store.queued(QUEUE)
        for position, rid in enumerate(queued, start=1):
            if self._published.get(rid) != position:
                held = self.host.hub.latest(rid) or {}
                self.host.hub.publish(rid, "snapshot", queued_snapshot(rid, held.get("created_at"), position))
                self._published[rid] = position
        waiting = set(queued)
        for rid in [r for r in self._published if r not in waiting]:
            self._published.pop(rid, None)

    def _start(self, rid: str) -> None:
        placeholder = f"p:{rid}"
        raw = self.store.get(f"job:{rid}")
        if raw is None:
            self.store.table_pop(RUNNING, placeholder)
            return
        job = json.loads(raw)
        request = CreateRequest(target=Target(model=job.get("model"), version=job.get("version")),
                                input=job.get("input") or {}, visitor=job.get("visitor"))
        try:
            answer = self.host.create(request)
        except UpstreamUnavailable as error:
            log.warning("could not start queued %s yet: %s", rid, error.message)
            self.store.table_pop(RUNNING, placeholder)
            self.store.requeue(QUEUE, rid)
            return
        except RelayError as error:
            self.store.table_pop(RUNNING, placeholder)
            self._end_queued(rid, "failed", error.message)
            return
        upstream_id = str(answer["id"])
        self.store.put(f"alias:{upstream_id}", rid, DAY)
        self.store.put(f"up:{rid}", upstream_id, DAY)
        self._aliases[upstream_id] = rid
        self._not_aliased.pop(upstream_id, None)
        self.started(placeholder, upstream_id, rid)
        latest = self.host.hub.latest(upstream_id)
        if latest is not None:
            self.host.feed.apply({**latest, "id": rid})
        log.info("queued %s started upstream as %s", rid, upstream_id)
        if self.store.get(f"cancel:{rid}") is not None:
            self.host.cancel_upstream(upstream_id)

    def status(self) -> dict[str, Any]:
        if self.cap is None:
            return {}
        return {"max_running": self.cap, "running": len(self.store.table_all(RUNNING)),
                "queued": len(self.store.queued(QUEUE))}


def queued_snapshot(rid: str, created_at: object, position: int | None) -> dict[str, Any]:
    return {"id": rid, "status": "queued", "output": None, "error": None, "logs": "", "progress": None,
            "metrics": None, "created_at": created_at, "started_at": None, "completed_at": None,
            "queue": {"position": position}}
