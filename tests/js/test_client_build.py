"""static/relay-client.js is checked in, and it is exactly what esbuild makes of static/client/ now.

The classic script is built by `npm run build:client` (esbuild, pinned in
package.json) and committed, so plain <script> users and a deploy need no
node. This test rebuilds it into a temporary file with the same command and
compares: a change to the modules without a rebuild fails here.
"""

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_checked_in_classic_script_equals_a_fresh_build(tmp_path: Path) -> None:
    esbuild = ROOT / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists() or shutil.which("node") is None:
        pytest.skip("esbuild comes from npm ci")
    command = shlex.split(json.loads((ROOT / "package.json").read_text())["scripts"]["build:client"])
    assert command[0] == "esbuild"
    fresh = tmp_path / "relay-client.js"
    args = [str(esbuild), *(f"--outfile={fresh}" if a.startswith("--outfile=") else a for a in command[1:])]
    subprocess.run(args, cwd=ROOT, check=True, capture_output=True, timeout=120)
    checked_in = (ROOT / "static" / "relay-client.js").read_text()
    assert checked_in == fresh.read_text(), "static/relay-client.js is stale: run `npm run build:client`"
