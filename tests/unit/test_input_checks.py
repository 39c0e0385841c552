"""A visitor's input checked against recorded schemas: one field named, one plain sentence."""

from __future__ import annotations

from typing import Any

import pytest

from relay.config import AllowedModel
from relay.inputs import InvalidInput, apply_pins, prepare, validate_input
from relay.model_schema import ModelSchema
from testbed.recorded import recorded

SDXL = recorded("stability-ai__sdxl")
LLAMA = recorded("meta__llama-2-70b-chat")


@pytest.mark.parametrize(("schema", "value", "field", "sentence"), [
    (SDXL, {"num_inference_steps": 501}, "num_inference_steps", "Num Inference Steps must be between 1 and 500."),
    (SDXL, {"num_inference_steps": 0}, "num_inference_steps", "Num Inference Steps must be between 1 and 500."),
    (SDXL, {"num_inference_steps": 2.5}, "num_inference_steps", "Num Inference Steps must be a whole number."),
    (SDXL, {"num_inference_steps": True}, "num_inference_steps", "Num Inference Steps must be a whole number."),
    (SDXL, {"num_inference_steps": "20"}, "num_inference_steps", "Num Inference Steps must be a whole number."),
    (SDXL, {"guidance_scale": "high"}, "guidance_scale", "Guidance Scale must be a number."),
    (SDXL, {"apply_watermark": 1}, "apply_watermark", "Apply Watermark must be true or false."),
    (SDXL, {"scheduler": "FAST"}, "scheduler", "Scheduler must be one of DDIM, DPMSolverMultistep, HeunDiscrete, "
                                               "KarrasDPM, K_EULER_ANCESTRAL, K_EULER or PNDM."),
    (SDXL, {"image": "/etc/passwd"}, "image", "Image must be a link (http:// or https://), a data: URL, "
                                              "or a file uploaded with /api/uploads."),
    (SDXL, {"image": "file:///etc/passwd"}, "image", None),
    (SDXL, {"image": "javascript:alert(1)"}, "image", None),
    (SDXL, {"colour": "red"}, "colour", "This model has no input named 'colour'."),
    (SDXL, {"prompt": 7}, "prompt", "Prompt must be text."),
    (LLAMA, {}, "prompt", "Prompt is required."),
    (LLAMA, {"prompt": "hi", "top_k": -1}, "top_k", "Top K must be at least 0."),
    (LLAMA, {"prompt": "hi", "temperature": 9}, "temperature", "Temperature must be between 0.01 and 5."),
])
def test_bad_input_names_the_field_in_a_sentence(schema: ModelSchema, value: dict[str, Any], field: str,
                                                 sentence: str | None) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_input(schema, value)
    assert caught.value.field == field and caught.value.code == "invalid_input" and caught.value.status == 400
    if sentence is not None:
        assert caught.value.message == sentence


def test_the_first_problem_by_x_order_is_reported_and_unknown_or_missing_fields_come_first() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_input(SDXL, {"num_inference_steps": 0, "width": 1.5})
    assert caught.value.field == "width"  # x-order 4 before 8
    with pytest.raises(InvalidInput) as caught:
        validate_input(LLAMA, {"top_k": -5})
    assert caught.value.field == "prompt"


@pytest.mark.parametrize("url", ["https://example.com/a.png", "http://127.0.0.1:8000/emulator/v1/files/abc",
                                 "data:image/png;base64,iVBORw0KGgo=", "data:text/plain,hello"])
def test_urls_and_data_urls_are_accepted_for_file_inputs(url: str) -> None:
    assert validate_input(SDXL, {"image": url}) == {"image": url}


def test_ints_stay_ints_and_whole_floats_of_integer_fields_become_ints() -> None:
    checked = validate_input(SDXL, {"num_inference_steps": 20.0, "width": 768, "guidance_scale": 7})
    assert checked == {"num_inference_steps": 20, "width": 768, "guidance_scale": 7}
    assert type(checked["num_inference_steps"]) is int and type(checked["guidance_scale"]) is int


def test_nullable_inputs_accept_null() -> None:
    schema = ModelSchema("a/b", None, None, {"type": "object", "properties": {
        "seed": {"type": "integer", "nullable": True, "x-order": 0}}}, {})
    assert validate_input(schema, {"seed": None}) == {"seed": None}
    with pytest.raises(InvalidInput):
        validate_input(schema, {"seed": "x"})


def test_pins_replace_what_the_visitor_sent_with_the_schema_s_types() -> None:
    entry = AllowedModel.parse("stability-ai/sdxl?num_outputs=1&apply_watermark=true&scheduler=DDIM"
                               "&negative_prompt=blurry&guidance_scale=7.5")
    sent = prepare(entry, SDXL, {"prompt": "a cat", "num_outputs": 4, "scheduler": "PNDM"})
    assert sent == {"prompt": "a cat", "num_outputs": 1, "apply_watermark": True, "scheduler": "DDIM",
                    "negative_prompt": "blurry", "guidance_scale": 7.5}


def test_fields_outside_edit_are_refused_unless_pinned() -> None:
    entry = AllowedModel.parse("stability-ai/sdxl?num_outputs=1#edit=prompt")
    assert prepare(entry, SDXL, {"prompt": "x", "num_outputs": 3}) == {"prompt": "x", "num_outputs": 1}
    with pytest.raises(InvalidInput) as caught:
        prepare(entry, SDXL, {"prompt": "x", "width": 512})
    assert caught.value.field == "width" and "cannot be changed" in caught.value.message


def test_a_pin_that_breaks_the_schema_is_reported_not_sent() -> None:
    entry = AllowedModel.parse("stability-ai/sdxl?num_outputs=9")
    with pytest.raises(InvalidInput) as caught:
        prepare(entry, SDXL, {"prompt": "x"})
    assert caught.value.field == "num_outputs"


def test_a_model_without_a_schema_takes_any_input_but_pins_and_edit_still_hold() -> None:
    unknown = ModelSchema.unknown("a/b")
    entry = AllowedModel.parse("a/b?steps=3#edit=prompt")
    assert prepare(entry, unknown, {"prompt": "x", "steps": 50}) == {"prompt": "x", "steps": 3}
    with pytest.raises(InvalidInput):
        apply_pins(entry, unknown, {"prompt": "x", "width": 5})
    assert prepare(AllowedModel("a/b"), unknown, {"anything": [1]}) == {"anything": [1]}
