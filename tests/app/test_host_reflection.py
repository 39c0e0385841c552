"""A forged Host header never reaches a Location header or the embed snippet."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from testbed import RelayServer

EVIL = {"Host": "evil.example"}


def test_double_slashes_are_not_redirected_to_the_requested_host(api: httpx.Client) -> None:
    for path in ("/api//models", "//api/models", "/embed//demo"):
        answer = api.get(path, headers=EVIL)
        assert "evil.example" not in answer.headers.get("location", ""), path
        assert answer.status_code == 404, (path, answer.status_code)
        assert answer.json()["success"] is False


def test_the_embed_demo_names_relay_public_url_whatever_the_host(
        start_server: Callable[..., RelayServer]) -> None:
    server = start_server({"RELAY_PUBLIC_URL": "https://relay.example.org"})
    page = httpx.get(server.url + "/embed/demo", headers=EVIL)
    assert page.status_code == 200
    assert "evil.example" not in page.text
    assert 'data-relay-src="https://relay.example.org"' in page.text


def test_without_a_public_url_a_host_that_is_not_a_host_is_not_written(api: httpx.Client) -> None:
    page = api.get("/embed/demo", headers={"Host": 'evil.example"><b>x'})
    assert '"><b>' not in page.text and "evil.example" not in page.text
