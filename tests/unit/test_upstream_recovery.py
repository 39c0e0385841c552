"""An outage that ends with the terminal state still tells subscribers `upstream: ok` before `done`."""

from __future__ import annotations

from relay.feed import Feed
from relay.hub import MemoryHub
from relay.upstream import Upstream
from relay.watcher import PollPolicy, Watchers
from testbed import wait_until
from testbed.scripted import Answer, scripted_upstream


def test_recovery_into_the_final_state_reports_ok_before_done() -> None:
    failing = Answer(500, {"detail": "internal error"})
    done = Answer(200, {"id": "p1", "status": "succeeded", "output": "ok", "logs": ""})
    with scripted_upstream([failing, failing, done]) as fake:
        hub = MemoryHub()
        hub.publish("p1", "snapshot", {"id": "p1", "status": "starting", "logs": "", "output": None})
        watchers = Watchers(hub, Feed(hub), Upstream("token", fake.url), PollPolicy(base=0.05),
                            idle_timeout=60)
        watchers.ensure("p1")
        wait_until(lambda: hub.is_done("p1"), timeout=15)
    events = hub.channels.history("p1")
    kinds = [(e.kind, (e.data or {}).get("state") if e.kind == "upstream" else None) for e in events]
    upstream_states = [state for kind, state in kinds if kind == "upstream"]
    assert upstream_states[0] == "degraded" and upstream_states[-1] == "ok", kinds
    ok_at = max(i for i, (kind, state) in enumerate(kinds) if state == "ok")
    done_at = next(i for i, (kind, _) in enumerate(kinds) if kind == "done")
    assert ok_at < done_at, kinds
