"""Reading the environment: each variable checked, every problem collected for one report.

`Reader` is what `Settings.from_env` (config.py) reads with; `ConfigError` names every
variable Relay cannot run with; `Rate` is an amount per period (RELAY_BUDGET and friends).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .allowlist import AllowedModel

__all__ = ["ConfigError", "Rate", "Reader"]

_RATE_LIMIT = re.compile(
    r"^\s*\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day|month|year)s?\s*$", re.IGNORECASE
)
_SPEND_RATE = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(?:/|per)\s*(\d+\s*)?(second|minute|hour|day|week)s?\s*$", re.IGNORECASE
)
_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
_DURATION = re.compile(r"^(\d+(\.\d+)?(ms|s|m|h))+$|^\d+$")



class ConfigError(Exception):
    """The environment holds a value Relay cannot run with; the message names it."""


@dataclass(frozen=True, slots=True)
class Rate:
    """An amount per period (RELAY_BUDGET and friends), counted in fixed windows aligned to the period."""

    limit: float
    period: float  # seconds

    def window(self, now: float) -> tuple[int, float]:
        """This window's start (unix seconds) and the seconds until it ends."""
        start = int(now // self.period * self.period)
        return start, start + self.period - now


class Reader:
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
