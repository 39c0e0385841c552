import pytest

from relay.config import AllowedModel, ConfigError, Settings


def test_defaults_use_the_emulator_and_its_models() -> None:
    settings = Settings.from_env({})
    assert settings.uses_emulator
    assert [m.name for m in settings.allowed_models] == [
        "relay/image-demo", "relay/text-demo", "relay/audio-demo", "relay/json-demo", "relay/caption-demo"]
    assert settings.poll_interval == 1.0 and settings.heartbeat_interval == 15.0


def test_a_token_switches_the_default_allow_list_to_public_models() -> None:
    settings = Settings.from_env({"REPLICATE_API_TOKEN": "r8_x"})
    assert not settings.uses_emulator
    assert all(not m.name.startswith("relay/") for m in settings.allowed_models)


def test_bad_poll_interval_is_named_with_its_value() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"RELAY_POLL_INTERVAL": "fast"})
    assert "RELAY_POLL_INTERVAL='fast'" in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"RELAY_HEARTBEAT_INTERVAL": "-1", "RELAY_RATE_LIMIT": "lots",
                           "RELAY_PUBLIC_URL": "example.com", "RELAY_LOG_LEVEL": "loud"})
    message = str(caught.value)
    for name in ("RELAY_HEARTBEAT_INTERVAL", "RELAY_RATE_LIMIT", "RELAY_PUBLIC_URL", "RELAY_LOG_LEVEL"):
        assert name in message


def test_allowed_models_parse_names_and_versions() -> None:
    version = "a" * 64
    settings = Settings.from_env({"RELAY_ALLOWED_MODELS": f"Owner/Model, other/thing:{version}"})
    assert settings.allowed_models == (AllowedModel("owner/model"), AllowedModel("other/thing", version))
    with pytest.raises(ConfigError, match="RELAY_ALLOWED_MODELS"):
        Settings.from_env({"RELAY_ALLOWED_MODELS": "not a model"})


def test_public_url_loses_its_trailing_slash_and_origins_are_checked() -> None:
    settings = Settings.from_env({"RELAY_PUBLIC_URL": "https://x.example/",
                                  "RELAY_EMBED_ORIGINS": "https://a.example, https://b.example"})
    assert settings.public_url == "https://x.example"
    assert settings.embed_origins == ("https://a.example", "https://b.example")
    with pytest.raises(ConfigError, match="RELAY_EMBED_ORIGINS"):
        Settings.from_env({"RELAY_EMBED_ORIGINS": "a.example/path"})
