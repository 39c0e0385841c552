"""Relay's defaults on the open internet, in-process: headers, cross-site refusal, CORS, proxies.

The app runs in this process (tests/app/conftest.py); what a real server adds (its
logs, gunicorn's own answers) is tested in tests/system/test_security.py.
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
from testbed.checks import assert_error, upstream_creates
from testbed.inprocess import BASE_URL
from testbed.sse import follow

IMAGE = {"prompt": "a lighthouse", "steps": 3, "step_delay": 0.01, "boot_delay": 0}
SLOW = {"prompt": "slow", "steps": 200, "step_delay": 0.05, "boot_delay": 0}
DATA_CSP = "default-src 'none'; frame-ancestors 'none'"
CSP = ("default-src 'self'; img-src 'self' data: https://replicate.delivery https://*.replicate.delivery; "
       "script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'")


def create(client: httpx.Client, path: str = "/api/predictions", headers: dict[str, str] | None = None,
           **input: Any) -> httpx.Response:
    return client.post(path, json={"model": "relay/image-demo", "input": input or IMAGE}, headers=headers)


def assert_protective_headers(answer: httpx.Response) -> None:
    headers = answer.headers
    # Pages get the page policy; JSON, streams, scripts and errors that are not HTML load nothing.
    page = headers.get("Content-Type", "").startswith("text/html")
    assert headers["Content-Security-Policy"] == (CSP if page else DATA_CSP), answer.request.url
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "Strict-Transport-Security" not in headers  # plain HTTP, no trusted proxy saying otherwise
    for name in ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options"):
        assert len(headers.get_list(name)) <= 1, f"{name} twice on {answer.request.url}"  # added, never repeated


# -- headers ------------------------------------------------------------------------------------

def test_every_kind_of_response_carries_the_security_headers(client: httpx.Client) -> None:
    created = create(client)
    assert created.status_code == 201
    stream_url = created.json()["stream_url"]
    answers = [
        created,
        client.get("/"), client.get("/api/models"), client.get("/healthz"), client.get("/metrics"),
        client.get("/openapi.yaml"),
        client.get("/static/app.js"), client.get("/no/such/page"), client.put("/api/predictions"),
        client.post("/api/predictions", content=b"{", headers={"content-type": "application/json"}),
        client.get("/api/predictions/x/events?token=forged"),
        client.post("/api/predictions/x/cancel?token=forged"),
        client.post("/api/webhooks/replicate", content=b"{}"),
    ]
    for answer in answers:
        assert_protective_headers(answer)
        assert answer.headers["X-Frame-Options"] == "DENY"
    assert answers[1].headers["Content-Security-Policy"] == CSP  # the page
    assert answers[2].headers["Content-Security-Policy"] == DATA_CSP  # JSON
    # The stream too, with its own headers intact and nothing that would buffer or compress it.
    with client.stream("GET", stream_url, headers={"Accept-Encoding": "gzip, br"}) as stream:
        assert stream.status_code == 200
        assert_protective_headers(stream)
        assert stream.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        assert stream.headers["Cache-Control"] == "no-cache"
        assert stream.headers["X-Accel-Buffering"] == "no"
        assert "Content-Encoding" not in stream.headers
        body = stream.read()
    assert b"event: done" in body
    last = follow(client, stream_url)[-1].id
    finished = client.get(stream_url, headers={"Last-Event-ID": last})
    assert finished.status_code == 204
    assert_protective_headers(finished)


def test_only_embed_may_be_framed_and_only_by_the_configured_origins() -> None:
    embed = content_security_policy("/embed", embed_origins=["https://blog.example", "https://x.example:8443"])
    assert "frame-ancestors 'self' https://blog.example https://x.example:8443;" in embed
    for path in ("/", "/embed/demo", "/embedded", "/api/models", "/static/embed.js"):
        assert "frame-ancestors 'none';" in content_security_policy(path, embed_origins=["https://blog.example"])
    assert "frame-ancestors 'self';" in content_security_policy("/embed")


def test_embed_framing_policy_on_the_app(make_client: Callable[..., httpx.Client]) -> None:
    with make_client({"RELAY_EMBED_ORIGINS": "https://blog.example, https://shop.example"}) as client:
        embed = client.get("/embed")
        assert "frame-ancestors 'self' https://blog.example https://shop.example;" \
            in embed.headers["Content-Security-Policy"]
        assert "X-Frame-Options" not in embed.headers
        page = client.get("/")
        assert_protective_headers(page)
        assert page.headers["X-Frame-Options"] == "DENY"


def test_hsts_only_when_a_trusted_proxy_says_the_request_came_over_https(
        client: httpx.Client, make_client: Callable[..., httpx.Client]) -> None:
    # No trusted proxy: a client cannot claim HTTPS.
    assert "Strict-Transport-Security" not in client.get("/", headers={"X-Forwarded-Proto": "https"}).headers
    with make_client({"RELAY_TRUSTED_PROXIES": "1"}) as client:
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
def test_pages_load_under_the_csp_with_no_inline_script_or_style(client: httpx.Client, path: str) -> None:
    page = client.get(path)
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
        assert client.get(script).status_code == 200, script


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
def test_cross_site_creates_are_refused_and_reach_nothing(client: httpx.Client,
                                                          path: str, headers: dict[str, str]) -> None:
    before = upstream_creates(client)
    assert_error(create(client, path, headers), 403, "cross_site")
    # Even a body that would be refused anyway: the cross-site check comes first.
    answer = client.post(path, content=b"not json", headers={**headers, "content-type": "application/json"})
    assert_error(answer, 403, "cross_site")
    assert upstream_creates(client) == before


def test_cross_site_cancel_is_refused(client: httpx.Client) -> None:
    created = create(client, **SLOW).json()
    for headers in REFUSED:
        assert_error(client.post(created["cancel_url"], headers=headers), 403, "cross_site")
    assert client.post(created["cancel_url"]).json()["status"] in ("canceled", "canceling")


@pytest.mark.parametrize("headers", [
    {},  # curl, a server: no browser is involved
    {"Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Site": "none"},
    {"Origin": "{own}"},
    {"Origin": "{own}", "Sec-Fetch-Site": "same-origin"},
])
def test_same_origin_and_non_browser_creates_are_accepted(client: httpx.Client,
                                                          headers: dict[str, str]) -> None:
    headers = {k: v.replace("{own}", BASE_URL) for k, v in headers.items()}
    assert create(client, headers=headers).status_code == 201


def test_the_webhook_is_exempt_from_the_cross_site_check(client: httpx.Client) -> None:
    answer = client.post("/api/webhooks/replicate", content=b"{}",
                      headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
    assert_error(answer, 400, "invalid_webhook")  # judged on its signature, not on where it came from


def test_origin_check_follows_the_scheme_a_trusted_proxy_reports(make_client: Callable[..., httpx.Client]) -> None:
    https_origin = BASE_URL.replace("http://", "https://")
    with make_client({"RELAY_TRUSTED_PROXIES": "1"}) as client:
        behind_tls = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
        assert create(client, headers={**behind_tls, "Origin": https_origin}).status_code == 201
        assert_error(create(client, headers={**behind_tls, "Origin": BASE_URL}), 403, "cross_site")
        # The host is never taken from X-Forwarded-Host: it cannot make a foreign origin look like ours.
        forged = {**behind_tls, "X-Forwarded-Host": "evil.example", "Origin": "https://evil.example"}
        assert_error(create(client, headers=forged), 403, "cross_site")


# -- CORS -----------------------------------------------------------------------------------------

def preflight(client: httpx.Client, origin: str, path: str = "/api/predictions") -> httpx.Response:
    return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                         "Access-Control-Request-Headers": "content-type"})


def test_cors_is_closed_by_default(client: httpx.Client) -> None:
    answer = preflight(client, "https://app.example")
    assert "Access-Control-Allow-Origin" not in answer.headers
    models = client.get("/api/models", headers={"Origin": "https://app.example"})
    assert "Access-Control-Allow-Origin" not in models.headers


def test_cors_opens_only_to_the_configured_origins(make_client: Callable[..., httpx.Client]) -> None:
    app = {"Origin": "https://app.example", "Sec-Fetch-Site": "cross-site"}
    with make_client({"RELAY_CORS_ORIGINS": "https://app.example,https://other.example:8443"}) as client:
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


def test_embedded_emulator_api_is_for_the_app_only(tmp_path: Path) -> None:
    """Only the app itself (a loopback peer) may use the embedded emulator's API; anyone may fetch its files."""
    from relay import create_app

    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "k" * 32})
    client = app.test_client()
    outside = {"REMOTE_ADDR": "203.0.113.7"}
    refused = client.get("/emulator/v1/predictions", environ_base=outside)
    assert refused.status_code == 404 and refused.json == {
        "success": False, "code": "not_found", "error": "There is nothing at this address."}
    # The same request from loopback reaches the emulator (which wants a token: its own 401).
    inside = client.get("/emulator/v1/predictions", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert inside.status_code == 401 and inside.content_type.startswith("application/problem+json")
    # Output files are the emulator's to answer for anyone (here: an unknown file, its own 404).
    files = client.get("/emulator/files/nope/output.png", environ_base=outside)
    assert files.status_code == 404 and files.content_type.startswith("application/problem+json")
