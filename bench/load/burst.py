"""Many SSE streams opened at the same moment, timed one by one: a deploy's reconnect storm.

    python -m bench.load.burst --url URL
        commands on stdin, one JSON answer a line:
        `burst N` opens N streams at once and answers, for each, the time from
        its own `connect` to the first byte of the answer and to its first body
        bytes (seconds), and any failures; the streams stay open.
        `hangup` closes every stream (then `burst` may run again); `follow URL`
        makes later bursts open URL instead; `close` ends.

One thread and one epoll loop, no gevent: every socket is non-blocking, all N
connects are issued first, and a socket costs the loop one send and a read or
two. So the client adds microseconds per stream, and what the times show is the
server (its accept loop, the work of each open, the listen backlog) under the
whole burst at once.
"""

from __future__ import annotations

import argparse
import errno
import json
import select
import socket
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from bench.common.servers import WANTED_FILES
from testbed.process import raise_file_limit

_OUT, _IN = select.EPOLLOUT, select.EPOLLIN


class Burst:
    def __init__(self, url: str) -> None:
        self.follow(url)
        self.open: list[socket.socket] = []

    def follow(self, url: str) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        self.request = (f"GET {target} HTTP/1.1\r\nHost: {self.address[0]}:{self.address[1]}\r\n"
                        "Accept: text/event-stream\r\n\r\n").encode()

    def run(self, count: int, timeout: float = 120) -> dict[str, Any]:
        poller = select.epoll()
        started: dict[int, float] = {}
        first_byte: dict[int, float] = {}
        first_body: dict[int, float] = {}
        received: dict[int, bytes] = {}
        sockets: dict[int, socket.socket] = {}
        failures: list[str] = []
        burst_started = time.perf_counter()
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            fd = sock.fileno()
            started[fd] = time.perf_counter()
            code = sock.connect_ex(self.address)
            if code not in (0, errno.EINPROGRESS):
                failures.append(f"connect: {errno.errorcode.get(code, code)}")
                sock.close()
                continue
            sockets[fd] = sock
            received[fd] = b""
            poller.register(fd, _OUT)
        connects_issued = time.perf_counter() - burst_started
        waiting = len(sockets)
        deadline = time.monotonic() + timeout
        while waiting and time.monotonic() < deadline:
            for fd, mask in poller.poll(0.5):
                sock = sockets[fd]
                if mask & _OUT:
                    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if error:
                        failures.append(f"connect: {errno.errorcode.get(error, error)}")
                        poller.unregister(fd)
                        waiting -= 1
                        continue
                    sock.send(self.request)  # a few hundred bytes: an empty send buffer takes them whole
                    poller.modify(fd, _IN)
                    continue
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                now = time.perf_counter()
                if fd not in first_byte:
                    first_byte[fd] = now - started[fd]
                if not data:
                    failures.append("closed before the first body bytes")
                    poller.unregister(fd)
                    waiting -= 1
                    continue
                received[fd] += data
                head_end = received[fd].find(b"\r\n\r\n")
                if head_end >= 0 and len(received[fd]) > head_end + 4:
                    if not received[fd].startswith(b"HTTP/1.1 200"):
                        failures.append(received[fd].split(b"\r\n", 1)[0].decode(errors="replace"))
                    first_body[fd] = now - started[fd]
                    poller.unregister(fd)
                    waiting -= 1
        poller.close()
        if waiting:
            failures.extend(["no first body bytes before the deadline"] * waiting)
        self.open.extend(sockets[fd] for fd in first_body)
        for fd, sock in sockets.items():
            if fd not in first_body:
                sock.close()
        return {"count": count, "opened": len(first_body), "failures": len(failures),
                "failure_kinds": sorted(set(failures))[:5],
                "connects_issued_s": round(connects_issued, 4),
                "all_open_s": round(time.perf_counter() - burst_started, 4),
                "first_byte_s": [first_byte[fd] for fd in first_body],
                "first_body_s": [first_body[fd] for fd in first_body]}

    def close(self) -> None:
        for sock in self.open:
            sock.close()
        self.open.clear()


def main() -> None:
    raise_file_limit(WANTED_FILES)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the stream URL")
    args = parser.parse_args()
    burst = Burst(args.url)
    for line in sys.stdin:
        command, *rest = line.split()
        if command == "burst":
            print(json.dumps(burst.run(int(rest[0]))), flush=True)
        elif command == "hangup":
            burst.close()
            print(json.dumps({"hung_up": True}), flush=True)
        elif command == "follow":
            burst.follow(rest[0])
            print(json.dumps({"following": rest[0]}), flush=True)
        elif command == "close":
            break
    burst.close()
    print(json.dumps({"closed": True}), flush=True)


if __name__ == "__main__":
    main()
