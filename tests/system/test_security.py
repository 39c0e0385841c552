"""Relay's defaults on the open internet: headers, cross-site refusal, CORS, proxies, tokens in logs.

Every test here attacks a real gunicorn + gevent server from the outside.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay.security import content_security_policy, cross_site_refusal
from testbed import TEST_SECRET, FlaskDevServer, RelayServer, wait_until
from testbed.sse import follow

IMAGE = {"prompt": "a lighthouse", "steps": 3, "step_delay": 0.01, "boot_delay": 0}
SLOW = {"prompt": "slow", "steps": 200, "step_delay": 0.05, "boot_delay": 0}
CSP = ("default-src 'self'; img-src 'self' data: https://replicate.delivery https://*.replicate.delivery; "
       "script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'")


def create(client: httpx.Client, path: str = "/api/predictions", headers: dict[str, str] | None = None,
           **input: Any) -> httpx.Response:
    return client.post(path, json={"model": "relay/image-demo", "input": input or IMAGE}, headers=headers)


def upstream_creates(client: httpx.Client) -> int:
    """Create calls the embedded emulator has received (by model or by version)."""
    stats = client.get("/emulator/_emulator/stats").json()
    return sum(n for route, n in stats.items() if route.startswith("POST ") and route.endswith("/predictions"))


def assert_error(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body == {"success": False, "error": body["error"], "code": code}
    assert len(body["error"]) > 10


def assert_protective_headers(answer: httpx.Response, csp: str = CSP) -> None:
    headers = answer.headers
    assert headers["Content-Security-Policy"] == csp, answer.request.url
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "Strict-Transport-Security" not in headers  # plain HTTP, no trusted proxy saying otherwise


# -- headers ------------------------------------------------------------------------------------

def test_every_kind_of_response_carries_the_security_headers(api: httpx.Client) -> None:
    created = create(api)
    assert created.status_code == 201
    stream_url = created.json()["stream_url"]
    answers = [
        created,
        api.get("/"), api.get("/api/models"), api.get("/healthz"), api.get("/metrics"), api.get("/openapi.yaml"),
        api.get("/static/app.js"), api.get("/no/such/page"), api.put("/api/predictions"),
        api.post("/api/predictions", content=b"{", headers={"content-type": "application/json"}),
        api.get("/api/predictions/x/events?token=forged"),
        api.post("/api/predictions/x/cancel?token=forged"),
        api.post("/api/webhooks/replicate", content=b"{}"),
    ]
    for answer in answers:
        assert_protective_headers(answer)
        assert answer.headers["X-Frame-Options"] == "DENY"
    # The stream too, with its own headers intact and nothing that would buffer or compress it.
    with api.stream("GET", stream_url, headers={"Accept-Encoding": "gzip, br"}) as stream:
        assert stream.status_code == 200
        assert_protective_headers(stream)
        assert stream.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        assert stream.headers["Cache-Control"] == "no-cache"
        assert stream.headers["X-Accel-Buffering"] == "no"
        assert "Content-Encoding" not in stream.headers
        body = stream.read()
    assert b"event: done" in body
    last = follow(api, stream_url)[-1].id
    finished = api.get(stream_url, headers={"Last-Event-ID": last})
    assert finished.status_code == 204
    assert_protective_headers(finished)


def test_only_embed_may_be_framed_and_only_by_the_configured_origins() -> None:
    embed = content_security_policy("/embed", embed_origins=["https://blog.example", "https://x.example:8443"])
    assert "frame-ancestors 'self' https://blog.example https://x.example:8443;" in embed
    for path in ("/", "/embed/demo", "/embedded", "/api/models", "/static/embed.js"):
        assert "frame-ancestors 'none';" in content_security_policy(path, embed_origins=["https://blog.example"])
    assert "frame-ancestors 'self';" in content_security_policy("/embed")


def test_embed_framing_policy_on_a_live_server(start_server: Callable[..., RelayServer]) -> None:
    server = start_server({"RELAY_EMBED_ORIGINS": "https://blog.example, https://shop.example"})
    with httpx.Client(base_url=server.url) as client:
        embed = client.get("/embed")
        assert "frame-ancestors 'self' https://blog.example https://shop.example;" \
            in embed.headers["Content-Security-Policy"]
        assert "X-Frame-Options" not in embed.headers
        page = client.get("/")
        assert_protective_headers(page)
        assert page.headers["X-Frame-Options"] == "DENY"


def test_hsts_only_when_a_trusted_proxy_says_the_request_came_over_https(
        api: httpx.Client, start_server: Callable[..., RelayServer]) -> None:
    # No trusted proxy: a client cannot claim HTTPS.
    assert "Strict-Transport-Security" not in api.get("/", headers={"X-Forwarded-Proto": "https"}).headers
    server = start_server({"RELAY_TRUSTED_PROXIES": "1"})
    with httpx.Client(base_url=server.url) as client:
        secure = client.get("/api/models", headers={"X-Forwarded-Proto": "https"})
        assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
        assert "Strict-Transport-Security" not in client.get("/api/models").headers
        assert "Strict-Transport-Security" not in client.get(
            "/api/models", headers={"X-Forwarded-Proto": "http"}).headers


class _Markup(HTMLParser):
    """Collects what a CSP without 'unsafe-inline' would block."""

    def __init__(self) -> None:
        super().__init__()
        self.inline_scripts = 0
        self.handlers: list[str] = []
        self.styles: list[str] = []
        self.sources: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        self.handlers += [name for name, _ in attrs if name.startswith("on")]
        if "style" in names:
            self.styles.append(tag)
        if tag == "style":
            self.styles.append("<style>")
        for name in ("src", "href", "action"):
            value = names.get(name)
            if value is not None:
                self.sources.append(value)
        if tag == "script":
            if names.get("src"):
                self._in_script = False
            else:
                self._in_script = True
                self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False


@pytest.mark.parametrize("path", ["/", "/embed"])
def test_pages_load_under_the_csp_with_no_inline_script_or_style(api: httpx.Client, path: str) -> None:
    page = api.get(path)
    if path == "/embed" and page.status_code == 404:
        pytest.skip("/embed is not served by this checkout")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self';" in page.headers["Content-Security-Policy"]
    markup = _Markup()
    markup.feed(page.text)
    assert markup.inline_scripts == 0, "an inline <script> would be blocked by script-src 'self'"
    assert markup.handlers == [], f"inline event handlers would be blocked: {markup.handlers}"
    assert markup.styles == [], f"inline styles would be blocked by style-src 'self': {markup.styles}"
    assert not any(s.strip().lower().startswith("javascript:") for s in markup.sources)
    # Every script and stylesheet is served from Relay itself, so 'self' covers it.
    for source in markup.sources:
        assert not re.match(r"^(https?:)?//", source), source
    for script in re.findall(r'<script[^>]*\bsrc="([^"]+)"', page.text):
        assert api.get(script).status_code == 200, script


# -- cross-site requests -----------------------------------------------------------------------

def test_cross_site_rule_as_a_function() -> None:
    own, allowed = {"https://relay.example"}, {"https://app.example"}
    cases: list[tuple[dict[str, str], bool]] = [
        ({}, True),
        ({"Sec-Fetch-Site": "same-origin"}, True),
        ({"Sec-Fetch-Site": "none"}, True),
        ({"Sec-Fetch-Site": "same-site"}, False),
        ({"Sec-Fetch-Site": "cross-site"}, False),
        ({"Sec-Fetch-Site": "something-new"}, False),
        ({"Sec-Fetch-Site": "cross-site", "Origin": "https://app.example"}, True),
        ({"Sec-Fetch-Site": "cross-site", "Origin": "https://APP.example:443"}, True),
        ({"Origin": "https://relay.example"}, True),
        ({"Origin": "https://relay.example:443"}, True),
        ({"Origin": "http://relay.example"}, False),
        ({"Origin": "https://relay.example.evil.example"}, False),
        ({"Origin": "null"}, False),
        ({"Origin": "garbage"}, False),
        ({"Origin": "https://relay.example:99999"}, False),
    ]
    for headers, allowed_through in cases:
        assert (cross_site_refusal(headers, own, allowed) is None) is allowed_through, headers


REFUSED = [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
]


@pytest.mark.parametrize("headers", REFUSED)
@pytest.mark.parametrize("path", ["/api/predictions", "/api/prediction"])
def test_cross_site_creates_are_refused_and_reach_nothing(api: httpx.Client, relay_server: RelayServer,
                                                          path: str, headers: dict[str, str]) -> None:
    before = upstream_creates(api)
    assert_error(create(api, path, headers), 403, "cross_site")
    # Even a body that would be refused anyway: the cross-site check comes first.
    answer = api.post(path, content=b"not json", headers={**headers, "content-type": "application/json"})
    assert_error(answer, 403, "cross_site")
    assert upstream_creates(api) == before


def test_cross_site_cancel_is_refused(api: httpx.Client) -> None:
    created = create(api, **SLOW).json()
    for headers in REFUSED:
        assert_error(api.post(created["cancel_url"], headers=headers), 403, "cross_site")
    assert api.post(created["cancel_url"]).json()["status"] in ("canceled", "canceling")


@pytest.mark.parametrize("headers", [
    {},  # curl, a server: no browser is involved
    {"Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Site": "none"},
    {"Origin": "{own}"},
    {"Origin": "{own}", "Sec-Fetch-Site": "same-origin"},
])
def test_same_origin_and_non_browser_creates_are_accepted(api: httpx.Client, relay_server: RelayServer,
                                                          headers: dict[str, str]) -> None:
    headers = {k: v.replace("{own}", relay_server.url) for k, v in headers.items()}
    assert create(api, headers=headers).status_code == 201


def test_the_webhook_is_exempt_from_the_cross_site_check(api: httpx.Client) -> None:
    answer = api.post("/api/webhooks/replicate", content=b"{}",
                      headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
    assert_error(answer, 400, "invalid_webhook")  # judged on its signature, not on where it came from


def test_origin_check_follows_the_scheme_a_trusted_proxy_reports(start_server: Callable[..., RelayServer]) -> None:
    server = start_server({"RELAY_TRUSTED_PROXIES": "1"})
    https_origin = server.url.replace("http://", "https://")
    with httpx.Client(base_url=server.url) as client:
        behind_tls = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
        assert create(client, headers={**behind_tls, "Origin": https_origin}).status_code == 201
        assert_error(create(client, headers={**behind_tls, "Origin": server.url}), 403, "cross_site")
        # The host is never taken from X-Forwarded-Host: it cannot make a foreign origin look like ours.
        forged = {**behind_tls, "X-Forwarded-Host": "evil.example", "Origin": "https://evil.example"}
        assert_error(create(client, headers=forged), 403, "cross_site")


# -- CORS -----------------------------------------------------------------------------------------

def preflight(client: httpx.Client, origin: str, path: str = "/api/predictions") -> httpx.Response:
    return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                         "Access-Control-Request-Headers": "content-type"})


def test_cors_is_closed_by_default(api: httpx.Client) -> None:
    answer = preflight(api, "https://app.example")
    assert "Access-Control-Allow-Origin" not in answer.headers
    assert "Access-Control-Allow-Origin" not in api.get("/api/models", headers={"Origin": "https://app.example"}).headers


def test_cors_opens_only_to_the_configured_origins(start_server: Callable[..., RelayServer]) -> None:
    server = start_server({"RELAY_CORS_ORIGINS": "https://app.example,https://other.example:8443"})
    app = {"Origin": "https://app.example", "Sec-Fetch-Site": "cross-site"}
    with httpx.Client(base_url=server.url) as client:
        allowed = preflight(client, "https://app.example")
        assert allowed.status_code == 204
        assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
        assert "content-type" in allowed.headers["Access-Control-Allow-Headers"].lower()
        refused = preflight(client, "https://evil.example")
        assert "Access-Control-Allow-Origin" not in refused.headers
        assert "Access-Control-Allow-Methods" not in refused.headers

        created = create(client, headers=app)
        assert created.status_code == 201
        assert created.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "Origin" in created.headers["Vary"]
        stream = client.get(created.json()["stream_url"], headers=app)
        assert stream.status_code == 200 and stream.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert_error(create(client, headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}),
                     403, "cross_site")
        foreign = client.get("/api/models", headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in foreign.headers and "Origin" in foreign.headers["Vary"]


# -- tokens in logs -------------------------------------------------------------------------------

def exercise_tokens(client: httpx.Client) -> list[str]:
    """Create, stream, resume, multiplex and cancel; the tokens that travelled in URLs."""
    done = create(client).json()
    events = follow(client, done["stream_url"])
    client.get(done["stream_url"], headers={"Last-Event-ID": events[0].id})
    slow = create(client, **SLOW).json()
    token = slow["stream_url"].split("token=")[1]
    with client.stream("GET", f"/api/events?watch={token}&watch={done['stream_url'].split('token=')[1]}") as many:
        assert many.status_code == 200
        next(many.iter_bytes())
    with client.stream("GET", f"/api/prediction?id={slow['id']}&token={token}") as seed:
        assert seed.status_code == 200
    assert client.post(slow["cancel_url"]).status_code == 200
    client.get(f"/api/predictions/{slow['id']}/events?token={token}x")  # a refused one, too
    return [url.split("token=")[1] for p in (done, slow) for url in (p["stream_url"], p["cancel_url"])]


def test_tokens_never_reach_the_gunicorn_logs(api: httpx.Client, relay_server: RelayServer) -> None:
    tokens = exercise_tokens(api)
    wait_until(lambda: relay_server.log().count("/cancel") >= 1 and "POST /api/predictions" in relay_server.log())
    log = relay_server.log()
    for token in tokens:
        assert token not in log
        assert token.split(".")[-1] not in log  # not even the signature part
    assert "token=" not in log or "token=[redacted]" in log


def test_tokens_never_reach_the_dev_server_logs(tmp_path: Path) -> None:
    """`flask run` (werkzeug) logs the request line with its query string; Relay blanks the tokens."""
    server = FlaskDevServer({"SECRET_KEY": TEST_SECRET, "RELAY_INSTANCE_PATH": str(tmp_path / "i"),
                             "RELAY_RATE_LIMIT": "1000/minute", "RELAY_HEARTBEAT_INTERVAL": "1",
                             "RELAY_POLL_INTERVAL": "0.1"})
    with server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            tokens = exercise_tokens(client)
        wait_until(lambda: "token=[redacted]" in server.log() and "/cancel" in server.log())
    log = server.log()
    assert "GET /api/predictions/" in log  # the request lines are there...
    for token in tokens:
        assert token not in log  # ...without their tokens
    assert "watch=[redacted]" in log


def test_embedded_emulator_api_is_for_the_app_only(tmp_path: Path) -> None:
    """Only the app itself (a loopback peer) may use the embedded emulator's API; anyone may fetch its files."""
    from relay import create_app

    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "k" * 32})
    client = app.test_client()
    outside = {"REMOTE_ADDR": "203.0.113.7"}
    api = client.get("/emulator/v1/predictions", environ_base=outside)
    assert api.status_code == 404 and api.json == {
        "success": False, "code": "not_found", "error": "There is nothing at this address."}
    # The same request from loopback reaches the emulator (which wants a token: its own 401).
    inside = client.get("/emulator/v1/predictions", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert inside.status_code == 401 and inside.content_type.startswith("application/problem+json")
    # Output files are the emulator's to answer for anyone (here: an unknown file, its own 404).
    files = client.get("/emulator/files/nope/output.png", environ_base=outside)
    assert files.status_code == 404 and files.content_type.startswith("application/problem+json")
