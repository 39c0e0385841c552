"""The allowed models, what kind of output they make, and a starting input for each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .config import AllowedModel

__all__ = ["ModelInfo", "describe"]

Kind = Literal["image", "text", "other"]

_KNOWN: dict[str, tuple[Kind, dict[str, Any]]] = {
    "relay/image-demo": ("image", {"prompt": "a lighthouse on a cliff at dawn, watercolor", "steps": 20}),
    "relay/text-demo": ("text", {"prompt": "Write a short poem about the sea", "max_tokens": 24}),
    "black-forest-labs/flux-schnell": ("image", {"prompt": "a lighthouse on a cliff at dawn, watercolor"}),
    "meta/meta-llama-3-8b-instruct": ("text", {"prompt": "Write a short poem about the sea",
                                               "max_tokens": 128}),
}


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    kind: Kind
    default_input: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "default_input": dict(self.default_input)}


def describe(models: tuple[AllowedModel, ...]) -> list[ModelInfo]:
    """One entry per allowed model name (a model pinned to several versions is listed once)."""
    seen: dict[str, ModelInfo] = {}
    for model in models:
        if model.name not in seen:
            kind, default_input = _KNOWN.get(model.name, ("other", {"prompt": ""}))
            seen[model.name] = ModelInfo(model.name, kind, default_input)
    return list(seen.values())
