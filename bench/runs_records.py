"""What run records cost on the hot path, with no database, SQLite and PostgreSQL side by side.

    .venv/bin/python bench/runs_records.py [--creates 60] [--opens 60]

Self-contained: it starts the standalone emulator and a PostgreSQL server (testbed/postgres.py)
itself, drives Relay's app in process (Flask's test client, so only Relay's own work and the
emulator's HTTP answers are timed), and prints and writes docs/bench-runs.json:

- creates/s: POST /api/predictions, sequentially (each writes one record);
- opens/s of a live stream: GET …/events of a prediction the hub holds (records are not read);
- opens/s of a finished stream on an empty hub (after a restart): from the record, versus from
  an upstream GET without records;
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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


def _measure(variant: str, emulator: str, tmp: Path, database: str | None, creates: int, opens: int) -> dict[str, Any]:
    app = _app(variant, emulator, tmp / variant / "a", database)
    client = app.test_client()
    started = time.perf_counter()
    made = []
    for _ in range(creates):
        answer = client.post("/api/predictions", json={"model": "relay/image-demo", "input": INPUT})
        assert answer.status_code == 201, answer.data
        made.append(answer.json)
    create_rate = _rate(creates, time.perf_counter() - started)

    live = client.post("/api/predictions", json={"model": "relay/image-demo", "input": LIVE_INPUT}).json
    started = time.perf_counter()
    for _ in range(opens):
        response = client.get(live["stream_url"], buffered=False)
        next(iter(response.response))  # the first bytes: the stream is open
        response.close()
    live_rate = _rate(opens, time.perf_counter() - started)

    time.sleep(0.5)  # every benchmark prediction has finished upstream
    for made_one in made:  # and has its final record (the watcher of each wrote it)
        client.get(made_one["stream_url"]).close()
    app.extensions["relay"].shutdown()
    fresh = _app(variant, emulator, tmp / variant / "a", database).test_client()  # a restarted process: empty hub
    started = time.perf_counter()
    for made_one in made[:opens]:
        body = fresh.get(made_one["stream_url"]).data
        assert b"event: done" in body, body[:300]
    finished_rate = _rate(min(opens, len(made)), time.perf_counter() - started)
    return {"creates_per_s": create_rate, "live_opens_per_s": live_rate, "finished_opens_per_s": finished_rate}


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
    parser.add_argument("--out", default=str(ROOT / "docs" / "bench-runs.json"))
    args = parser.parse_args()

    from testbed.postgres import PostgresServer

    tmp = Path(tempfile.mkdtemp(prefix="relay-bench-runs-"))
    emulator, emulator_url = _emulator(tmp / "emulator")
    postgres = PostgresServer().start()
    results: dict[str, Any] = {}
    try:
        for variant in VARIANTS:
            database = postgres.new_database() if variant == "postgresql" else None
            print(f"  .. {variant}", file=sys.stderr)
            results[variant] = _measure(variant, emulator_url, tmp, database, args.creates, args.opens)
        stall = {mode: _stall_ms(postgres.url(), mode) for mode in ("patched", "unpatched")}
    finally:
        emulator.terminate()
        postgres.stop()

    print(f"{'':<12}{'creates/s':>12}{'live opens/s':>15}{'finished opens/s':>19}")
    for variant, row in results.items():
        print(f"{variant:<12}{row['creates_per_s']:>12}{row['live_opens_per_s']:>15}{row['finished_opens_per_s']:>19}")
    print("finished opens: 'none' fetches the prediction upstream; the others read the record.")
    print(f"longest 10 ms-ticker stall during SELECT pg_sleep(1): gevent-patched pg8000 {stall['patched']} ms, "
          f"unpatched {stall['unpatched']} ms")
    document = {"benchmark": "runs_records", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "system": platform.platform()},
                "settings": {"creates": args.creates, "opens": args.opens},
                "results": results, "pg_sleep_stall_ms": stall}
    Path(args.out).write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
