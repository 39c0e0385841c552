"""GET /api/runs, GET /api/runs/<id> and /files/ in process: visitors, tokens, signatures, retention."""

from __future__ import annotations

import time
from pathlib import Path

from flask import Flask

from relay import create_app
from relay.service import RelayService


def _app(tmp_path: Path, **config: str) -> tuple[Flask, RelayService]:
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "runs-test-secret-0123456789", **config})
    service = app.extensions["relay"]
    assert isinstance(service, RelayService) and service.runs is not None
    return app, service


def _record(service: RelayService, prediction_id: str, visitor: str) -> None:
    assert service.runs is not None
    service.runs.created({"id": prediction_id, "status": "starting", "version": "v" * 64,
                          "created_at": "2026-01-01T00:00:00.000000Z"}, "relay/image-demo",
                         {"prompt": prediction_id}, visitor)


def test_each_visitor_lists_only_their_own_runs_newest_first(tmp_path: Path) -> None:
    app, service = _app(tmp_path)
    alice, bob = app.test_client(), app.test_client()
    assert alice.get("/api/runs").json == {"runs": []}  # and now alice has a cookie
    assert bob.get("/api/runs").json == {"runs": []}
    alice_id = _visitor_id(app, alice)
    for name in ("first", "second"):
        _record(service, name, alice_id)
    _record(service, "other", "someone-else")
    runs = alice.get("/api/runs").json["runs"]  # type: ignore[index]
    assert [r["id"] for r in runs] == ["second", "first"]
    assert runs[0]["input"] == {"prompt": "second"} and runs[0]["status"] == "starting"
    assert runs[0]["stream_url"].startswith("/api/predictions/second/events?token=")
    assert runs[0]["cancel_url"].startswith("/api/predictions/second/cancel?token=")
    assert bob.get("/api/runs").json == {"runs": []}


def _visitor_id(app: Flask, client: object) -> str:
    from relay.visitors import COOKIE, _serializer

    cookie = client.get_cookie(COOKIE)  # type: ignore[attr-defined]
    assert cookie is not None
    return str(_serializer(app).loads(cookie.value))


def test_one_run_needs_its_stream_token_then_must_exist(tmp_path: Path) -> None:
    app, service = _app(tmp_path)
    _record(service, "known", "v-1")
    client = app.test_client()
    good = service.signer.sign("known", "stream")
    assert client.get(f"/api/runs/known?token={good}").json["id"] == "known"  # type: ignore[index]
    wrong = client.get("/api/runs/known?token=" + service.signer.sign("known", "cancel"))
    assert wrong.status_code == 403 and wrong.json["success"] is False  # type: ignore[index]
    assert client.get("/api/runs/known").status_code == 403
    unknown = client.get("/api/runs/nobody?token=" + service.signer.sign("nobody", "stream"))
    assert unknown.status_code == 404 and unknown.json["code"] == "not_found"  # type: ignore[index]


def test_kept_files_need_their_signature(tmp_path: Path) -> None:
    app, service = _app(tmp_path)
    assert service.runs is not None
    keeper = service.runs.keeper
    keeper.storage.put("runs/abc/0/out.png", [b"\x89PNG", b"rest"], "image/png")
    client = app.test_client()
    url = keeper.url_for("runs/abc/0/out.png").split("localhost", 1)[-1]
    answer = client.get(url)
    assert answer.status_code == 200 and answer.data == b"\x89PNGrest" and answer.mimetype == "image/png"
    assert answer.headers.getlist("X-Content-Type-Options") == ["nosniff"]  # never sniffed as a page
    assert client.get("/files/runs/abc/0/out.png?sig=nope").status_code == 403
    assert client.get("/files/runs/abc/0/out.png").status_code == 403
    missing = keeper.url_for("runs/abc/1/gone.png").split("localhost", 1)[-1]
    assert client.get(missing).status_code == 404


def test_retention_deletes_old_records_and_their_files(tmp_path: Path) -> None:
    _, service = _app(tmp_path, RELAY_RETENTION_DAYS="0.0001")  # 8.64 s
    runs = service.runs
    assert runs is not None
    _record(service, "old", "v-1")
    runs.keeper.storage.put("runs/old/0/out.png", [b"png"], "image/png")
    runs.store.status_changed({"id": "old", "status": "succeeded", "output": ["x"]}, final=True,
                              kept=["runs/old/0/out.png"])
    _record(service, "new", "v-1")
    with runs.store.engine.begin() as connection:
        from relay.records import runs as table

        connection.execute(table.update().where(table.c.id == "old").values(recorded_at=time.time() - 60))
    assert runs.expire() == 1
    assert runs.store.get("old") is None and runs.store.get("new") is not None
    assert runs.keeper.storage.open("runs/old/0/out.png") is None
    assert not (tmp_path / "files" / "runs" / "old").exists()


def test_a_database_outage_is_a_clear_503_not_a_500(tmp_path: Path) -> None:
    app, service = _app(tmp_path)
    assert service.runs is not None
    service.runs.store.engine.dispose()
    (tmp_path / "relay.db").unlink()
    (tmp_path / "relay.db").mkdir()  # no database can be opened there now
    answer = app.test_client().get("/api/runs")
    assert answer.status_code == 503
    assert answer.json == {"success": False, "code": "records_unavailable",
                           "error": "The run records cannot be read right now; try again shortly."}
