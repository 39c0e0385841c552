"""What the emulator's expiry keeps on disk, and what a sweep costs.

    python -m bench.emulator_expiry [--count 2000]

Creates `--count` finished image-demo predictions (500 steps, so their logs are long, as in
#11's "about 60 KB per prediction") in a fresh state dir, twice side by side:
- baseline: no expiry (data_ttl = infinity), as the emulator was;
- expiry: the same records after their data was removed (tombstones).
Prints and writes bench/results/emulator-expiry.json: bytes on disk per prediction, the JSON
answer's size, and the time one sweep of the whole directory takes.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

from bench.common.output import machine, write_json
from relay.emulator.core import Emulator
from relay.emulator.models import model_for
from relay.emulator.store import Record, new_id

INPUT = {"prompt": "a lighthouse at dawn", "steps": 500, "step_delay": 0.01, "boot_delay": 0}


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir())


def fill(emu: Emulator, count: int, created_at: float) -> list[str]:
    ids = []
    for _ in range(count):
        record = Record(id=new_id(), model="relay/image-demo", version=model_for("relay/image-demo").version_id,  # type: ignore[union-attr]
                        input=dict(INPUT), created_at=created_at)
        emu.predictions.save(record)
        ids.append(record.id)
    return ids


def run(count: int) -> dict[str, object]:
    old = time.time() - 7200  # finished well over an hour ago
    out: dict[str, object] = {"count": count, "machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        base = Emulator(Path(tmp) / "baseline", False, data_ttl=math.inf, keep_for=math.inf)
        ids = fill(base, count, old)
        answer = base.render(*base.find(ids[0]), "http://e/", "")
        started = time.perf_counter()
        base.expiry.sweep(time.time())
        out["baseline"] = {
            "disk_bytes_per_prediction": disk_bytes(base.predictions.dir) / count,
            "answer_bytes": len(json.dumps(answer)),
            "sweep_seconds": time.perf_counter() - started,
            "records_left": len(list(base.predictions.dir.iterdir())),
        }
        exp = Emulator(Path(tmp) / "expiry", False, data_ttl=3600, keep_for=86400)
        ids = fill(exp, count, old)
        started = time.perf_counter()
        exp.expiry.sweep(time.time())
        sweep = time.perf_counter() - started
        answer = exp.render(*exp.find(ids[0]), "http://e/", "")
        out["expiry"] = {
            "disk_bytes_per_prediction": disk_bytes(exp.predictions.dir) / count,
            "answer_bytes": len(json.dumps(answer)),
            "sweep_seconds": sweep,
            "records_left": len(list(exp.predictions.dir.iterdir())),
        }
        started = time.perf_counter()
        exp.expiry.sweep(time.time() + 2 * 86400)  # two days on: tombstones go too
        out["expiry_after_a_day"] = {"records_left": len(list(exp.predictions.dir.iterdir())),
                                     "sweep_seconds": time.perf_counter() - started}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    result = run(args.count)
    for name in ("baseline", "expiry", "expiry_after_a_day"):
        print(name, json.dumps(result[name]))
    print("wrote", write_json("emulator-expiry.json", result))


if __name__ == "__main__":
    main()
