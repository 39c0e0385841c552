"""Prometheus metrics of one app, in multi-process mode under gunicorn.

gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR before any worker imports
prometheus-client, so every worker writes its values to shared files and
/metrics (served by any worker) adds them up. Without it (flask run, tests
of a single process) values live in this process only.

Each app gets its own registry, so tests can create many apps in one process.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, multiprocess

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.open_streams = Gauge("relay_open_streams", "SSE connections open now.",
                                  registry=r, multiprocess_mode="livesum")
        self.watchers = Gauge("relay_watchers", "Predictions followed upstream by a watcher loop now.",
                              registry=r, multiprocess_mode="livesum")
        self.events_sent = Counter("relay_events_sent", "Events written to streams, by type.",
                                   ["type"], registry=r)
        self.resumes = Counter("relay_resumes", "Reconnections with a last event id, by how they were served.",
                               ["source"], registry=r)
        self.no_content = Counter("relay_stream_no_content", "Resumes after done answered 204.", registry=r)
        self.slow_consumers = Counter("relay_slow_consumers", "Readers that fell behind the history and were "
                                      "coalesced to the latest snapshot.", ["action"], registry=r)
        self.upstream_requests = Counter("relay_upstream_requests", "Requests to Replicate, by endpoint and outcome.",
                                         ["endpoint", "outcome"], registry=r)
        self.upstream_backoff = Counter("relay_upstream_backoff_seconds", "Seconds watchers waited after upstream "
                                        "failures.", registry=r)
        self.webhooks = Counter("relay_webhooks", "Webhook deliveries, by outcome.", ["outcome"], registry=r)
        self.predictions_finished = Counter("relay_predictions_finished", "Predictions seen reaching a terminal "
                                            "status, by status.", ["status"], registry=r)
        self.creates = Counter("relay_create_requests", "Create requests, by outcome.", ["outcome"], registry=r)
        self._sent_by_kind: dict[str, Counter] = {}

    def count_sent(self, kind: str, count: int) -> None:
        """Add `count` events of `kind` written; the labelled child is looked up once per kind."""
        child = self._sent_by_kind.get(kind)
        if child is None:
            child = self._sent_by_kind[kind] = self.events_sent.labels(kind)
        child.inc(count)

    def render(self) -> bytes:
        """The text exposition: every worker's values when multi-process, else this process's."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return bytes(generate_latest(registry))
        return bytes(generate_latest(self.registry))
