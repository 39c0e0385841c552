"""The create request, checked at the boundary and turned into a typed value once."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import MODEL_NAME, VERSION_ID, AllowedModel
from .errors import Forbidden, InvalidRequest
from .upstream import Target

__all__ = ["CreateRequest", "InputLimits", "parse_create_request"]

_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class InputLimits:
    max_depth: int = 8
    max_keys: int = 200
    max_string: int = 20_000


@dataclass(frozen=True, slots=True)
class CreateRequest:
    target: Target
    input: dict[str, Any]
    # The allow-list entry the request matched: its pins and `#edit` apply (relay/inputs.py).
    entry: AllowedModel | None = None
    # Who asked (the relay_visitor cookie's id): their run record belongs to them (relay/runs.py).
    visitor: str | None = None


def parse_create_request(body: object, allowed: tuple[AllowedModel, ...],
                         limits: InputLimits = InputLimits()) -> CreateRequest:
    """Check the JSON body of a create; InvalidRequest or Forbidden when it can't run."""
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object with `model` or `version`, and `input`.")
    unknown = sorted(set(body) - {"model", "version", "input"})
    if unknown:
        raise InvalidRequest(f"Unknown field {unknown[0]!r}: send only `model` or `version`, and `input`.")
    model, version = body.get("model"), body.get("version")
    if (model is None) == (version is None):
        raise InvalidRequest("Send exactly one of `model` (\"owner/name\") or `version`.")
    if "input" not in body:
        raise InvalidRequest("`input` is required: an object of the model's inputs.")
    model_input = body["input"]
    if not isinstance(model_input, dict):
        raise InvalidRequest("`input` must be a JSON object.")
    _check_input(model_input, limits)
    if model is not None:
        if not isinstance(model, str) or not MODEL_NAME.match(model):
            raise InvalidRequest("`model` must be a string like \"owner/name\".")
        target = _allowed_model(model.lower(), allowed)
    else:
        if not isinstance(version, str):
            raise InvalidRequest("`version` must be a string: a 64-hex id or \"owner/name:<id>\".")
        target = _allowed_version(version, allowed)
    return CreateRequest(target=target, input=model_input, entry=_entry_for(target, allowed))


def _entry_for(target: Target, allowed: tuple[AllowedModel, ...]) -> AllowedModel | None:
    """The allow-list entry for what will run: the one with its exact version, else the any-version one."""
    entries = [m for m in allowed if m.name == target.model]
    exact = [m for m in entries if m.version is not None and m.version == target.version]
    chosen = exact or [m for m in entries if m.version is None] or entries
    return chosen[0] if chosen else None


def _allowed_model(name: str, allowed: tuple[AllowedModel, ...]) -> Target:
    pinned = [m for m in allowed if m.name == name]
    if not pinned:
        raise Forbidden(f"The model {name!r} is not available here.", code="model_not_allowed")
    if any(m.version is None for m in pinned):
        return Target(model=name)
    # Only pinned versions are allowed: run the first one.
    return Target(model=name, version=pinned[0].version)


def _allowed_version(text: str, allowed: tuple[AllowedModel, ...]) -> Target:
    name, sep, version = text.partition(":")
    if not sep:
        if not VERSION_ID.match(text):
            raise InvalidRequest("`version` must be a 64-hex id or \"owner/name:<id>\".")
        if not any(m.version == text for m in allowed):
            raise Forbidden("That model version is not available here.", code="model_not_allowed")
        owner_name = next(m.name for m in allowed if m.version == text)
        return Target(model=owner_name, version=text)
    if not MODEL_NAME.match(name) or not VERSION_ID.match(version):
        raise InvalidRequest("`version` must be a 64-hex id or \"owner/name:<id>\".")
    name = name.lower()
    entries = [m for m in allowed if m.name == name]
    if not entries or not any(m.version in (None, version) for m in entries):
        raise Forbidden(f"The model {name!r} at that version is not available here.",
                        code="model_not_allowed")
    return Target(model=name, version=version)


def _check_input(value: Mapping[str, Any], limits: InputLimits) -> None:
    keys = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limits.max_depth:
            raise InvalidRequest(f"`input` is nested too deeply (more than {limits.max_depth} levels).")
        if isinstance(item, dict):
            keys += len(item)
            if keys > limits.max_keys:
                raise InvalidRequest(f"`input` has too many keys (more than {limits.max_keys}).")
            for key, child in item.items():
                if len(key) > 200:
                    raise InvalidRequest("`input` has a key longer than 200 characters.")
                _check_text(key)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            keys += len(item)
            if keys > limits.max_keys:
                raise InvalidRequest(f"`input` has too many values (more than {limits.max_keys}).")
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            # data: URLs (small uploads, relay/uploads.py) are bounded by the body limit instead.
            if len(item) > limits.max_string and not item.startswith("data:"):
                raise InvalidRequest(f"A string in `input` is longer than {limits.max_string} characters.")
            _check_text(item)


def _check_text(text: str) -> None:
    # JSON may escape half of a UTF-16 pair (\ud800) on its own: that is no character,
    # cannot be sent on as UTF-8, and is refused here rather than fail later.
    if _SURROGATE.search(text):
        raise InvalidRequest("A string in `input` holds a lone UTF-16 surrogate (such as \\ud800), "
                             "which is not text.")
