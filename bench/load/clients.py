"""Simulated browsers and pollers, in a process of their own so that the server's
memory and event loop hold only the server's work. Each mode prints JSON on stdout.

    python -m bench.load.clients follow --base URL --count N --input JSON
        create a prediction through Relay (POST /api/predictions), open N SSE
        streams on its stream_url at once, read each one to `event: done`.

    python -m bench.load.clients poll --base URL --count N --interval S --input JSON
        the seed's design: create a prediction on the (emulated) Replicate API
        and let N greenlets each poll GET /v1/predictions/<id> through the
        `replicate` client every S seconds until it is terminal.

    python -m bench.load.clients idle --url URL
        hold idle streams open with raw sockets; commands on stdin:
        `open N [C] [nowait]` opens N more, C at a time, and waits for each
        one's first bytes (unless `nowait`: for servers that send none until
        their first event); `close` ends.

    python -m bench.load.clients fanout --url URL
        as `idle`, plus `arm MARKER TIMEOUT`: answers `{"armed": true}` at once,
        then waits (epoll, no greenlets in the way) until every stream has
        received bytes containing MARKER, and answers each one's arrival time
        (time.time(), this machine's clock) or null.

    python -m bench.load.clients watch --base URL --urls JSON [--timeout S]
        follow each stream URL to `event: done` and answer every snapshot with
        its arrival time (time.time()), status, progress and timestamps.

    python -m bench.load.clients churn --url URL
        connect/resume/disconnect cycles; commands on stdin: `cycles N C` runs N
        cycles, C at a time: connect with a Last-Event-ID taken from the
        prediction's history, read until the first replayed event, disconnect.
        A follower stream in this process learns the event ids. `close` ends.

    python -m bench.load.clients ttfb --url URL --count N [--body JSON]
        N requests one after another, each on a new connection: GET (or POST
        the body as JSON), time to the status line's first byte and, for a
        stream, to the first body chunk.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import gevent  # noqa: E402
import gevent.pool  # noqa: E402
import httpx  # noqa: E402
from httpx_sse import connect_sse  # noqa: E402

from bench.common.servers import WANTED_FILES  # noqa: E402
from testbed.process import raise_file_limit  # noqa: E402

TERMINAL = {"succeeded", "failed", "canceled", "aborted"}
MODEL = "relay/image-demo"


def follow(base: str, count: int, prediction_input: dict[str, Any], timeout: float) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    with httpx.Client(base_url=base, limits=limits, timeout=httpx.Timeout(timeout, connect=10)) as client:
        created = client.post("/api/predictions", json={"model": MODEL, "input": prediction_input})
        created.raise_for_status()
        body = created.json()
        started = time.monotonic()

        def subscriber() -> dict[str, Any]:
            seen: dict[str, Any] = {"events": 0, "snapshots": 0, "status": None, "done": False}
            try:
                with connect_sse(client, "GET", body["stream_url"]) as source:
                    source.response.raise_for_status()
                    seen["connected_after"] = time.monotonic() - started
                    for event in source.iter_sse():
                        seen["events"] += 1
                        if event.event == "message":
                            seen["snapshots"] += 1
                            seen["status"] = json.loads(event.data)["status"]
                        elif event.event == "done":
                            seen["done"] = True
                            break
            except Exception as error:  # reported, not raised: one broken stream must not hide the rest
                seen["error"] = f"{type(error).__name__}: {error}"
            return seen

        jobs = [gevent.spawn(subscriber) for _ in range(count)]
        gevent.joinall(jobs, timeout=timeout)
        results = [job.value or {"error": "timed out"} for job in jobs]
    return {
        "id": body["id"],
        "subscribers": count,
        "completed": sum(1 for r in results if r.get("done")),
        "errors": sorted({r["error"] for r in results if "error" in r}),
        "final_status": sorted({str(r.get("status")) for r in results}),
        "snapshots_per_subscriber": _spread([r["snapshots"] for r in results if "snapshots" in r]),
        "all_connected_after_s": max((r.get("connected_after", 0.0) for r in results), default=0.0),
        "elapsed_s": time.monotonic() - started,
    }


def poll(base: str, count: int, interval: float, prediction_input: dict[str, Any],
         timeout: float, token: str | None = None) -> dict[str, Any]:
    import replicate

    # One shared client, as in the seed (module-level `replicate` calls), with a pool big enough
    # that no poller waits for a connection.
    transport = httpx.HTTPTransport(
        limits=httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10))
    client = replicate.Client(token or "bench-token", base_url=base, timeout=httpx.Timeout(timeout),
                              transport=transport)
    prediction = client.models.predictions.create(model=MODEL, input=prediction_input)
    started = time.monotonic()

    def poller() -> dict[str, Any]:
        gets = 0
        status = prediction.status
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                gets += 1
                status = client.predictions.get(prediction.id).status
                if status in TERMINAL:
                    break
                gevent.sleep(interval)
        except Exception as error:  # an overloaded upstream: reported, as the seed's page would show it
            return {"gets": gets, "status": "error", "error": f"{type(error).__name__}: {error}"[:200]}
        return {"gets": gets, "status": status}

    jobs = [gevent.spawn(poller) for _ in range(count)]
    gevent.joinall(jobs, timeout=timeout + 5)
    results = [job.value or {"gets": 0, "status": "timed out"} for job in jobs]
    return {
        "id": prediction.id,
        "subscribers": count,
        "completed": sum(1 for r in results if r["status"] in TERMINAL),
        "final_status": sorted({str(r["status"]) for r in results}),
        "client_gets": sum(r["gets"] for r in results),
        "errors": sorted({r["error"] for r in results if "error" in r})[:5],
        "failed_subscribers": sum(1 for r in results if r["status"] in ("error", "timed out")),
        "gets_per_subscriber": _spread([r["gets"] for r in results]),
        "elapsed_s": time.monotonic() - started,
    }


def _spread(values: list[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "max": 0}
    return {"min": min(values), "max": max(values)}


def stream_request(address: tuple[str, int], target: str, headers: dict[str, str] | None = None) -> bytes:
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    return (f"GET {target} HTTP/1.1\r\nHost: {address[0]}:{address[1]}\r\n"
            f"Accept: text/event-stream\r\n{extra}\r\n").encode()


def read_first_bytes(sock: socket.socket, until: bytes | None = None) -> bytes:
    """Read the status line, the headers and body bytes (all of `until`, if given); raise unless 200."""
    received = b""
    while True:
        end = received.find(b"\r\n\r\n")
        if end >= 0:
            if not received.startswith(b"HTTP/1.1 200"):
                raise ConnectionError(received.split(b"\r\n", 1)[0].decode(errors="replace"))
            body = received[end + 4:]
            if body and (until is None or until in body):
                return received
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed before the first bytes")
        received += data


class IdleStreams:
    """Raw-socket SSE connections that read their first bytes and then just sit there."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.target = parts.path + (f"?{parts.query}" if parts.query else "")
        self.sockets: list[socket.socket] = []
        self.failures: list[str] = []

    def _request(self) -> bytes:
        return stream_request(self.address, self.target)

    def _open_one(self, wait: bool = True) -> None:
        sock = socket.create_connection(self.address, timeout=60)
        try:
            sock.sendall(self._request())
            if wait:
                read_first_bytes(sock)
        except Exception as error:
            sock.close()
            self.failures.append(f"{type(error).__name__}: {error}")
            return
        self.sockets.append(sock)

    def open(self, count: int, concurrency: int = 100, wait: bool = True) -> None:
        """Open `count` more streams; with `wait`, each one's first bytes are awaited (and its status checked)."""
        pool = gevent.pool.Pool(concurrency)
        for _ in range(count):
            pool.spawn(self._open_one, wait)
        pool.join(timeout=120)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()


