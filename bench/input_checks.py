"""What checking a create's input costs: relay.inputs.prepare on recorded schemas, beside a baseline.

Baseline: the same input copied into a dict (what Relay did before schema checks). Prints
microseconds per call and writes bench/results/input-checks.json.

    python -m bench.input_checks
"""

from __future__ import annotations

import time
from typing import Any

from bench.common.output import machine, save_results
from relay.config import AllowedModel
from relay.inputs import InvalidInput, prepare
from testbed.recorded import recorded

CASES: list[tuple[str, str, dict[str, Any], bool]] = [
    ("stability-ai__sdxl", "stability-ai/sdxl?num_outputs=1", {
        "prompt": "a cat", "num_inference_steps": 30, "scheduler": "DDIM", "guidance_scale": 7.5,
        "image": "https://example.com/a.png"}, True),
    ("stability-ai__sdxl", "stability-ai/sdxl", {"prompt": "a cat", "num_inference_steps": 900}, False),
    ("meta__llama-2-70b-chat", "meta/llama-2-70b-chat", {"prompt": "hi", "max_new_tokens": 64}, True),
]


def per_call(fn: Any, seconds: float = 0.5) -> float:
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        calls += 1
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    results = []
    for fixture, entry_text, value, valid in CASES:
        schema, entry = recorded(fixture), AllowedModel.parse(entry_text)

        def checked(schema: Any = schema, entry: Any = entry, value: Any = value) -> None:
            try:
                prepare(entry, schema, value)
            except InvalidInput:
                pass

        checked()  # builds and caches the validator
        row = {"schema": fixture, "input": "valid" if valid else "invalid",
               "baseline_us": round(per_call(lambda value=value: dict(value)), 2),
               "prepare_us": round(per_call(checked), 2)}
        results.append(row)
        print(f"{fixture:26} {row['input']:8} baseline {row['baseline_us']:8.2f} µs   "
              f"pins+schema check {row['prepare_us']:8.2f} µs")
    save_results("input-checks.json", {"benchmark": "input_checks", "machine": machine(), "cases": results})


if __name__ == "__main__":
    main()
