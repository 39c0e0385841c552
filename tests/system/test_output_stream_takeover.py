"""The output stream reader has a lease: when its process dies another takes over, resuming where it was."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import redis

from relay.coordination import RedisCoordination
from relay.hub import MemoryHub
from relay.output_stream import OutputStreams
from testbed import ROOT, wait_until

TOKENS = [f" t{i}" for i in range(12)]


class _Model:
    """Replicate's stream format, one token every 0.2 s, resuming after Last-Event-ID."""

    def __init__(self) -> None:
        self.resumed_from: list[str | None] = []
        self.sent = 0
        self.lock = threading.Lock()


@pytest.fixture
def model() -> Iterator[tuple[_Model, str]]:
    state = _Model()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            last = self.headers.get("Last-Event-ID")
            state.resumed_from.append(last)
            start = int(last.split(":")[1]) + 1 if last else 0
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            try:
                for index in range(start, len(TOKENS)):
                    self.wfile.write(f"id: 1:{index}\nevent: output\ndata: {TOKENS[index]}\n\n".encode())
                    self.wfile.flush()
                    with state.lock:
                        state.sent += 1
                    threading.Event().wait(0.2)
                self.wfile.write(b"id: 1:99\nevent: done\ndata: {}\n\n")
            except OSError:
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/stream/p1"
    server.shutdown()
    server.server_close()


_READER = """
import sys, time, httpx, redis
from relay.coordination import RedisCoordination
from relay.hub import MemoryHub
from relay.output_stream import OutputStreams
coordination = RedisCoordination(redis.Redis.from_url(sys.argv[1]), lease_seconds=1.0)
streams = OutputStreams(MemoryHub(), lambda: httpx.Client(), on_end=lambda pid: None, coordination=coordination)
streams.ensure("p1", sys.argv[2])
time.sleep(600)
"""


def test_a_dead_readers_stream_is_taken_over_without_repeats(redis_url: str, model: tuple[_Model, str]) -> None:
    state, url = model
    redis.Redis.from_url(redis_url).delete("relay:{p1}:lease:output-stream", "relay:{p1}:note:output-stream")
    first = subprocess.Popen([sys.executable, "-c", _READER, redis_url, url], cwd=ROOT)
    try:
        wait_until(lambda: state.sent >= 4, timeout=10)
        hub = MemoryHub()
        ended: list[str] = []
        with httpx.Client() as client:
            second = OutputStreams(hub, lambda: client, on_end=ended.append,
                                   coordination=RedisCoordination(redis.Redis.from_url(redis_url), lease_seconds=1.0))
            second.ensure("p1", url)  # the lease is held elsewhere: this one stands by
            first.send_signal(signal.SIGKILL)
            first.wait(5)
            wait_until(lambda: ended, timeout=15)
        chunks = [e.data["text"] for e in hub.channels.history("p1") if e.kind == "output"]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(5)
    assert second.takeovers == 1
    resumed = state.resumed_from[-1]
    assert resumed is not None  # the second reader resumed, it did not start over
    index = int(resumed.split(":")[1])
    assert chunks == TOKENS[index + 1:]
