"""The spend guard's pure parts: grants (and the docs' minting examples), the store's atomic
take, fixed windows, and the settings that configure them."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from relay.config import ConfigError, Rate, Settings
from relay.guard.grants import GrantRequired, mint, read_grant
from relay.guard.store import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "spend-guard.md").read_text()
SECRET = "s3cret"


def auth(grant: str) -> dict[str, str]:
    return {"Authorization": f"Relay-Grant {grant}"}


def test_a_valid_grant_reads_back_with_its_fields() -> None:
    grant = read_grant(auth(mint(SECRET, {"sub": "u1", "exp": time.time() + 60, "models": ["A/B"], "max": 3})),
                       SECRET)
    assert (grant.sub, grant.max, grant.models) == ("u1", 3, ("a/b",))
    assert grant.allows("a/b") and not grant.allows("a/c") and not grant.allows(None)


@pytest.mark.parametrize("payload", [{"exp": "soon"}, {"exp": True}, {"sub": "x"}, {"exp": 1},
                                     {"exp": 2e9, "max": -1}, {"exp": 2e9, "models": "a/b"}])
def test_grants_without_a_valid_expiry_or_fields_are_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(GrantRequired):
        read_grant(auth(mint(SECRET, payload)), SECRET)


def test_a_signature_over_other_text_is_refused() -> None:
    body, _, signature = mint(SECRET, {"exp": 2e9}).partition(".")
    other, _, _ = mint(SECRET, {"exp": 2e9, "max": 100}).partition(".")
    for text in (f"{other}.{signature}", f"{body}.", f"{body}.{signature[:-1]}", "a.b.c", "..", body):
        with pytest.raises(GrantRequired):
            read_grant(auth(text), SECRET)


def _block(language: str) -> str:
    match = re.search(rf"```{language}\n(.*?)```", DOC, re.S)
    assert match is not None
    return match.group(1)


def test_the_docs_python_example_mints_a_grant_relay_accepts() -> None:
    namespace: dict[str, Any] = {}
    exec(_block("python"), namespace)  # our own documentation's example
    grant = read_grant(auth(namespace["mint_grant"](SECRET, "user-7", ["relay/image-demo"], 2)), SECRET)
    assert grant.sub == "user-7" and grant.max == 2


def test_the_docs_node_example_mints_a_grant_relay_accepts() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = _block("js") + f'process.stdout.write(mintGrant("{SECRET}", "user-8", ["relay/image-demo"], 1));'
    out = subprocess.run([node, "-e", script], capture_output=True, text=True, check=True, timeout=30).stdout
    assert read_grant(auth(out), SECRET).sub == "user-8"


def test_take_counts_all_caps_or_none_and_never_overshoots_under_threads() -> None:
    store = MemoryStore()
    assert store.take([("a", 1, 60), ("b", 5, 60)]) == -1
    assert store.take([("b", 5, 60), ("a", 1, 60)]) == 1  # a is full: b is not counted either
    assert store.count("b") == 1
    results: list[int] = []
    barrier = threading.Barrier(20)

    def one() -> None:
        barrier.wait()
        results.append(store.take([("c", 7, 60)]))

    threads = [threading.Thread(target=one) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(-1) == 7 and store.count("c") == 7


def test_fixed_windows_align_to_their_period() -> None:
    hour = Rate(5, 3600)
    assert hour.window(7200 + 1800) == (7200, 1800)
    assert hour.window(7200) == (7200, 3600)


def test_spend_settings_parse_and_bad_ones_are_named() -> None:
    settings = Settings.from_env({"RELAY_BUDGET": "500/day", "RELAY_BUDGET_SECONDS": "3600 per day",
                                  "RELAY_QUOTA": "20/2 hours", "RELAY_MAX_RUNNING": "4",
                                  "RELAY_ORPHAN_TIMEOUT": "90", "RELAY_DEADLINE": "1h30m"})
    assert settings.budget == Rate(500, 86400) and settings.quota == Rate(20, 7200)
    assert settings.budget_seconds == Rate(3600, 86400)
    assert (settings.max_running, settings.orphan_timeout, settings.deadline) == (4, 90, "1h30m")
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"RELAY_BUDGET": "lots", "RELAY_MAX_RUNNING": "0", "RELAY_DEADLINE": "soon"})
    for name in ("RELAY_BUDGET", "RELAY_MAX_RUNNING", "RELAY_DEADLINE"):
        assert name in str(error.value)
