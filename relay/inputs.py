"""A visitor's input made safe to send: pins applied, then checked against the model's schema.

Order matters and is fixed here: (1) fields the site's owner pinned are replaced by
the pinned value, whatever the visitor sent; (2) a field that is neither pinned nor
in `#edit` is refused; (3) the result is validated with `jsonschema` against the
model version's Input schema (unknown fields refused, `integer` means whole numbers
and never booleans, `format: uri` means an http(s) or data: URL). Every refusal is
`400 invalid_input` naming one field with a sentence a person can act on. Nothing
here talks to Replicate; the create goes upstream only after `prepare` returned.
"""

from __future__ import annotations

import copy
import json
import math
import re
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, ValidationError

from .config import AllowedModel
from .errors import InvalidRequest
from .model_schema import ModelSchema, ordered_properties, readable

__all__ = ["InvalidInput", "apply_pins", "pinned_value", "prepare", "validate_input"]

_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$", re.IGNORECASE)
_DATA_URL = re.compile(r"^data:[\w.+-]+/[\w.+-]+(;[\w.+-]+=[^;,]*)*(;base64)?,", re.IGNORECASE)
_TYPE_WORDS = {
    "integer": "a whole number", "number": "a number", "boolean": "true or false",
    "string": "text", "array": "a list", "object": "an object", "null": "empty",
}


class InvalidInput(InvalidRequest):
    """400 invalid_input: one input field is wrong; `field` names it."""

    code = "invalid_input"

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def is_input_url(value: object) -> bool:
    """An input file may be an http(s) URL (uploads of this deployment are) or a data: URL."""
    return isinstance(value, str) and bool(_URL.match(value) or _DATA_URL.match(value))


def _label(name: str, prop: dict[str, Any]) -> str:
    title = prop.get("title")
    return title.strip() if isinstance(title, str) and title.strip() else readable(name)


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def pinned_value(raw: str, prop: dict[str, Any]) -> Any:
    """A pin's text as the input's type: `?steps=20` is the integer 20, `?x=true` a boolean."""
    kind = prop.get("type")
    if kind in ("integer", "number", "boolean", "array", "object") or (kind is None and "enum" not in prop):
        try:
            value = json.loads(raw)
        except ValueError:
            return raw
        if isinstance(value, float) and not math.isfinite(value):
            return raw
        return value
    return raw


def apply_pins(entry: AllowedModel, schema: ModelSchema, visitor: dict[str, Any]) -> dict[str, Any]:
    """The visitor's input with pins set and fields they may not change refused."""
    properties = dict(ordered_properties(schema.input))
    pins = dict(entry.pins)
    result: dict[str, Any] = {}
    for name, value in visitor.items():
        if name in pins:
            continue  # replaced below: the visitor's value never goes upstream
        if schema.known and name not in properties:
            continue  # unknown: reported by validation, with the sentence for that
        if not entry.editable(name):
            label = _label(name, properties.get(name, {}))
            raise InvalidInput(f"{label} is fixed on this site and cannot be changed.", name)
        result[name] = value
    for name, raw in pins.items():
        result[name] = pinned_value(raw, properties.get(name, {}))
    for name, value in visitor.items():
        if name not in result and name not in pins:
            result[name] = value  # unknown fields stay, so validation names them
    return result


@lru_cache(maxsize=64)
def _compiled(schema_json: str) -> Draft202012Validator:
    checker = FormatChecker(formats=())
    checker.checks("uri")(is_input_url)
    return Draft202012Validator(json.loads(schema_json), format_checker=checker)


_BY_VERSION: dict[tuple[str, str], Draft202012Validator] = {}


def _validator(schema: ModelSchema) -> Draft202012Validator:
    """One validator per model version (a version's schema never changes), else per schema text."""
    key = (schema.name, schema.version) if schema.version else None
    if key is not None and key in _BY_VERSION:
        return _BY_VERSION[key]
    validator = _compiled(json.dumps(_checkable(schema.input), sort_keys=True))
    if key is not None:
        if len(_BY_VERSION) > 256:
            _BY_VERSION.clear()
        _BY_VERSION[key] = validator
    return validator


