"""Redis key names, the pub/sub channel and the errors that mean "Redis is not answering".

One hash tag per prediction (`{<id>}`), so a prediction's keys live on one Redis
Cluster slot and one Lua script may touch them all:

  relay:{<id>}:events   stream of events: k (kind) and per kind d (JSON data),
                        o/t (a `logs` delta's offset and text), n (log length)
  relay:{<id>}:snap     latest snapshot without its log (JSON)
  relay:{<id>}:snapid   its event id
  relay:{<id>}:up       latest upstream-state JSON
  relay:{<id>}:done     id of the `done` event
  relay:{<id>}:log      the whole log, once (APPENDed to)
  relay:{<id>}:loglen   its length in code points
  relay:{<id>}:bytes    bytes added to the stream since it was last trimmed by size
  relay:{<id>}:lease:*  the watcher's and the output reader's leases (relay/coordination.py)
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from .errors import HubUnavailable

__all__ = ["EVENTS_CHANNEL", "REDIS_ERRORS", "PredictionKeys", "prediction_base", "unavailable"]

EVENTS_CHANNEL = "relay:events"
REDIS_ERRORS: tuple[type[Exception], ...] = (redis.RedisError, OSError)


def prediction_base(prediction_id: str) -> str:
    return f"relay:{{{prediction_id}}}:"


@dataclass(frozen=True, slots=True)
class PredictionKeys:
    events: str
    snap: str
    snapid: str
    up: str
    done: str
    log: str
    loglen: str
    bytes: str

    @classmethod
    def of(cls, prediction_id: str) -> PredictionKeys:
        base = prediction_base(prediction_id)
        return cls(*(base + name for name in ("events", "snap", "snapid", "up", "done", "log", "loglen", "bytes")))

    def all(self) -> list[str]:
        return [self.events, self.snap, self.snapid, self.up, self.done, self.log, self.loglen, self.bytes]


def unavailable() -> HubUnavailable:
    return HubUnavailable("Relay's shared state (Redis) is not answering; retry in a moment.", retry_after=2)
