"""Browser tests: a real gunicorn + gevent Relay, the page in headless Chromium.

Fixtures here are named apart from tests/conftest.py's (`relay_site`, not
`relay_server`) so the two suites never shadow each other.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed import ROOT, SiteServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def server_is_present() -> bool:
    init = ROOT / "relay" / "__init__.py"
    return (ROOT / "wsgi.py").exists() and init.exists() and "def create_app" in init.read_text()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        reason = f"Chromium is not installed at {CHROMIUM}; browser tests need it"
        if os.environ.get("RELAY_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    if not server_is_present():
        pytest.skip("the server (relay.create_app and wsgi.py) is not in this tree yet")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def relay_site(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteServer]:
    """One server shared by the tests that do not break it."""
    site = SiteServer(tmp_path_factory.mktemp("relay-site")).start()
    yield site
    site.stop()


@pytest.fixture
def own_site(browser: Any, tmp_path: Path) -> Iterator[SiteServer]:
    """A server for one test, which it may kill and restart."""
    site = SiteServer(tmp_path)
    yield site
    site.stop()


class PageProblems:
    """Console errors and uncaught exceptions seen on a page."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def exception(self, error: Any) -> None:
        self.errors.append(f"uncaught: {error}")


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """Open pages in fresh contexts; each page gets a `.problems` list of console errors."""
    contexts: list[Any] = []

    def open_page(viewport: dict[str, int] | None = None) -> Any:
        context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.problems = PageProblems()
        page.on("console", page.problems.console)
        page.on("pageerror", page.problems.exception)
        page.set_default_timeout(15000)
        return page

    yield open_page
    for context in contexts:
        context.close()


class FreezableProxy:
    """A TCP proxy whose chosen connections can be frozen: sockets stay open, no byte moves.

    That is what a dead NAT mapping or a wedged middlebox looks like to a
    browser: no error, no close, just silence.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections: list[dict[str, Any]] = []
        self.request_lines: list[str] = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            thawed = threading.Event()
            thawed.set()
            connection = {"client": client, "upstream": upstream, "thawed": thawed, "request": ""}
            with self.lock:
                self.connections.append(connection)
            for source, sink, from_browser in ((client, upstream, True), (upstream, client, False)):
                pump_args = (connection, source, sink, from_browser)
                threading.Thread(target=self._pump, args=pump_args, daemon=True).start()

    def _pump(self, connection: dict[str, Any], source: socket.socket, sink: socket.socket,
              from_browser: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    sink.shutdown(socket.SHUT_WR)
                    return
                if from_browser:
                    self._note_request(connection, data)
                connection["thawed"].wait()  # a frozen connection holds its bytes until close()
                if self.closed:
                    return
                sink.sendall(data)
        except OSError:
            return

    def _note_request(self, connection: dict[str, Any], data: bytes) -> None:
        match = re.match(rb"(GET|POST|HEAD|PUT|DELETE|OPTIONS) (\S+)", data)
        if match:
            line = match.group(0).decode("latin-1")
            connection["request"] = line
            with self.lock:
                self.request_lines.append(line)

    def freeze(self, path_fragment: str) -> int:
        """Freeze every open connection whose latest request names `path_fragment`."""
        with self.lock:
            chosen = [c for c in self.connections if path_fragment in c["request"]]
        for connection in chosen:
            connection["thawed"].clear()
        return len(chosen)

    def requests_for(self, path_fragment: str) -> int:
        with self.lock:
            return sum(1 for line in self.request_lines if path_fragment in line)

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        with self.lock:
            connections = list(self.connections)
        for connection in connections:
            connection["thawed"].set()  # release frozen pumps: they see `closed` and return
            for sock in (connection["client"], connection["upstream"]):
                try:
                    sock.close()
                except OSError:
                    pass


@pytest.fixture
def freezable_proxy() -> Iterator[Callable[[int], FreezableProxy]]:
    proxies: list[FreezableProxy] = []

    def make(target_port: int) -> FreezableProxy:
        proxy = FreezableProxy(target_port)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


@pytest.fixture
def screenshot_path(tmp_path: Path) -> Path:
    """docs/screenshot.png when RELAY_UPDATE_SCREENSHOT=1, otherwise a temporary file."""
    if os.environ.get("RELAY_UPDATE_SCREENSHOT") == "1":
        return ROOT / "docs" / "screenshot.png"
    return tmp_path / "screenshot.png"

