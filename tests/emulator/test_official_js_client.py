"""The official JS client (npm `replicate`), unmodified, against the standalone emulator over TLS.

The node tests are in tests/emulator/js/; this file starts the emulator on a
loopback port and runs them with node's test runner.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.emulator.standalone import REPO, TOKEN, Standalone


def test_official_js_client_against_the_emulator(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (REPO / "node_modules" / "replicate").exists():
        pytest.skip("the npm `replicate` package is not installed (npm ci)")
    emulator = Standalone(tmp_path / "state")
    try:
        assert emulator.cert is not None
        env = {**os.environ, "EMULATOR_URL": emulator.url, "EMULATOR_TOKEN": TOKEN,
               "NODE_EXTRA_CA_CERTS": emulator.cert}
        tests = sorted(str(p) for p in (REPO / "tests" / "emulator" / "js").glob("*.test.mjs"))
        result = subprocess.run([node, "--test", *tests], cwd=REPO, env=env, capture_output=True, text=True,
                                timeout=300)
    finally:
        emulator.stop()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout and "# pass 7" in result.stdout
