"""What every demo model shares: its fixed version, its inputs, its state at a moment.

A demo model's prediction is a pure function of the stored record, the
current time and the root its file URLs are built on, so any process answers
the same. Subclasses say how long the work takes (`timeline`), what the
prediction shows at each phase (`_show`), what its Cog output schema is, and
which output files it serves.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from .inputs import InputSpec, resolve_input
from .store import Record
from .timeline import Phase, Timeline

BOOT_DELAY = InputSpec(
    "boot_delay",
    "number",
    "Emulator only: seconds spent in `starting`",
    default=0.5,
    minimum=0,
    maximum=300,
)


@dataclass(frozen=True)
class State:
    """A prediction's changing fields at one moment."""

    status: str
    started_at: float | None
    completed_at: float | None
    logs: str | None
    output: Any
    error: str | None


@dataclass(frozen=True)
class OutputFile:
    data: bytes
    mimetype: str


class Reader(Protocol):
    """Reads the bytes behind a file input URL (an upload or a data: URI); None if unreadable."""

    def read(self, url: str) -> tuple[bytes, str] | None: ...


class DemoModel(ABC):
    owner = "relay"
    name: str
    description: str
    inputs: tuple[InputSpec, ...]
    streams = False
    default_example: ClassVar[dict[str, Any]] = {}

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def version_id(self) -> str:
        # One fixed version per model, stable across runs and processes.
        return hashlib.sha256(self.ref.encode()).hexdigest()

    def values(self, record: Record) -> dict[str, Any]:
        """The record's input with defaults (it was validated at create)."""
        return resolve_input(self.inputs, record.input)

    def prepare(self, values: dict[str, Any], reader: Reader) -> dict[str, Any] | None:
        """Facts to decide once at create and keep in the record (file inputs); none by default."""
        return None

    @abstractmethod
    def output_schema(self) -> dict[str, Any]: ...

    @abstractmethod
    def timeline(self, record: Record) -> Timeline: ...

    @abstractmethod
    def _show(self, record: Record, phase: Phase, files_root: str) -> State: ...

    def file(self, record: Record, name: str) -> OutputFile | None:
        """The bytes of one output file of a succeeded prediction, or None."""
        return None

    def state(self, record: Record, now: float, files_root: str) -> State:
        phase = self.timeline(record).phase(now, record.canceled_at)
        return self._show(record, phase, files_root)

    def next_change(self, record: Record, now: float) -> float | None:
        if record.canceled_at is not None and record.canceled_at <= now:
            return None
        return self.timeline(record).next_change(now)


def default_seed(prompt: str) -> int:
    return int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "big")
