"""A demo model version's `openapi_schema`: the whole OpenAPI document Cog serves.

Replicate hands back the document a model's Cog server publishes: its
routes under `paths` and, under `components.schemas`, the `Input` and
`Output` schemas (inputs ordered by `x-order`, enums as separate schemas
reached through `allOf`/`$ref`, files as `format: uri`) next to the request,
response and validation-error schemas every Cog model shares.
"""

from __future__ import annotations

from typing import Any

from .base import DemoModel
from .inputs import input_schema

_JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {_JSON: {"schema": schema}}}


def _responses(ok: dict[str, Any], *, validated: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"200": {"description": "Successful Response", **_body(ok)}}
    if validated:
        out["422"] = {"description": "Validation Error", **_body(_ref("HTTPValidationError"))}
    return out


def _paths() -> dict[str, Any]:
    prediction_id = {"in": "path", "name": "prediction_id", "required": True,
                     "schema": {"title": "Prediction ID", "type": "string"}}
    prefer = {"in": "header", "name": "prefer", "required": False,
              "schema": {"title": "Prefer", "type": "string"}}
    return {
        "/": {"get": {"summary": "Root", "operationId": "root__get", "responses": _responses({}, validated=False)}},
        "/health-check": {"get": {"summary": "Healthcheck", "operationId": "healthcheck_health_check_get",
                                  "responses": _responses({}, validated=False)}},
        "/predictions": {"post": {
            "summary": "Predict",
            "description": "Run a single prediction on the model",
            "operationId": "predict_predictions_post",
            "parameters": [prefer],
            "requestBody": _body(_ref("PredictionRequest")),
            "responses": _responses(_ref("PredictionResponse")),
        }},
        "/predictions/{prediction_id}": {"put": {
            "summary": "Predict Idempotent",
            "description": "Run a single prediction on the model (idempotent creation).",
            "operationId": "predict_idempotent_predictions__prediction_id__put",
            "parameters": [prediction_id, prefer],
            "requestBody": {"required": True, **_body({"title": "Prediction Request",
                                                       "allOf": [_ref("PredictionRequest")]})},
            "responses": _responses(_ref("PredictionResponse")),
        }},
        "/predictions/{prediction_id}/cancel": {"post": {
            "summary": "Cancel",
            "description": "Cancel a running prediction",
            "operationId": "cancel_predictions__prediction_id__cancel_post",
            "parameters": [prediction_id],
            "responses": _responses({}),
        }},
        "/shutdown": {"post": {"summary": "Start Shutdown", "operationId": "start_shutdown_shutdown_post",
                               "responses": _responses({}, validated=False)}},
    }


def _shared_schemas() -> dict[str, Any]:
    when = {"type": "string", "format": "date-time"}
    return {
        "Status": {"title": "Status", "description": "An enumeration.", "type": "string",
                   "enum": ["starting", "processing", "succeeded", "canceled", "failed"]},
        "WebhookEvent": {"title": "WebhookEvent", "description": "An enumeration.", "type": "string",
                         "enum": ["start", "output", "logs", "completed"]},
        "PredictionRequest": {"title": "PredictionRequest", "type": "object", "properties": {
            "id": {"title": "Id", "type": "string"},
            "created_at": {"title": "Created At", **when},
            "input": _ref("Input"),
            "webhook": {"title": "Webhook", "type": "string", "format": "uri", "minLength": 1, "maxLength": 65536},
            "webhook_events_filter": {"type": "array", "items": _ref("WebhookEvent"),
                                      "default": ["start", "output", "logs", "completed"]},
            "output_file_prefix": {"title": "Output File Prefix", "type": "string"},
        }},
        "PredictionResponse": {"title": "PredictionResponse", "type": "object", "properties": {
            "id": {"title": "Id", "type": "string"},
            "version": {"title": "Version", "type": "string"},
            "created_at": {"title": "Created At", **when},
            "started_at": {"title": "Started At", **when},
            "completed_at": {"title": "Completed At", **when},
            "logs": {"title": "Logs", "type": "string", "default": ""},
            "error": {"title": "Error", "type": "string"},
            "status": _ref("Status"),
            "metrics": {"title": "Metrics", "type": "object"},
            "input": _ref("Input"),
            "output": _ref("Output"),
        }},
        "HTTPValidationError": {"title": "HTTPValidationError", "type": "object", "properties": {
            "detail": {"title": "Detail", "type": "array", "items": _ref("ValidationError")}}},
        "ValidationError": {"title": "ValidationError", "type": "object", "required": ["loc", "msg", "type"],
                            "properties": {
                                "loc": {"title": "Location", "type": "array",
                                        "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                                "msg": {"title": "Message", "type": "string"},
                                "type": {"title": "Error Type", "type": "string"}}},
    }


def openapi_document(model: DemoModel) -> dict[str, Any]:
    inputs, enums = input_schema(model.inputs)
    schemas = {"Input": inputs, "Output": model.output_schema(), **enums, **_shared_schemas()}
    return {
        "openapi": "3.0.2",
        "info": {"title": "Cog", "version": "0.1.0"},
        "paths": _paths(),
        "components": {"schemas": schemas},
    }
