"""Runs that outlive the tab and the hour (docs/runs.md), on gunicorn with SQLite, S3 and PostgreSQL.

Each test drives Relay over HTTP as a browser would (its own cookie jar per visitor) and
checks what outlives: the record listing, the kept output after the emulator lost the
prediction, and the final snapshot and `done` replayed after a restart.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from testbed import RelayServer
from testbed.s3 import S3Server
from testbed.sse import Event, follow, log_of, snapshots

IMAGE = {"prompt": "a lighthouse", "steps": 4, "step_delay": 0.15, "boot_delay": 0.2}


def visitor(server: RelayServer) -> httpx.Client:
    """A browser of its own: a fresh cookie jar, so a new `relay_visitor`."""
    return httpx.Client(base_url=server.url, timeout=20)


def run_to_end(client: httpx.Client, **input: Any) -> tuple[dict[str, Any], list[Event]]:
    answer = client.post("/api/predictions", json={"model": "relay/image-demo", "input": input or IMAGE})
    assert answer.status_code == 201, answer.text
    created = answer.json()
    return created, follow(client, created["stream_url"])


def remove_upstream(server: RelayServer, prediction_id: str) -> None:
    """What Replicate does an hour on: the prediction and its files are gone from the emulator."""
    (server.tmp / "emulator" / "predictions" / f"{prediction_id}.json").unlink()  # RELAY_EMULATOR_DIR


@pytest.fixture
def s3() -> Iterator[S3Server]:
    server = S3Server().start()
    yield server
    server.stop()


def test_a_visitor_lists_exactly_their_runs_and_another_sees_none(
        start_server: Callable[..., RelayServer]) -> None:
    server = start_server()
    with visitor(server) as alice, visitor(server) as bob:
        mine = [run_to_end(alice)[0]["id"] for _ in range(2)]
        listed = alice.get("/api/runs").json()["runs"]
        assert [run["id"] for run in listed] == list(reversed(mine))  # newest first
        assert all(run["status"] == "succeeded" and run["model"] == "relay/image-demo" for run in listed)
        assert listed[0]["input"] == IMAGE
        assert set(listed[0]) >= {"id", "model", "input", "status", "created_at", "completed_at", "output",
                                  "stream_url", "cancel_url"}
        assert bob.get("/api/runs").json() == {"runs": []}
        # One run by its stream token, whoever asks; a wrong token is refused.
        token = listed[0]["stream_url"].split("token=")[1]
        assert bob.get(f"/api/runs/{mine[1]}", params={"token": token}).json()["id"] == mine[1]
        assert bob.get(f"/api/runs/{mine[0]}", params={"token": token}).status_code == 403


def _kept_output_survives(server: RelayServer, instance: Path) -> tuple[str, bytes]:
    with visitor(server) as client:
        created, events = run_to_end(client)
        final = snapshots(events)[-1]
        assert final["status"] == "succeeded" and events[-1].kind == "done"
        kept_url = final["output"][0]
        assert "/files/" in kept_url and "/emulator/" not in kept_url
        original = client.get(f"/emulator/files/{created['id']}/output.png")
        assert original.status_code == 200 and original.content.startswith(b"\x89PNG")
        remove_upstream(server, created["id"])
        assert client.get(f"/emulator/files/{created['id']}/output.png").status_code == 404
        run = client.get("/api/runs").json()["runs"][0]
        assert run["output"] == [kept_url]
        kept = client.get(kept_url)
        assert kept.status_code == 200 and kept.headers["content-type"] == "image/png"
        assert kept.content == original.content
        assert client.get(kept_url.split("?")[0] + "?sig=forged").status_code == 403
        return created["id"], kept.content


def test_the_output_outlives_the_upstream_in_the_instance_folder(
        start_server: Callable[..., RelayServer], tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    server = start_server({"RELAY_INSTANCE_PATH": str(instance)})
    prediction_id, _ = _kept_output_survives(server, instance)
    assert (instance / "files" / "runs" / prediction_id / "0" / "output.png").is_file()


def test_with_s3_storage_the_kept_file_is_in_the_bucket(
        start_server: Callable[..., RelayServer], tmp_path: Path, s3: S3Server) -> None:
    instance = tmp_path / "instance"
    bucket = s3.make_bucket("relay-kept")
    server = start_server({"RELAY_INSTANCE_PATH": str(instance), "RELAY_STORAGE_URL": f"s3://{bucket}/outputs",
                           **s3.env()})
    prediction_id, content = _kept_output_survives(server, instance)
    stored = s3.client().get_object(Bucket=bucket, Key=f"outputs/runs/{prediction_id}/0/output.png")
    assert stored["Body"].read() == content
    assert not (instance / "files").exists()


def test_without_keeping_the_output_stays_upstream(start_server: Callable[..., RelayServer]) -> None:
    server = start_server({"RELAY_KEEP_OUTPUTS": "0"})
    with visitor(server) as client:
        final = snapshots(run_to_end(client)[1])[-1]
        assert "/emulator/files/" in final["output"][0]


def _survives_restart(start: Callable[..., RelayServer], env: dict[str, str], workers: int) -> None:
    first = start(env, workers=workers)
    with visitor(first) as client:
        created, events = run_to_end(client)
        before = snapshots(events)[-1]
        cookies = dict(client.cookies)
    first.stop(signal.SIGTERM)
    remove_upstream(first, created["id"])  # nothing to fetch again upstream
    second = start(env, workers=workers, port=first.port)
    with httpx.Client(base_url=second.url, timeout=20, cookies=cookies) as client:
        runs = client.get("/api/runs").json()["runs"]
        assert [run["id"] for run in runs] == [created["id"]]
        assert runs[0]["status"] == "succeeded" and runs[0]["output"] == before["output"]
        for _ in range(workers * 2):  # new connections: each worker in turn, with its empty hub
            with httpx.Client(base_url=second.url, timeout=20) as fresh:
                replay = follow(fresh, created["stream_url"])
            assert [e.kind for e in replay] == ["message", "done"]
            # The same state; the live stream sent its log as deltas, the replay sends it whole.
            state = ("estimate", "logs", "logs_offset", "logs_length")
            shown = {k: v for k, v in replay[0].data.items() if k not in state}
            assert shown == {k: v for k, v in before.items() if k not in state}
            assert replay[0].data["logs_offset"] == 0 and replay[0].data["logs"] == log_of(events) != ""
            assert replay[1].data == {"id": created["id"], "status": "succeeded"}
        kept = client.get(runs[0]["output"][0])
        assert kept.status_code == 200 and kept.content.startswith(b"\x89PNG")


def test_after_a_restart_runs_are_listed_and_a_finished_stream_replays(
        start_server: Callable[..., RelayServer], tmp_path: Path) -> None:
    _survives_restart(start_server, {"RELAY_INSTANCE_PATH": str(tmp_path / "instance")}, workers=1)


def test_with_postgresql_and_two_workers_the_same_holds(
        start_server: Callable[..., RelayServer], tmp_path: Path, postgres_url: str) -> None:
    env = {"RELAY_INSTANCE_PATH": str(tmp_path / "instance"),
           "DATABASE_URL": postgres_url.replace("postgresql://", "postgres://")}  # Heroku's spelling
    _survives_restart(start_server, env, workers=2)
    assert not (tmp_path / "instance" / "relay.db").exists()


def test_with_postgresql_two_workers_list_one_visitors_runs(
        start_server: Callable[..., RelayServer], postgres_url: str) -> None:
    server = start_server({"DATABASE_URL": postgres_url}, workers=2)
    with visitor(server) as alice, visitor(server) as bob:
        mine = {run_to_end(alice)[0]["id"] for _ in range(3)}
        assert {run["id"] for run in alice.get("/api/runs").json()["runs"]} == mine
        assert bob.get("/api/runs").json()["runs"] == []


def test_a_model_with_three_past_runs_estimates_the_wait_while_starting(
        start_server: Callable[..., RelayServer]) -> None:
    server = start_server()
    with visitor(server) as client:
        first = snapshots(run_to_end(client, **{**IMAGE, "boot_delay": 1.0})[1])[0]
        assert first["status"] == "starting"
        assert first["estimate"] == {"start_in": None, "finish_in": None, "based_on": 0}
        for boot in (1.5, 2.0):
            run_to_end(client, **{**IMAGE, "boot_delay": boot})
        _, events = run_to_end(client, **{**IMAGE, "boot_delay": 1.5})
    shots = snapshots(events)
    starting = shots[0]
    assert starting["status"] == "starting"
    estimate = starting["estimate"]
    assert estimate["based_on"] == 3
    # The truth, from the prediction's own timestamps: the snapshot was taken at its creation.
    from relay.records import seconds_between

    final = shots[-1]
    true_start = seconds_between(final["created_at"], final["started_at"])
    true_finish = seconds_between(final["created_at"], final["completed_at"])
    assert true_start is not None and true_finish is not None
    assert abs(estimate["start_in"] - true_start) <= 0.6 * true_start, (estimate, true_start)
    assert abs(estimate["finish_in"] - true_finish) <= 0.6 * true_finish, (estimate, true_finish)
    processing = [s for s in shots if s["status"] == "processing"]
    assert processing and all(s["estimate"]["start_in"] == 0 for s in processing)
    assert all(set(s["estimate"]) == {"start_in", "finish_in", "based_on"} for s in shots)
