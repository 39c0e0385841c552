"""Installs are reproducible: every requirement in the compiled files is pinned to one version."""

from __future__ import annotations

import re

import pytest

from testbed import ROOT

_PINNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?==[A-Za-z0-9.+!-]+(\s*;.*)?$")


def requirement_lines(text: str) -> list[str]:
    """The requirement lines of a pip requirements file (comments, options and blanks left out)."""
    lines = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


@pytest.mark.parametrize("name", ["requirements.txt", "requirements-dev.txt"])
def test_every_line_is_name_equals_version(name: str) -> None:
    lines = requirement_lines((ROOT / name).read_text())
    assert lines, f"{name} lists nothing"
    loose = [line for line in lines if not _PINNED.match(line)]
    assert loose == [], f"{name} has unpinned lines: {loose}"


def test_the_app_pins_gunicorn_below_27() -> None:
    pins = dict(line.split("==", 1) for line in requirement_lines((ROOT / "requirements.txt").read_text()))
    assert int(pins["gunicorn"].split(".")[0]) < 27


@pytest.mark.parametrize("line", ["flask>=3", "gunicorn", "-e .", "redis<6", "httpx~=0.27"])
def test_the_check_can_fail(line: str) -> None:
    assert not _PINNED.match(line)
