"""The client's TypeScript types (static/client/index.d.ts) accept right use and refuse wrong use.

tests/js/types/usage.tsx uses every public name of index.js and react.js;
tests/js/types/wrong-usage.ts holds wrong uses, each under @ts-expect-error,
so `tsc --noEmit --strict` passes only when every one of them is refused. The
second check strips the directives and counts tsc's errors, so a directive
that silenced something else would not hide a wrong use the types accept.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TYPES = ROOT / "tests" / "js" / "types"


def tsc(*args: str) -> subprocess.CompletedProcess[str]:
    binary = ROOT / "node_modules" / ".bin" / "tsc"
    if not binary.exists() or shutil.which("node") is None:
        pytest.skip("TypeScript is not installed (npm ci installs it)")
    return subprocess.run([str(binary), "--noEmit", "--strict", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_tsc_strict_accepts_the_example_and_refuses_every_wrong_use() -> None:
    result = tsc("-p", str(TYPES))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_each_wrong_use_is_an_error_of_its_own(tmp_path: Path) -> None:
    source = (TYPES / "wrong-usage.ts").read_text()
    expected = source.count("// @ts-expect-error")
    assert expected >= 10
    bare = tmp_path / "wrong-usage.ts"
    bare.write_text(source.replace("../../../static/", f"{ROOT}/static/").replace("// @ts-expect-error", "//"))
    config = (TYPES / "tsconfig.json").read_text().replace('"usage.tsx", "wrong-usage.ts"', '"wrong-usage.ts"')
    (tmp_path / "tsconfig.json").write_text(config)
    (tmp_path / "node_modules").symlink_to(ROOT / "node_modules")
    result = tsc("-p", str(tmp_path))
    lines = [line for line in result.stdout.splitlines() if re.search(r"wrong-usage\.ts\(\d+,\d+\): error", line)]
    rejected = {int(re.search(r"\((\d+),", line).group(1)) for line in lines}  # type: ignore[union-attr]
    directive_lines = [n + 2 for n, line in enumerate(source.splitlines()) if line.startswith("// @ts-expect-error")]
    missed = [n for n in directive_lines if n not in rejected]
    assert missed == [], f"wrong uses the types accept (lines of wrong-usage.ts): {missed}\n{result.stdout[-3000:]}"
