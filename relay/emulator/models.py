"""The demo models by name and by version.

The models themselves live in demos.py (image, text) and media_demos.py
(audio, JSON, file input); base.py has what they share.
"""

from __future__ import annotations

from .base import DemoModel, OutputFile, Reader, State, default_seed
from .demos import ImageDemo, TextDemo, tokens_for
from .media_demos import AudioDemo, CaptionDemo, JsonDemo

__all__ = [
    "MODELS", "AudioDemo", "CaptionDemo", "DemoModel", "ImageDemo", "JsonDemo", "OutputFile", "Reader",
    "State", "TextDemo", "default_seed", "model_for", "model_for_version", "tokens_for",
]

MODELS: dict[str, DemoModel] = {
    m.ref: m for m in (ImageDemo(), TextDemo(), AudioDemo(), JsonDemo(), CaptionDemo())
}
_BY_VERSION = {m.version_id: m for m in MODELS.values()}


def model_for(ref: str) -> DemoModel | None:
    return MODELS.get(ref)


def model_for_version(version: str) -> DemoModel | None:
    """Resolve `<64 hex>`, `owner/name` or `owner/name:<64 hex>`."""
    if "/" not in version:
        return _BY_VERSION.get(version)
    ref, sep, version_id = version.partition(":")
    model = MODELS.get(ref)
    if model is None or (sep and version_id != model.version_id):
        return None
    return model
