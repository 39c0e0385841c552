"""RELAY_ALLOWED_MODELS entries with pins and #edit, parsed once at start."""

from __future__ import annotations

import pytest

from relay.config import AllowedModel, ConfigError, Settings

VERSION = "a" * 64


def test_name_version_pins_and_edit() -> None:
    entry = AllowedModel.parse(f"Owner/Model:{VERSION}?steps=20&style=soft%2C%20light&flag=true#edit=prompt+seed")
    assert (entry.name, entry.version) == ("owner/model", VERSION)
    assert entry.pins == (("steps", "20"), ("style", "soft, light"), ("flag", "true"))
    assert entry.edit == ("prompt", "seed")
    assert entry.editable("prompt") and entry.editable("seed")
    assert not entry.editable("steps") and not entry.editable("width")


def test_without_edit_every_unpinned_input_is_editable() -> None:
    entry = AllowedModel.parse("owner/model?steps=4")
    assert entry.edit is None and entry.editable("anything") and not entry.editable("steps")
    assert AllowedModel.parse("owner/model#edit=").edit == ()


@pytest.mark.parametrize("text", [
    "owner/model?1bad=2", "owner/model#edit=a+b-c", "owner/model#change=prompt",
    "owner/model?steps=1#edit=steps", "owner/model:short?x=1", "owner/model?no_equals_sign",
])
def test_bad_entries_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        AllowedModel.parse(text)


def test_settings_read_several_entries_and_report_a_bad_one_by_name() -> None:
    settings = Settings.from_env({"RELAY_ALLOWED_MODELS": "a/b?steps=2#edit=prompt, c/d"})
    assert [m.name for m in settings.allowed_models] == ["a/b", "c/d"]
    assert settings.allowed_models[0].pins == (("steps", "2"),)
    with pytest.raises(ConfigError, match="RELAY_ALLOWED_MODELS"):
        Settings.from_env({"RELAY_ALLOWED_MODELS": "a/b#edit=x y"})


def test_upload_limit_setting() -> None:
    assert Settings.from_env({}).max_upload_bytes == 10 * 2**20
    assert Settings.from_env({"RELAY_MAX_UPLOAD_BYTES": "2048"}).max_upload_bytes == 2048
    with pytest.raises(ConfigError, match="RELAY_MAX_UPLOAD_BYTES"):
        Settings.from_env({"RELAY_MAX_UPLOAD_BYTES": "lots"})