def _checkable(input_schema: dict[str, Any]) -> dict[str, Any]:
    """The Input schema as JSON Schema proper: OpenAPI's `nullable`, no fields beyond it."""
    schema = copy.deepcopy(input_schema)
    schema["type"] = "object"
    schema["additionalProperties"] = False
    for prop in (schema.get("properties") or {}).values():
        if isinstance(prop, dict) and prop.pop("nullable", False) and isinstance(prop.get("type"), str):
            prop["type"] = [prop["type"], "null"]
            if isinstance(prop.get("enum"), list) and None not in prop["enum"]:
                prop["enum"] = [*prop["enum"], None]
    return schema


def _sentence(error: ValidationError, properties: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """(field, sentence) for one jsonschema error."""
    instance = error.instance
    rule, value = error.validator, error.validator_value
    if rule == "required":
        wanted = [str(n) for n in value] if isinstance(value, list) else []
        missing = [n for n in wanted if isinstance(instance, dict) and n not in instance]
        name = missing[0] if missing else (wanted or [""])[0]
        return name, f"{_label(name, properties.get(name, {}))} is required."
    if rule == "additionalProperties":
        extra = sorted(set(instance) - set(properties)) if isinstance(instance, dict) else []
        name = extra[0] if extra else ""
        return name, f"This model has no input named {name!r}."
    name = str(error.absolute_path[0]) if error.absolute_path else ""
    prop = properties.get(name, {})
    label = _label(name, prop)
    if rule == "type":
        kinds = value if isinstance(value, list) else [value]
        words = " or ".join(_TYPE_WORDS.get(str(k), str(k)) for k in kinds if k != "null")
        return name, f"{label} must be {words}."
    if rule in ("minimum", "maximum") and "minimum" in prop and "maximum" in prop:
        return name, f"{label} must be between {_number(prop['minimum'])} and {_number(prop['maximum'])}."
    if rule == "minimum":
        return name, f"{label} must be at least {_number(value)}."
    if rule == "maximum":
        return name, f"{label} must be at most {_number(value)}."
    if rule == "exclusiveMinimum":
        return name, f"{label} must be greater than {_number(value)}."
    if rule == "exclusiveMaximum":
        return name, f"{label} must be less than {_number(value)}."
    if rule == "enum" and isinstance(value, list):
        choices = [str(c) for c in value if c is not None]
        listed = ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else "".join(choices)
        return name, f"{label} must be one of {listed}."
    if rule == "minLength":
        return name, f"{label} must be at least {value} characters long."
    if rule == "maxLength":
        return name, f"{label} must be at most {value} characters long."
    if rule == "format" and value == "uri":
        return name, (f"{label} must be a link (http:// or https://), a data: URL, "
                      "or a file uploaded with /api/uploads.")
    if rule == "multipleOf":
        return name, f"{label} must be a multiple of {_number(value)}."
    return name, f"{label} is not valid here: {error.message}."


def validate_input(schema: ModelSchema, value: dict[str, Any]) -> dict[str, Any]:
    """Check `value` against the Input schema; the input to send (whole floats of integer fields as ints)."""
    if not schema.known:
        return value
    properties = dict(ordered_properties(schema.input))
    validator = _validator(schema)
    order = {name: i for i, name in enumerate(properties)}
    errors = list(validator.iter_errors(value))
    if errors:
        def rank(error: ValidationError) -> tuple[int, int]:
            field = str(error.absolute_path[0]) if error.absolute_path else ""
            top = 0 if error.validator in ("additionalProperties", "required") else 1
            return top, order.get(field, -1)
        field, message = _sentence(min(errors, key=rank), properties)
        raise InvalidInput(message, field)
    result = dict(value)
    for name, item in value.items():
        if properties.get(name, {}).get("type") == "integer" and isinstance(item, float) and item.is_integer():
            result[name] = int(item)
    return result


def prepare(entry: AllowedModel, schema: ModelSchema, visitor: dict[str, Any]) -> dict[str, Any]:
    """Pins applied, edits checked, then the schema: the input to send upstream."""
    return validate_input(schema, apply_pins(entry, schema, visitor))
