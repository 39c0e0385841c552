"""What run records cost on the hot path, with no database, SQLite and PostgreSQL side by side.

    python -m bench.runs_records [--creates 60] [--opens 60]

Self-contained: it starts the standalone emulator and a PostgreSQL server (testbed/postgres.py)
itself, drives Relay's app in process (Flask's test client, so only Relay's own work and the
emulator's HTTP answers are timed), and prints and writes bench/results/runs-records.json:

- creates/s: POST /api/predictions, sequentially (each writes one record); the three variants'
  loops are interleaved in rounds so a busy machine slows them alike;
- opens/s of a live stream: GET …/events of a prediction the hub holds (records are not read);
- opens/s of a finished stream on an empty hub (after a restart): from the record, versus from
  an upstream GET without records;
- the writes of one run straight on the store (insert + final update), in milliseconds;
- cooperative: the longest stall of a 10 ms ticker greenlet while another greenlet runs
  `SELECT pg_sleep(1)` through pg8000, with gevent's monkey patching (as in gunicorn's worker)
  and without it (the baseline that blocks).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common.output import RESULTS, ROOT

VARIANTS = ("none", "sqlite", "postgresql")
INPUT = {"prompt": "bench", "steps": 2, "step_delay": 0.01, "boot_delay": 0}
LIVE_INPUT = {"prompt": "bench", "steps": 2, "step_delay": 1, "boot_delay": 300}


def _emulator(state: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-m", "relay.emulator", "--port", "0", "--state-dir", str(state)],
                               cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"http://\S+", line)
    if match is None:
        raise RuntimeError(f"emulator did not start: {line!r}")
    return process, match.group(0)


def _app(variant: str, emulator: str, instance: Path, database: str | None) -> Any:
    from relay import create_app

    config = {"INSTANCE_PATH": str(instance), "SECRET_KEY": "bench-secret-0123456789abcdef",
              "REPLICATE_BASE_URL": emulator, "RELAY_POLL_INTERVAL": "30", "RELAY_RATE_LIMIT": "1000000/minute",
              "RELAY_LOG_LEVEL": "WARNING", "RELAY_MAX_STREAMS_PER_CLIENT": "100000",
              "RELAY_STREAM_MAX_AGE": "1"}
    if database:
        config["DATABASE_URL"] = database
    app = create_app(config)
    service = app.extensions["relay"]
    if variant == "none":  # the app as it was before records: no hooks, nothing written or read
        service.runs = None
        service.feed.decorate = service.feed.observe = None
    return app


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1)


class _Variant:
    """One app per variant; the timed loops of the variants are interleaved in rounds to share the noise."""

    def __init__(self, name: str, emulator: str, tmp: Path, database: str | None) -> None:
        self.name, self.emulator, self.tmp, self.database = name, emulator, tmp / name, database
        self.app = _app(name, emulator, self.tmp / "a", database)
        self.client = self.app.test_client()
        self.made: list[dict[str, Any]] = []
        self.times: dict[str, list[float]] = {"creates": [], "live_opens": [], "finished_opens": []}
        self.live = self.client.post("/api/predictions", json={"model": "relay/image-demo", "input": LIVE_INPUT}).json

    def creates(self, count: int) -> None:
        for _ in range(count):
            started = time.perf_counter()
            answer = self.client.post("/api/predictions", json={"model": "relay/image-demo", "input": INPUT})
            self.times["creates"].append(time.perf_counter() - started)
            assert answer.status_code == 201, answer.data
            self.made.append(answer.json)

    def live_opens(self, count: int) -> None:
        for _ in range(count):
            started = time.perf_counter()
            response = self.client.get(self.live["stream_url"], buffered=False)
            next(iter(response.response))  # the first bytes: the stream is open
            self.times["live_opens"].append(time.perf_counter() - started)
            response.close()

    def restart(self) -> None:
        for made_one in self.made:  # every prediction's final state reached (and recorded)
            self.client.get(made_one["stream_url"]).close()
        self.app.extensions["relay"].shutdown()
        self.app = _app(self.name, self.emulator, self.tmp / "a", self.database)  # empty hub
        self.client = self.app.test_client()
        self.pending = list(self.made)

    def finished_opens(self, count: int) -> None:
        for made_one in self.pending[:count]:
            started = time.perf_counter()
            body = self.client.get(made_one["stream_url"]).data
            self.times["finished_opens"].append(time.perf_counter() - started)
            assert b"event: done" in body, body[:300]
        self.pending = self.pending[count:]

    def summary(self) -> dict[str, Any]:
        import statistics

        row: dict[str, Any] = {}
        for name, values in self.times.items():
            row[f"{name}_per_s"] = round(len(values) / sum(values), 1) if values else None
            row[f"{name}_median_ms"] = round(statistics.median(values) * 1000, 2) if values else None
        return row


def _record_cost(engine_url: str | None, tmp: Path, count: int) -> float:
    """Milliseconds of the writes one run costs (insert at create, final update), straight on the store."""
    from relay.records import RunStore, engine_for, migrate

    store = RunStore(engine_for(engine_url, tmp))
    migrate(store.engine)
    started = time.perf_counter()
    for index in range(count):
        prediction = {"id": f"cost{index}", "status": "starting", "created_at": "2026-01-01T00:00:00Z"}
        store.created(prediction, "bench-visitor", "relay/image-demo", INPUT)
        store.status_changed({**prediction, "status": "succeeded", "output": ["x"]}, final=True)
    elapsed = time.perf_counter() - started
    store.close()
    return round(elapsed / count * 1000, 2)


def _measure_all(emulator: str, tmp: Path, databases: dict[str, str | None], creates: int, opens: int,
                 rounds: int = 4) -> dict[str, Any]:
    variants = [_Variant(name, emulator, tmp, databases[name]) for name in VARIANTS]
    for _ in range(rounds):
        for variant in variants:
            variant.creates(creates // rounds)
        for variant in variants:
            variant.live_opens(opens // rounds)
    time.sleep(0.5)  # every benchmark prediction has finished upstream
    for variant in variants:
        variant.restart()
    for _ in range(rounds):
        for variant in variants:
            variant.finished_opens(min(opens, creates) // rounds)
    return {variant.name: variant.summary() for variant in variants}


_STALL = r"""
import sys, time
if sys.argv[2] == "patched":
    from gevent import monkey; monkey.patch_all()
