"""The standalone emulator (`python -m relay.emulator --faults`) as a test process, with its counters.

Used by the spend-guard tests to count what reached "Replicate": creates (from the
emulator's request stats) and unfinished predictions (from its prediction list).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from testbed.servers import ROOT, free_port, wait_until

__all__ = ["StandaloneEmulator"]

_AUTH = {"Authorization": "Bearer test"}


class StandaloneEmulator:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "relay.emulator", "--port", str(self.port), "--state-dir", str(tmp), "--faults"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, timeout=60)  # a loaded machine starts Python slowly

    def _answers(self) -> bool:
        try:
            return httpx.get(self.url + "/_emulator/stats", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def creates(self) -> int:
        """Predictions created so far (every create route)."""
        stats = httpx.get(self.url + "/_emulator/stats", timeout=5).json()
        return sum(int(n) for route, n in stats.items()
                   if route.startswith("POST ") and route.endswith("/predictions"))

    def predictions(self) -> list[dict[str, Any]]:
        answer = httpx.get(self.url + "/v1/predictions", headers=_AUTH, timeout=5).json()
        return list(answer["results"])

    def prediction(self, prediction_id: str) -> dict[str, Any]:
        answer = httpx.get(f"{self.url}/v1/predictions/{prediction_id}", headers=_AUTH, timeout=5)
        return dict(answer.json())

    def unfinished(self) -> int:
        return sum(1 for p in self.predictions() if p["status"] in ("starting", "processing"))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
