"""The model allow-list's entries (RELAY_ALLOWED_MODELS) and the names Replicate accepts.

An entry is `owner/name[:version][?field=value&…][#edit=field+field]`: a model, optionally one
version, inputs pinned by the server, and the inputs visitors may change (docs/models.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

__all__ = ["EMULATOR_MODELS", "MODEL_NAME", "PUBLIC_MODELS", "VERSION_ID", "AllowedModel"]

# What Replicate accepts as a model name (`owner/name`, any case) and a version id; the
# allow-list here and the create requests (validation.py) are both checked against these.
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}/[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
VERSION_ID = re.compile(r"^[0-9a-f]{64}$")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


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


EMULATOR_MODELS = tuple(AllowedModel(f"relay/{name}-demo")
                        for name in ("image", "text", "audio", "json", "caption"))
# Small, fast public models: a sensible allow-list for a new deployment with a token.
PUBLIC_MODELS = (
    AllowedModel("black-forest-labs/flux-schnell"),
    AllowedModel("meta/meta-llama-3-8b-instruct"),
)
