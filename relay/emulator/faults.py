"""Test-only fault injection, shared by every process on one state dir.

A test sets one fault (an error status, a slow answer, or both) that applies
to matching /v1 requests, optionally for a number of requests or seconds.
The rule sits in `<state_dir>/faults.json`; taking one use out of a counted
fault is a read-modify-write done under an flock so that concurrent workers
never hand out more failures than asked for.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .inputs import json_type
from .problems import InvalidField, Problem, validation_failed


@dataclass(frozen=True)
class Fault:
    status: int | None = None
    remaining: int | None = None  # uses left; None means unlimited
    expires_at: float | None = None
    retry_after: float | None = None
    delay: float = 0.0
    methods: list[str] | None = None
    path_prefix: str = ""

    def matches(self, method: str, path: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        return path.startswith(self.path_prefix)

    def problem(self) -> Problem | None:
        if self.status is None:
            return None
        headers = {}
        extra: dict[str, Any] = {}
        if self.retry_after is not None:
            headers["Retry-After"] = _seconds_text(self.retry_after)
        if self.status == 429:
            # Replicate's throttle answer: the header, an integer retry_after, and a sentence.
            wait = _seconds_text(self.retry_after if self.retry_after is not None else 1)
            headers["Retry-After"] = wait
            extra["retry_after"] = int(wait)
            unit = "second" if wait == "1" else "seconds"
            detail = f"Request was throttled. Expected available in {wait} {unit}."
        else:
            detail = f"Injected fault: HTTP {self.status}."
        return Problem(self.status, detail, headers=headers, extra=extra)


def _seconds_text(value: float) -> str:
    # Retry-After takes whole seconds; round up so clients never come back early.
    return str(max(0, int(-(-value // 1))))


def _number(
    body: dict[str, Any], key: str, bad: list[InvalidField], *, integer: bool, low: float, high: float
) -> float | None:
    if key not in body or body[key] is None:
        return None
    value = body[key]
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        expected = "integer" if integer else "number"
        given = json_type(value)
        bad.append(InvalidField("invalid_type", key, f"Invalid type. Expected: {expected}, given: {given}"))
        return None
    if not low <= value <= high:
        bad.append(InvalidField("out_of_range", key, f"Must be between {low:g} and {high:g}"))
        return None
    return float(value)


def parse_fault(body: Any, now: float) -> Fault:
    """Build a Fault from the POST /_emulator/faults body, or raise a 422."""
    if not isinstance(body, dict):
        raise validation_failed([InvalidField("invalid_type", "body", "Expected a JSON object")])
    bad: list[InvalidField] = []
    status = _number(body, "status", bad, integer=True, low=400, high=599)
    count = _number(body, "count", bad, integer=True, low=1, high=1_000_000)
    seconds = _number(body, "seconds", bad, integer=False, low=0, high=86_400)
    retry_after = _number(body, "retry_after", bad, integer=False, low=0, high=3_600)
    delay = _number(body, "delay", bad, integer=False, low=0, high=120)
    methods = body.get("methods")
    if methods is not None and not (isinstance(methods, list) and all(isinstance(m, str) for m in methods)):
        bad.append(InvalidField("invalid_type", "methods", "Expected a list of HTTP method names"))
        methods = None
    prefix = body.get("path_prefix", "")
    if not isinstance(prefix, str):
        bad.append(InvalidField("invalid_type", "path_prefix", "Expected a string"))
        prefix = ""
    if status is None and not delay and not bad:
        bad.append(InvalidField("required", "status", "Give a status, a delay, or both"))
    if bad:
        raise validation_failed(bad)
    return Fault(
        status=None if status is None else int(status),
        remaining=None if count is None else int(count),
        expires_at=None if seconds is None else now + seconds,
        retry_after=retry_after,
        delay=delay or 0.0,
        methods=None if methods is None else [m.upper() for m in methods],
        path_prefix=prefix,
    )


class FaultStore:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "faults.json"
        self.lock_path = state_dir / "faults.lock"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _read(self) -> Fault | None:
        try:
            return Fault(**json.loads(self.path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def _write(self, fault: Fault) -> None:
        tmp = self.path.with_name(f".faults.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(fault)))
        os.replace(tmp, self.path)

    def set(self, fault: Fault) -> None:
        with self._locked():
            self._write(fault)

    def clear(self) -> None:
        with self._locked(), contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def current(self) -> Fault | None:
        return self._read()

    def take(self, method: str, path: str) -> Fault | None:
        """The fault to apply to this request, using up one of its count."""
        if not self.path.exists():  # the common case: no fault, no lock
            return None
        with self._locked():
            fault = self._read()
            if fault is None or not fault.matches(method, path):
                return None
            expired = fault.expires_at is not None and time.time() >= fault.expires_at
            if expired or fault.remaining == 0:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
                return None
            if fault.remaining is not None:
                self._write(Fault(**{**asdict(fault), "remaining": fault.remaining - 1}))
            return fault
