"""The repository's shape: no import cycle among its own modules (relay, testbed, bench, tests),
no tracked file naming a path of the machine it was made on."""

from __future__ import annotations

import ast
import re
import subprocess
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from testbed import ROOT

PACKAGES = ("relay", "testbed", "bench", "tests")


def module_names() -> dict[str, Path]:
    names: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            names[".".join(parts)] = path
    return names


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The repository's modules that `name` imports (at any depth in its code: lazy imports count)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def test_no_import_cycle_among_the_repositorys_modules() -> None:
    known = module_names()
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    assert len(graph) > 50  # the walk found the tree
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        raise AssertionError("import cycle: " + " -> ".join(error.args[1])) from None


def test_no_tracked_file_names_a_path_of_the_machine() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    machine = re.compile(r"(?<![\w.])/(?:work|root|home/\w+|Users/\w+|tmp/(?:uvenv|x))/")
    named = [f for f in files if not f.endswith((".png", ".lock")) and (ROOT / f).is_file()
             and machine.search((ROOT / f).read_text(errors="ignore"))]
    assert named == []
