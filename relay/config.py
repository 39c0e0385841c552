"""Typed settings read from the environment once, when the app is created.

Every variable is checked here, at start (with env_reader.py), so a typo in a deploy fails
loudly with the variable's name and value instead of misbehaving later. The allow-list's
entries are in allowlist.py; both modules' names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .allowlist import EMULATOR_MODELS, MODEL_NAME, PUBLIC_MODELS, VERSION_ID, AllowedModel
from .env_reader import ConfigError, Rate, Reader

__all__ = ["EMULATOR_MODELS", "MODEL_NAME", "PUBLIC_MODELS", "VERSION_ID", "AllowedModel", "ConfigError", "Rate",
           "Settings"]

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything Relay reads from its environment, as typed values."""

    replicate_api_token: str | None = None
    replicate_base_url: str | None = None
    secret_key: str | None = None
    redis_url: str | None = None
    redis_verify_tls: bool = True
    public_url: str | None = None
    webhook_secret: str | None = None
    metrics_token: str | None = None
    allowed_models: tuple[AllowedModel, ...] = EMULATOR_MODELS
    poll_interval: float = 1.0
    heartbeat_interval: float = 15.0
    stream_max_age: float = 600.0
    rate_limit: str = "10/minute"
    cancel_rate_limit: str = "30/minute"
    embed_origins: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    trusted_proxies: int = 0
    log_level: str = "INFO"
    token_max_age: int = 86400
    emulator_dir: str | None = None
    emulator_faults: bool = False
    watcher_idle_timeout: float = 30.0
    webhook_reconcile: float = 30.0
    upstream_budget: float = 1200.0
    history_size: int = 256
    history_bytes: int = 2**20
    hub_max_bytes: int = 64 * 2**20
    log_tail_bytes: int = 16384
    max_body_bytes: int = 64 * 1024
    body_timeout: float = 10.0
    max_streams_per_client: int = 50
    database_url: str | None = None  # None: SQLite in the instance folder
    storage_url: str | None = None  # None: file:// in the instance folder
    keep_outputs: bool = True
    retention_days: float = 30.0
    max_kept_bytes: int = 100 * 2**20
    max_upload_bytes: int = 10 * 2**20
    # The spend guard (relay/guard/, docs/spend-guard.md)
    budget: Rate | None = None
    budget_seconds: Rate | None = None
    quota: Rate | None = None
    max_running: int | None = None
    orphan_timeout: float | None = None
    deadline: str | None = None
    grant_secret: str | None = None

    @property
    def redis_client_url(self) -> str | None:
        """REDIS_URL as the Redis clients are given it: with certificate checks off for a
        `rediss://` URL when RELAY_REDIS_VERIFY_TLS=0 (Heroku Redis's self-signed certificate)."""
        url = self.redis_url
        if url is None or self.redis_verify_tls or not url.startswith("rediss://"):
            return url
        return url + ("&" if "?" in url else "?") + "ssl_cert_reqs=none&ssl_check_hostname=false"

    @property
    def uses_emulator(self) -> bool:
        """True when no token is set: Relay talks to its built-in emulator."""
        return not self.replicate_api_token

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from environment-like strings; raise ConfigError naming every bad one."""
        reader = Reader(env)
        token = reader.text("REPLICATE_API_TOKEN")
        public_url = reader.url("RELAY_PUBLIC_URL")
        settings = cls(
            replicate_api_token=token,
            replicate_base_url=reader.url("REPLICATE_BASE_URL"),
            secret_key=reader.text("SECRET_KEY"),
            redis_url=reader.redis_url("REDIS_URL"),
            redis_verify_tls=reader.switch("RELAY_REDIS_VERIFY_TLS", True),
            public_url=public_url.rstrip("/") if public_url else None,
            webhook_secret=reader.text("REPLICATE_WEBHOOK_SECRET"),
            metrics_token=reader.text("RELAY_METRICS_TOKEN"),
            allowed_models=reader.models(
                "RELAY_ALLOWED_MODELS", PUBLIC_MODELS if token else EMULATOR_MODELS
            ),
            poll_interval=reader.number("RELAY_POLL_INTERVAL", 1.0, low=0.05, high=60),
            heartbeat_interval=reader.number("RELAY_HEARTBEAT_INTERVAL", 15.0, low=0.05, high=50),
            stream_max_age=reader.number("RELAY_STREAM_MAX_AGE", 600.0, low=1, high=86400),
            rate_limit=reader.rate("RELAY_RATE_LIMIT", "10/minute"),
            cancel_rate_limit=reader.rate("RELAY_CANCEL_RATE_LIMIT", "30/minute"),
            embed_origins=reader.origins("RELAY_EMBED_ORIGINS"),
            cors_origins=reader.origins("RELAY_CORS_ORIGINS"),
            trusted_proxies=int(reader.number("RELAY_TRUSTED_PROXIES", 0, low=0, high=10, whole=True)),
            log_level=reader.choice("RELAY_LOG_LEVEL", "INFO", _LOG_LEVELS),
            token_max_age=int(
                reader.number("RELAY_TOKEN_MAX_AGE", 86400, low=60, high=30 * 86400, whole=True)
            ),
            emulator_dir=reader.text("RELAY_EMULATOR_DIR"),
            emulator_faults=reader.text("RELAY_EMULATOR_FAULTS") in ("1", "true", "yes"),
            watcher_idle_timeout=reader.number("RELAY_WATCHER_IDLE_TIMEOUT", 30.0, low=0.1, high=3600),
            webhook_reconcile=reader.number("RELAY_WEBHOOK_RECONCILE", 30.0, low=0.1, high=3600),
            upstream_budget=reader.number("RELAY_UPSTREAM_BUDGET", 1200.0, low=1, high=1_000_000),
            history_size=int(reader.number("RELAY_HISTORY_SIZE", 256, low=8, high=100000, whole=True)),
            history_bytes=int(reader.number("RELAY_HISTORY_BYTES", 2**20, low=4096, high=2**30, whole=True)),
            hub_max_bytes=int(reader.number("RELAY_HUB_MAX_BYTES", 64 * 2**20, low=2**20, high=2**40, whole=True)),
            log_tail_bytes=int(reader.number("RELAY_LOG_TAIL_BYTES", 16384, low=256, high=2**24, whole=True)),
            max_body_bytes=int(
                reader.number("RELAY_MAX_BODY_BYTES", 64 * 1024, low=1024, high=16 * 2**20, whole=True)
            ),
            body_timeout=reader.number("RELAY_BODY_TIMEOUT", 10.0, low=0.5, high=300),
            max_streams_per_client=int(
                reader.number("RELAY_MAX_STREAMS_PER_CLIENT", 50, low=1, high=100_000, whole=True)
            ),
            database_url=reader.database_url("DATABASE_URL"),
            storage_url=reader.storage_url("RELAY_STORAGE_URL"),
            keep_outputs=reader.text("RELAY_KEEP_OUTPUTS") not in ("0", "false", "no", "off"),
            retention_days=reader.number("RELAY_RETENTION_DAYS", 30.0, low=0.0001, high=36500),
            max_kept_bytes=int(reader.number("RELAY_MAX_KEPT_BYTES", 100 * 2**20, low=1024, high=2**40,
                                             whole=True)),
            max_upload_bytes=int(
                reader.number("RELAY_MAX_UPLOAD_BYTES", 10 * 2**20, low=1024, high=100 * 2**20, whole=True)
            ),
            budget=reader.spend_rate("RELAY_BUDGET"),
            budget_seconds=reader.spend_rate("RELAY_BUDGET_SECONDS"),
            quota=reader.spend_rate("RELAY_QUOTA"),
            max_running=reader.optional_whole("RELAY_MAX_RUNNING", low=1, high=100_000),
            orphan_timeout=reader.optional_number("RELAY_ORPHAN_TIMEOUT", low=0.5, high=7 * 86400),
            deadline=reader.duration("RELAY_DEADLINE"),
            grant_secret=reader.text("RELAY_GRANT_SECRET"),
        )
        reader.raise_if_any()
        return settings
