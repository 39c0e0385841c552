"""Relay's test bed: the processes and clients that `tests/` and `bench/` share.

- `servers`: Relay under gunicorn (`RelayServer`), a real `RedisServer`, `free_port`, `wait_until`.
- `sse`: an independent SSE reader (httpx-sse) for Relay's streams.
"""

from testbed.servers import ROOT, TEST_SECRET, RedisServer, RelayServer, free_port, wait_until

__all__ = ["ROOT", "TEST_SECRET", "RedisServer", "RelayServer", "free_port", "wait_until"]
