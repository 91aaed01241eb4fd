"""Base model specs: registry, exactly-one-plan rule, pins, and user JSON specs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from snaparc.errors import ExportError
from snaparc.hf.export import BASE_MODELS, BaseModelSpec, BaseSpecError, load_base_spec

AUDIO_PLAN = {
    "sample_rate": 16000,
    "max_length_seconds": 30.0,
    "audio_token": "<|AUDIO|>",
    "num_audio_tokens": 750,
}
VL_PLAN = {
    "target_size": 336,
    "resize_policy": "fixed",
    "image_token": "<image>",
    "num_image_tokens": 576,
}


def spec_dict(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "key": "my-audio",
        "hf_id": "org/tiny-audio",
        "revision": "0123456789abcdef0123456789abcdef01234567",
        "architecture": "Qwen2AudioForConditionalGeneration",
        "modality": "audio-language",
        "redistributable": True,
        "audio_plan": dict(AUDIO_PLAN),
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_registry_has_qwen2_audio_with_the_documented_plan() -> None:
    spec = load_base_spec("qwen2-audio-7b-instruct")
    assert spec.hf_id == "Qwen/Qwen2-Audio-7B-Instruct"
    assert spec.architecture == "Qwen2AudioForConditionalGeneration"
    assert spec.modality == "audio-language"
    assert spec.audio_plan is not None and spec.vl_plan is None
    assert spec.audio_plan.model_dump() == AUDIO_PLAN
    assert spec.redistributable is False


def test_registry_has_a_vl_base() -> None:
    vl = [s for s in BASE_MODELS.values() if s.modality == "vision-language"]
    assert any(s.hf_id == "llava-hf/llava-1.5-7b-hf" for s in vl)
    for spec in vl:
        assert spec.vl_plan is not None and spec.audio_plan is None


def test_every_registry_entry_round_trips() -> None:
    for key, spec in BASE_MODELS.items():
        assert spec.key == key
        assert BaseModelSpec.model_validate(spec.model_dump()) == spec


def test_valid_vl_and_text_specs() -> None:
    vl = BaseModelSpec.model_validate(
        spec_dict(modality="vision-language", audio_plan=None, vl_plan=VL_PLAN)
    )
    assert vl.vl_plan is not None and vl.vl_plan.num_image_tokens == 576
    text = BaseModelSpec.model_validate(spec_dict(modality="text", audio_plan=None))
    assert text.audio_plan is None and text.vl_plan is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"audio_plan": None}, "requires audio_plan"),
        ({"vl_plan": VL_PLAN}, "must not carry vl_plan"),
        ({"modality": "vision-language"}, "requires vl_plan"),
        ({"modality": "vision-language", "audio_plan": None}, "requires vl_plan"),
        ({"modality": "text"}, "must not carry audio_plan"),
        ({"modality": "text", "audio_plan": None, "vl_plan": VL_PLAN}, "must not carry vl_plan"),
        ({"modality": "video-language"}, "modality"),
        ({"revision": "0123456789ABCDEF0123456789ABCDEF01234567"}, "revision"),
        ({"revision": "0123456789abcdef"}, "revision"),
        ({"revision": "main"}, "revision"),
        ({"hf_id": "no-slash"}, "hf_id"),
        ({"unexpected": 1}, "unexpected"),
        ({"audio_plan": {**AUDIO_PLAN, "bogus": 1}}, "bogus"),
        ({"audio_plan": {**AUDIO_PLAN, "num_audio_tokens": 0}}, "num_audio_tokens"),
    ],
)
def test_bad_specs_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        BaseModelSpec.model_validate(spec_dict(**overrides))


def test_specs_are_frozen() -> None:
    spec = load_base_spec("qwen2-audio-7b-instruct")
    with pytest.raises(ValidationError):
        spec.revision = "f" * 40  # type: ignore[misc]


def test_user_spec_from_json_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(spec_dict()), encoding="utf-8")
    spec = load_base_spec(str(path))
    assert spec.key == "my-audio"
    assert load_base_spec(path) == spec


def test_user_spec_file_without_json_suffix(tmp_path: Path) -> None:
    path = tmp_path / "spec"
    path.write_text(json.dumps(spec_dict()), encoding="utf-8")
    assert load_base_spec(str(path)).hf_id == "org/tiny-audio"


def test_unknown_key_lists_known_ones() -> None:
    with pytest.raises(BaseSpecError, match="qwen2-audio-7b-instruct") as info:
        load_base_spec("gpt-9")
    assert isinstance(info.value, ExportError)
    assert info.value.exit_code == 9


def test_bad_spec_files(tmp_path: Path) -> None:
    with pytest.raises(BaseSpecError, match="cannot read"):
        load_base_spec(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{nope", encoding="utf-8")
    with pytest.raises(BaseSpecError, match="not valid JSON"):
        load_base_spec(str(bad))
    shape = tmp_path / "shape.json"
    shape.write_text(json.dumps(spec_dict(audio_plan=None)), encoding="utf-8")
    with pytest.raises(BaseSpecError, match="requires audio_plan"):
        load_base_spec(str(shape))
    listy = tmp_path / "list.json"
    listy.write_text("[]", encoding="utf-8")
    with pytest.raises(BaseSpecError, match="ill-shaped"):
        load_base_spec(str(listy))