def open_command(streams: IdleStreams, args: list[str]) -> None:
    """`open N [CONCURRENCY] [nowait]`: open N more streams; answer with the counts so far."""
    started = time.monotonic()
    streams.open(int(args[0]), *(int(a) for a in args[1:2]), wait="nowait" not in args)
    print(json.dumps({"open": len(streams.sockets), "failures": len(streams.failures),
                      "failure_kinds": sorted(set(streams.failures))[:5],
                      "seconds": round(time.monotonic() - started, 2)}), flush=True)


def idle(url: str) -> None:
    streams = IdleStreams(url)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "open":
            open_command(streams, args)
        elif command == "close":
            break
    streams.close()
    print(json.dumps({"closed": True}), flush=True)


def arm(sockets: list[socket.socket], marker: bytes, timeout: float,
        ready: Any = None) -> list[float | None]:
    """Each socket's arrival time of the first bytes that complete `marker`, or None.

    One epoll loop in this thread (gevent's hub is not running meanwhile): a
    readable socket costs one read and one search, so the client adds
    microseconds, not a greenlet switch, to each subscriber's latency.
    """
    from gevent import monkey as _monkey

    epoll_class = _monkey.get_original("select", "epoll")
    poller = epoll_class()
    by_fd: dict[int, int] = {}
    for index, sock in enumerate(sockets):
        by_fd[sock.fileno()] = index
        poller.register(sock.fileno(), 0x001)  # EPOLLIN
    if ready is not None:
        ready()  # only now may the publisher go: every socket is watched
    arrived: list[float | None] = [None] * len(sockets)
    tails = [b""] * len(sockets)
    waiting = len(sockets)
    keep = len(marker) - 1
    deadline = time.monotonic() + timeout
    try:
        while waiting and time.monotonic() < deadline:
            for fd, _mask in poller.poll(0.2):
                index = by_fd[fd]
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                now = time.time()
                if not data:
                    poller.unregister(fd)
                    continue
                if arrived[index] is None:
                    seen = tails[index] + data
                    if marker in seen:
                        arrived[index] = now
                        waiting -= 1
                    else:
                        tails[index] = seen[-keep:] if keep else b""
    finally:
        poller.close()
    return arrived