import gevent, sqlalchemy as sa
from relay.records import engine_for
from pathlib import Path
engine = engine_for(sys.argv[1], Path("."))
with engine.connect() as c: c.execute(sa.text("SELECT 1"))
gaps = []
def tick():
    last = time.perf_counter()
    for _ in range(150):
        gevent.sleep(0.01); now = time.perf_counter(); gaps.append(now - last); last = now
def slow():
    with engine.connect() as c: c.execute(sa.text("SELECT pg_sleep(1)"))
ticker = gevent.spawn(tick); gevent.sleep(0.05); gevent.spawn(slow).join(); ticker.join()
print(round(max(gaps) * 1000, 1))
"""


def _stall_ms(url: str, mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", _STALL, url, mode], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=60)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--creates", type=int, default=60)
    parser.add_argument("--opens", type=int, default=60)
    parser.add_argument("--out", default=str(RESULTS / "runs-records.json"))
    args = parser.parse_args()

    from testbed.postgres import PostgresServer

    tmp = Path(tempfile.mkdtemp(prefix="relay-bench-runs-"))
    emulator, emulator_url = _emulator(tmp / "emulator")
    postgres = PostgresServer().start()
    try:
        databases = {"none": None, "sqlite": None, "postgresql": postgres.new_database()}
        results = _measure_all(emulator_url, tmp, databases, args.creates, args.opens)
        (tmp / "cost").mkdir()
        cost = {"sqlite": _record_cost(None, tmp / "cost", 200),
                "postgresql": _record_cost(postgres.new_database(), tmp / "cost", 200)}
        stall = {mode: _stall_ms(postgres.url(), mode) for mode in ("patched", "unpatched")}
    finally:
        emulator.terminate()
        postgres.stop()

    print(f"{'':<12}{'creates/s':>12}{'(median ms)':>12}{'live opens/s':>15}{'(median ms)':>12}"
          f"{'finished opens/s':>19}{'(median ms)':>12}")
    for variant, row in results.items():
        print(f"{variant:<12}{row['creates_per_s']:>12}{row['creates_median_ms']:>12}{row['live_opens_per_s']:>15}"
              f"{row['live_opens_median_ms']:>12}{row['finished_opens_per_s']:>19}{row['finished_opens_median_ms']:>12}")
    print("finished opens: 'none' fetches the prediction upstream; the others read the record.")
    print(f"the writes of one run (insert + final update) straight on the store: SQLite {cost['sqlite']} ms, "
          f"PostgreSQL {cost['postgresql']} ms")
    print(f"longest 10 ms-ticker stall during SELECT pg_sleep(1): gevent-patched pg8000 {stall['patched']} ms, "
          f"unpatched {stall['unpatched']} ms")
    document = {"benchmark": "runs_records", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "system": platform.platform()},
                "settings": {"creates": args.creates, "opens": args.opens},
                "results": results, "record_writes_ms_per_run": cost, "pg_sleep_stall_ms": stall}
    Path(args.out).write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
