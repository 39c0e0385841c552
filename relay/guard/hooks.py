"""Where the guard plugs into the feed and the watchers, without changing either.

- `GuardedFeed.apply`: after the usual apply, tells the guard about the state
  (compute seconds, a finished prediction's slot) and, for an upstream
  prediction started from the queue, applies the same state under its Relay id,
  so streams of that id see everything (`urls` dropped: the upstream id's own
  output stream is read once, under its own id).
- `GuardedWatchers`: `ensure`/`poke` of a Relay id follow its upstream id (or
  do nothing while it is queued), and its watcher counts the Relay id's
  subscribers as its own, so a watched queued-then-started prediction is polled
  as fast as any watched one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, cast

from ..feed import Applied, Feed
from ..hub import TERMINAL_STATUSES, Hub
from ..watcher import Watchers


class Aliases(Protocol):
    def alias_of(self, upstream_id: str) -> str | None: ...
    def upstream_id(self, client_id: str) -> str | None: ...


class Guard(Protocol):
    """What the hooks use of the guard (relay/guard/__init__.py), which sets itself on them."""

    @property
    def admission(self) -> Aliases: ...

    def observe(self, prediction: Mapping[str, Any], terminal: bool) -> None: ...

__all__ = ["GuardedFeed", "GuardedWatchers"]


class GuardedFeed(Feed):
    guard: Guard | None = None

    def apply(self, prediction: Mapping[str, Any]) -> Applied:
        applied = super().apply(prediction)
        guard = self.guard
        if guard is None or applied is Applied.INVALID:
            return applied
        prediction_id = str(prediction.get("id"))
        guard.observe(prediction, prediction.get("status") in TERMINAL_STATUSES)
        alias = guard.admission.alias_of(prediction_id)
        if alias is not None:
            super().apply({k: v for k, v in prediction.items() if k != "urls"} | {"id": alias})
        return applied


class _AliasedHub:
    """The hub as a watcher sees it: an upstream id's subscribers include its Relay id's."""

    def __init__(self, hub: Hub, watchers: GuardedWatchers) -> None:
        self._hub = hub
        self._watchers = watchers

    def __getattr__(self, name: str) -> Any:
        return getattr(self._hub, name)

    def _alias(self, prediction_id: str) -> str | None:
        guard = self._watchers.guard
        return guard.admission.alias_of(prediction_id) if guard is not None else None

    def subscriber_count(self, prediction_id: str) -> int:
        alias = self._alias(prediction_id)
        own = self._hub.subscriber_count(prediction_id)
        return own + (self._hub.subscriber_count(alias) if alias else 0)

    def idle_for(self, prediction_id: str) -> float:
        alias = self._alias(prediction_id)
        own = self._hub.idle_for(prediction_id)
        return min(own, self._hub.idle_for(alias)) if alias else own


class GuardedWatchers(Watchers):
    guard: Guard | None = None

    def __init__(self, hub: Hub, *args: Any, **kwargs: Any) -> None:
        super().__init__(cast(Hub, _AliasedHub(hub, self)), *args, **kwargs)

    def _route(self, prediction_id: str) -> str | None:
        guard = self.guard
        return prediction_id if guard is None else guard.admission.upstream_id(prediction_id)

    def ensure(self, prediction_id: str) -> None:
        routed = self._route(prediction_id)
        if routed is not None:
            super().ensure(routed)

    def poke(self, prediction_id: str) -> None:
        routed = self._route(prediction_id)
        if routed is not None:
            super().poke(routed)
