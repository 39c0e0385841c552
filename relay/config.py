"""Typed settings read from the environment once, when the app is created.

Every variable is checked here, at start, so a typo in a deploy fails loudly with
the variable's name and value instead of misbehaving later.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

__all__ = ["EMULATOR_MODELS", "MODEL_NAME", "PUBLIC_MODELS", "VERSION_ID", "AllowedModel", "ConfigError", "Rate",
           "Settings"]

# What Replicate accepts as a model name (`owner/name`, any case) and a version id; the
# allow-list here and the create requests (validation.py) are both checked against these.
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}/[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
VERSION_ID = re.compile(r"^[0-9a-f]{64}$")
_RATE_LIMIT = re.compile(
    r"^\s*\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day|month|year)s?\s*$", re.IGNORECASE
)
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_SPEND_RATE = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(?:/|per)\s*(\d+\s*)?(second|minute|hour|day|week)s?\s*$", re.IGNORECASE
)
_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
_DURATION = re.compile(r"^(\d+(\.\d+)?(ms|s|m|h))+$|^\d+$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(Exception):
    """The environment holds a value Relay cannot run with; the message names it."""


@dataclass(frozen=True, slots=True)
class AllowedModel:
    """One entry of RELAY_ALLOWED_MODELS: `owner/name[:version][?field=value&…][#edit=field+field]`.

    `pins` are inputs the server sets whatever a visitor sends (values as written,
    read by the model's schema later); `edit` lists what visitors may change
    (None: every input that is not pinned).
    """

    name: str
    version: str | None = None
    pins: tuple[tuple[str, str], ...] = ()
    edit: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, text: str) -> AllowedModel:
        text = text.strip()
        rest, hash_sign, fragment = text.partition("#")
        rest, _, query = rest.partition("?")
        name, _, version = rest.partition(":")
        if not MODEL_NAME.match(name):
            raise ValueError(f"{text!r} is not owner/name or owner/name:version")
        if version and not VERSION_ID.match(version):
            raise ValueError(f"{text!r} has a version that is not 64 hex digits")
        pins: dict[str, str] = {}
        for field, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
            if not _FIELD.match(field):
                raise ValueError(f"{text!r} pins {field!r}, which is not an input name")
            pins[field] = value
        edit: tuple[str, ...] | None = None
        if hash_sign:
            key, _, fields = fragment.partition("=")
            if key != "edit":
                raise ValueError(f"{text!r}: after # expected edit=field+field")
            edit = tuple(dict.fromkeys(f for f in fields.split("+") if f))
            bad = [f for f in edit if not _FIELD.match(f)]
            if bad:
                raise ValueError(f"{text!r} lets visitors edit {bad[0]!r}, which is not an input name")
            pinned = [f for f in edit if f in pins]
            if pinned:
                raise ValueError(f"{text!r} both pins and lets visitors edit {pinned[0]!r}")
        return cls(name=name.lower(), version=version or None, pins=tuple(pins.items()), edit=edit)

    def editable(self, field: str) -> bool:
        """May a visitor set this input?"""
        if any(field == pinned for pinned, _ in self.pins):
            return False
        return self.edit is None or field in self.edit


@dataclass(frozen=True, slots=True)
class Rate:
    """An amount per period (RELAY_BUDGET and friends), counted in fixed windows aligned to the period."""

    limit: float
    period: float  # seconds

    def window(self, now: float) -> tuple[int, float]:
        """This window's start (unix seconds) and the seconds until it ends."""
        start = int(now // self.period * self.period)
        return start, start + self.period - now


EMULATOR_MODELS = tuple(AllowedModel(f"relay/{name}-demo")
                        for name in ("image", "text", "audio", "json", "caption"))
# Small, fast public models: a sensible allow-list for a new deployment with a token.
PUBLIC_MODELS = (
    AllowedModel("black-forest-labs/flux-schnell"),
    AllowedModel("meta/meta-llama-3-8b-instruct"),
)


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
    # The spend guard (relay/guard/, SPEC §6.4)
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
        reader = _Reader(env)
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


class _Reader:
    """Reads variables one by one and collects every problem, so one start reports them all."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self._problems: list[str] = []

    def raise_if_any(self) -> None:
        if self._problems:
            raise ConfigError("Invalid configuration:\n  " + "\n  ".join(self._problems))

    def text(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def url(self, name: str) -> str | None:
        value = self.text(name)
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            self._problems.append(f"{name}={value!r}: expected an http:// or https:// URL")
            return None
        return value

    def redis_url(self, name: str) -> str | None:
        value = self.text(name)
        if value is not None and not re.match(r"^(redis|rediss|unix)://", value):
            self._problems.append(f"{name}: expected a redis://, rediss:// or unix:// URL")
            return None
        return value

    def switch(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        self._problems.append(f"{name}={raw!r}: expected 1 or 0 (true or false)")
        return default

    def database_url(self, name: str) -> str | None:
        value = self.text(name)
        if value is not None and not re.match(r"^(postgres|postgresql|sqlite)(\+\w+)?://", value):
            self._problems.append(f"{name}: expected a postgres://, postgresql:// or sqlite:// URL")
            return None
        return value

    def storage_url(self, name: str) -> str | None:
        value = self.text(name)
        if value is not None and not re.match(r"^(file://.|s3://[^/\s]+)", value):
            self._problems.append(f"{name}={value!r}: expected file:///a/folder or s3://bucket/prefix")
            return None
        return value

    def number(
        self, name: str, default: float, *, low: float, high: float, whole: bool = False
    ) -> float:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = float(int(raw)) if whole else float(raw)
        except ValueError:
            kind = "a whole number" if whole else "a number of seconds"
            self._problems.append(f"{name}={raw!r}: expected {kind} between {low:g} and {high:g}")
            return default
        if not low <= value <= high:
            self._problems.append(f"{name}={raw!r}: must be between {low:g} and {high:g}")
            return default
        return value

    def spend_rate(self, name: str) -> Rate | None:
        raw = self.text(name)
        if raw is None:
            return None
        match = _SPEND_RATE.match(raw)
        if match is None or float(match.group(1)) <= 0:
            self._problems.append(f"{name}={raw!r}: expected an amount per period, such as 500/day or 50/hour")
            return None
        count = int(match.group(2)) if match.group(2) else 1
        if count < 1:
            self._problems.append(f"{name}={raw!r}: the period must be at least 1")
            return None
        return Rate(float(match.group(1)), float(count * _PERIODS[match.group(3).lower()]))

    def optional_whole(self, name: str, *, low: float, high: float) -> int | None:
        return int(self.number(name, 0, low=low, high=high, whole=True)) or None \
            if self.text(name) is not None else None

    def optional_number(self, name: str, *, low: float, high: float) -> float | None:
        return self.number(name, 0, low=low, high=high) or None if self.text(name) is not None else None

    def duration(self, name: str) -> str | None:
        raw = self.text(name)
        if raw is not None and not _DURATION.match(raw):
            self._problems.append(f"{name}={raw!r}: expected a duration such as 30s, 5m or 1h30m")
            return None
        return raw

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        raw = self.text(name)
        if raw is None:
            return default
        if raw.upper() not in choices:
            self._problems.append(f"{name}={raw!r}: expected one of {', '.join(choices)}")
            return default
        return raw.upper()

    def rate(self, name: str, default: str) -> str:
        raw = self.text(name)
        if raw is None:
            return default
        if not _RATE_LIMIT.match(raw):
            self._problems.append(f"{name}={raw!r}: expected a rate such as 10/minute or 100 per hour")
            return default
        return raw

    def models(self, name: str, default: tuple[AllowedModel, ...]) -> tuple[AllowedModel, ...]:
        raw = self.text(name)
        if raw is None:
            return default
        models: list[AllowedModel] = []
        for item in raw.split(","):
            if not item.strip():
                continue
            try:
                models.append(AllowedModel.parse(item))
            except ValueError as exc:
                self._problems.append(f"{name}: {exc}")
        if not models and not any(name in p for p in self._problems):
            self._problems.append(f"{name}={raw!r}: lists no model")
        return tuple(models) or default

    def origins(self, name: str) -> tuple[str, ...]:
        raw = self.text(name)
        if raw is None:
            return ()
        origins: list[str] = []
        for item in raw.split():
            for origin in item.split(","):
                origin = origin.strip().rstrip("/")
                if not origin:
                    continue
                if not re.match(r"^https?://[^\s/]+$", origin):
                    self._problems.append(f"{name}: {origin!r} is not an origin like https://example.com")
                    continue
                origins.append(origin)
        return tuple(origins)