def fanout(url: str) -> None:
    streams = IdleStreams(url)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "open":
            open_command(streams, args)
        elif command == "arm":
            times = arm(streams.sockets, args[0].encode(), float(args[1]),
                        ready=lambda: print(json.dumps({"armed": True}), flush=True))
            print(json.dumps({"times": times}), flush=True)
        elif command == "close":
            break
    streams.close()
    print(json.dumps({"closed": True}), flush=True)


def watch(base: str, urls: list[str], timeout: float) -> dict[str, Any]:
    """Every snapshot of every stream, with its arrival time on this machine's clock."""
    limits = httpx.Limits(max_connections=len(urls) + 5)
    with httpx.Client(base_url=base, limits=limits, timeout=httpx.Timeout(timeout, connect=10)) as client:

        def follow_one(url: str) -> dict[str, Any]:
            seen: dict[str, Any] = {"snapshots": [], "done": False}
            try:
                with connect_sse(client, "GET", url) as source:
                    source.response.raise_for_status()
                    for event in source.iter_sse():
                        arrived = time.time()
                        if event.event == "message":
                            data = json.loads(event.data)
                            progress = data.get("progress") or {}
                            seen["snapshots"].append({
                                "arrived": arrived, "id": event.id, "status": data["status"],
                                "current": progress.get("current"), "total": progress.get("total"),
                                "created_at": data.get("created_at"), "started_at": data.get("started_at"),
                                "completed_at": data.get("completed_at")})
                        elif event.event == "done":
                            seen["done"] = True
                            break
            except Exception as error:  # reported, not raised
                seen["error"] = f"{type(error).__name__}: {error}"
            return seen

        jobs = [gevent.spawn(follow_one, url) for url in urls]
        gevent.joinall(jobs, timeout=timeout)
        return {"streams": [job.value or {"error": "timed out", "snapshots": []} for job in jobs]}


class Churn:
    """Connect with a Last-Event-ID, read the replay's first event, hang up; over and over."""

    def __init__(self, url: str, resume: bool = True) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.target = parts.path + (f"?{parts.query}" if parts.query else "")
        self.resume = resume
        self.ids: list[str] = []
        self.failures: list[str] = []
        self.done = 0
        self.follower = gevent.spawn(self._follow) if resume else None

    def _follow(self) -> None:
        """One long-lived stream that collects the prediction's event ids as they are published."""
        sock = socket.create_connection(self.address, timeout=None)
        sock.sendall(stream_request(self.address, self.target))
        pending = b""
        while True:
            data = sock.recv(65536)
            if not data:
                return
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.startswith(b"id: "):
                    self.ids.append(line[4:].strip().decode())
                    del self.ids[:-200]

    def wait_for_ids(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.ids) < count and time.monotonic() < deadline:
            gevent.sleep(0.05)
        if len(self.ids) < count:
            raise RuntimeError(f"the follower saw only {len(self.ids)} event ids")

    def _cycle(self) -> None:
        sock = socket.create_connection(self.address, timeout=30)
        try:
            if self.resume:
                # An id some events back (the history holds 256): the replay starts with the next one.
                last_id = random.choice(self.ids[-100:-2])
                sock.sendall(stream_request(self.address, self.target, {"Last-Event-ID": last_id}))
                read_first_bytes(sock, until=b"\nid: ")
            else:  # a server without resume: its first event will do
                sock.sendall(stream_request(self.address, self.target))
                read_first_bytes(sock, until=b"data: ")
        except Exception as error:
            self.failures.append(f"{type(error).__name__}: {error}")
        finally:
            sock.close()
            self.done += 1

    def run(self, count: int, concurrency: int) -> None:
        pool = gevent.pool.Pool(concurrency)
        for _ in range(count):
            pool.spawn(self._cycle)
        pool.join(timeout=600)


