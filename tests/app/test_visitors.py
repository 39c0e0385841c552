"""The relay_visitor cookie: set once, signed, and read back (relay/visitors.py describes it)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from relay import create_app
from relay.visitors import COOKIE, current_visitor


def _app(tmp_path: Path) -> Flask:
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "visitor-test-secret-0123456789"})

    @app.get("/whoami")
    def whoami() -> dict[str, object]:
        visitor = current_visitor()
        return {"id": visitor.id, "fresh": visitor.fresh, "keys": list(visitor.counted_as)}

    return app


def test_a_request_without_a_cookie_gets_one_that_is_httponly_and_lax(tmp_path: Path) -> None:
    client = _app(tmp_path).test_client()
    answer = client.get("/whoami")
    header = answer.headers["Set-Cookie"]
    assert header.startswith(f"{COOKIE}=") and "HttpOnly" in header and "SameSite=Lax" in header
    assert "Secure" not in header  # plain HTTP
    assert answer.json is not None and answer.json["fresh"] is True
    assert answer.json["keys"] == [f"v:{answer.json['id']}", "a:127.0.0.1"]


def test_the_cookie_is_read_back_and_not_set_again(tmp_path: Path) -> None:
    client = _app(tmp_path).test_client()
    first = client.get("/whoami").json
    second = client.get("/whoami")
    assert "Set-Cookie" not in second.headers
    assert second.json is not None and first is not None
    assert second.json == {"id": first["id"], "fresh": False, "keys": [f"v:{first['id']}"]}


def test_a_forged_cookie_is_replaced(tmp_path: Path) -> None:
    client = _app(tmp_path).test_client()
    client.set_cookie(COOKIE, "someone-else.forged-signature")
    answer = client.get("/whoami")
    assert answer.json is not None and answer.json["fresh"] is True
    assert COOKIE in answer.headers["Set-Cookie"]


def test_over_https_the_cookie_is_secure(tmp_path: Path) -> None:
    answer = _app(tmp_path).test_client().get("/whoami", base_url="https://relay.example")
    assert "Secure" in answer.headers["Set-Cookie"]


def test_error_answers_set_the_cookie_too(tmp_path: Path) -> None:
    answer = _app(tmp_path).test_client().post("/api/predictions", data="not json",
                                               headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert COOKIE in answer.headers.get("Set-Cookie", "")


def test_only_requests_that_ask_who_is_visiting_or_answer_a_page_set_the_cookie(tmp_path: Path) -> None:
    # A reconnect storm of streams must not sign thousands of cookies (bench/open_burst.py).
    client = _app(tmp_path).test_client()
    assert "Set-Cookie" not in client.get("/healthz").headers
    assert "Set-Cookie" not in client.get("/api/models").headers
    page = client.get("/")
    assert page.mimetype == "text/html" and COOKIE in page.headers["Set-Cookie"]
    assert "Set-Cookie" not in client.get("/").headers  # read back, not set again
