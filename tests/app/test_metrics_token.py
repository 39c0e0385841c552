"""RELAY_METRICS_TOKEN closes /metrics to anyone without the token; unset, it stays open."""

from __future__ import annotations

from pathlib import Path

from relay import create_app
from testbed import TEST_SECRET


def _client(tmp_path: Path, **env: str):  # type: ignore[no-untyped-def]
    app = create_app({"SECRET_KEY": TEST_SECRET, "INSTANCE_PATH": str(tmp_path), **env})
    return app.test_client()


def test_metrics_need_the_token_when_one_is_set(tmp_path: Path) -> None:
    client = _client(tmp_path, RELAY_METRICS_TOKEN="m3trics-t0ken")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "m3trics-t0ke"}):
        answer = client.get("/metrics", headers=headers)
        assert answer.status_code == 403
        assert answer.get_json()["code"] == "metrics_token_required"
    answer = client.get("/metrics", headers={"Authorization": "Bearer m3trics-t0ken"})
    assert answer.status_code == 200 and b"relay_" in answer.data


def test_metrics_are_open_without_a_token(tmp_path: Path) -> None:
    assert _client(tmp_path).get("/metrics").status_code == 200