def churn(url: str, resume: bool) -> None:
    cycles = Churn(url, resume)
    if resume:
        cycles.wait_for_ids(10)
    print(json.dumps({"ready": True, "ids": len(cycles.ids)}), flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "cycles":
            started = time.monotonic()
            failed_before = len(cycles.failures)
            cycles.run(int(args[0]), int(args[1]))
            print(json.dumps({"done": cycles.done, "failures": len(cycles.failures) - failed_before,
                              "failure_kinds": sorted(set(cycles.failures))[:5],
                              "seconds": round(time.monotonic() - started, 3)}), flush=True)
        elif command == "close":
            break
    if cycles.follower is not None:
        cycles.follower.kill()
    print(json.dumps({"closed": True}), flush=True)


def ttfb(url: str, count: int, body: str | None, pause: float, token: str | None = None) -> dict[str, Any]:
    """Time to the first byte of the answer and to its first body bytes, each on a new connection."""
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or 80)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    if body is None:
        request = stream_request(address, target)
    else:
        payload = body.encode()
        request = (f"POST {target} HTTP/1.1\r\nHost: {address[0]}:{address[1]}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                   + (f"Authorization: Bearer {token}\r\n" if token else "")
                   + "Connection: close\r\n\r\n").encode() + payload
    first_byte, first_body, statuses = [], [], []
    for _ in range(count):
        started = time.perf_counter()
        sock = socket.create_connection(address, timeout=30)
        try:
            sock.sendall(request)
            received = sock.recv(65536)
            first_byte.append(time.perf_counter() - started)
            while True:
                end = received.find(b"\r\n\r\n")
                # A stream: until its first body bytes. A POST (Connection: close): the whole answer.
                if body is None and end >= 0 and len(received) > end + 4:
                    break
                more = sock.recv(65536)
                if not more:
                    break
                received += more
            first_body.append(time.perf_counter() - started)
            statuses.append(received[9:12].decode(errors="replace"))
        finally:
            sock.close()
        if pause:
            gevent.sleep(pause)
    return {"first_byte_s": first_byte, "first_body_s": first_body,
            "statuses": {code: statuses.count(code) for code in set(statuses)}}


def main() -> None:
    raise_file_limit(WANTED_FILES)
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["follow", "poll", "idle", "fanout", "watch", "churn", "ttfb"])
    parser.add_argument("--base", help="Relay's URL (follow) or the Replicate API's URL (poll)")
    parser.add_argument("--url", help="the stream URL (idle)")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument("--input", default="{}", help="the prediction's input, as JSON")
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--urls", default="[]", help="stream URLs, as a JSON list (watch)")
    parser.add_argument("--body", help="a JSON body to POST (ttfb)")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between requests (ttfb)")
    parser.add_argument("--token", help="a bearer token to send with the POST (ttfb)")
    parser.add_argument("--no-resume", action="store_true", help="churn without Last-Event-ID (servers without ids)")
    args = parser.parse_args()
    if args.mode == "follow":
        print(json.dumps(follow(args.base, args.count, json.loads(args.input), args.timeout)))
    elif args.mode == "poll":
        print(json.dumps(poll(args.base, args.count, args.interval, json.loads(args.input), args.timeout,
                              args.token)))
    elif args.mode == "fanout":
        fanout(args.url)
    elif args.mode == "watch":
        print(json.dumps(watch(args.base, json.loads(args.urls), args.timeout)))
    elif args.mode == "churn":
        churn(args.url, not args.no_resume)
    elif args.mode == "ttfb":
        print(json.dumps(ttfb(args.url, args.count, args.body, args.pause, args.token)))
    else:
        idle(args.url)


if __name__ == "__main__":
    main()
