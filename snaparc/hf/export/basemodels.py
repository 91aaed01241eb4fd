"""Base model specs: which HF base an adapter belongs to, and how to feed it.

A `BaseModelSpec` pins a base by `hf_id` + `revision` (a 40-hex commit) and
carries exactly the preprocessor plan its modality needs:

- `audio-language` -> `audio_plan` (`AudioPreprocessorPlan`), no `vl_plan`;
- `vision-language` -> `vl_plan` (`VlPreprocessorPlan`), no `audio_plan`;
- `text` -> neither.

A missing or an extra plan is refused at construction, so code that holds a
spec can rely on the plan being there. Specs are frozen and refuse unknown
fields. `load_base_spec` resolves a registry key or a user's JSON file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from snaparc.errors import ExportError, IOFailure
from snaparc.sidefiles import read_regular_file

Modality = Literal["text", "vision-language", "audio-language"]

_REVISION_PATTERN = r"^[0-9a-f]{40}$"
_HF_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$"
_KEY_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_MAX_SPEC_FILE_BYTES = 1 << 20  # a spec is a few hundred bytes


class BaseSpecError(ExportError):
    """A base model spec that is unknown, unreadable or ill-shaped."""


class AudioPreprocessorPlan(BaseModel):
    """How raw audio becomes model input for an audio-language base."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sample_rate: int = Field(..., gt=0, description="Required input sample rate in Hz.")
    max_length_seconds: float = Field(..., gt=0, description="Longer clips are truncated.")
    audio_token: str = Field(..., min_length=1, description="Placeholder token in the prompt.")
    num_audio_tokens: int = Field(..., ge=1, description="Tokens one full clip expands to.")


class VlPreprocessorPlan(BaseModel):
    """How an image becomes model input for a vision-language base."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_size: int = Field(..., gt=0, description="Square side in pixels fed to the tower.")
    resize_policy: Literal["fixed", "dynamic"] = Field(
        ..., description="`fixed`: resize+crop to target_size; `dynamic`: native resolution."
    )
    image_token: str = Field(..., min_length=1, description="Placeholder token in the prompt.")
    num_image_tokens: int = Field(..., ge=1, description="Tokens one image expands to.")


class BaseModelSpec(BaseModel):
    """A pinned HF base model and the preprocessor plan its modality needs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(..., pattern=_KEY_PATTERN)
    hf_id: str = Field(..., pattern=_HF_ID_PATTERN)
    revision: str = Field(..., pattern=_REVISION_PATTERN, description="40 lowercase hex.")
    architecture: str = Field(..., pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    modality: Modality
    redistributable: bool
    audio_plan: AudioPreprocessorPlan | None = None
    vl_plan: VlPreprocessorPlan | None = None

    @model_validator(mode="after")
    def _exactly_the_plan_the_modality_needs(self) -> BaseModelSpec:
        needs_audio = self.modality == "audio-language"
        needs_vl = self.modality == "vision-language"
        problems = []
        for field, needed in (("audio_plan", needs_audio), ("vl_plan", needs_vl)):
            present = getattr(self, field) is not None
            if needed and not present:
                problems.append(f"modality {self.modality!r} requires {field}")
            if present and not needed:
                problems.append(f"modality {self.modality!r} must not carry {field}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


# Revisions below are plausible pins to be checked against the Hub before a
# release: they name the commit we intend to support, not one verified here.
_REGISTRY: tuple[BaseModelSpec, ...] = (
    BaseModelSpec(
        key="qwen2-audio-7b-instruct",
        hf_id="Qwen/Qwen2-Audio-7B-Instruct",
        revision="0a095220c30b7b31434169c3086508ef3ea5bf0a",
        architecture="Qwen2AudioForConditionalGeneration",
        modality="audio-language",
        redistributable=False,
        audio_plan=AudioPreprocessorPlan(
            sample_rate=16000,
            max_length_seconds=30.0,
            audio_token="<|AUDIO|>",
            num_audio_tokens=750,
        ),
    ),
    BaseModelSpec(
        key="llava-1.5-7b",
        hf_id="llava-hf/llava-1.5-7b-hf",
        revision="8c85e9a4d626b7b908448be32c1ba5ad79b95e76",
        architecture="LlavaForConditionalGeneration",
        modality="vision-language",
        redistributable=False,
        vl_plan=VlPreprocessorPlan(
            target_size=336,
            resize_policy="fixed",
            image_token="<image>",
            num_image_tokens=576,
        ),
    ),
    BaseModelSpec(
        key="qwen2.5-0.5b-instruct",
        hf_id="Qwen/Qwen2.5-0.5B-Instruct",
        revision="7ae557604adf67be50417f59c2c2f167def9a775",
        architecture="Qwen2ForCausalLM",
        modality="text",
        redistributable=True,
    ),
)

BASE_MODELS: dict[str, BaseModelSpec] = {spec.key: spec for spec in _REGISTRY}
"""The built-in registry, by key. Read-only by convention."""


def known_base_keys() -> list[str]:
    """The registry keys, sorted."""
    return sorted(BASE_MODELS)


def load_base_spec(key_or_json_path: str | Path) -> BaseModelSpec:
    """Return the spec for a registry key, or parse a user's spec JSON file.

    A `Path`, or a string that names an existing file or ends in `.json`, is
    read as a JSON object and validated like a registry entry. Anything else
    is looked up as a key. Raises `BaseSpecError` (an `ExportError`) for an
    unknown key, an unreadable or unparsable file, or an ill-shaped spec.
    """
    text = str(key_or_json_path)
    if isinstance(key_or_json_path, str) and text in BASE_MODELS:
        return BASE_MODELS[text]
    path = Path(text)
    if isinstance(key_or_json_path, Path) or text.endswith(".json") or path.is_file():
        return _load_spec_file(path)
    raise BaseSpecError(
        f"unknown base model {text!r}: use one of {', '.join(known_base_keys())}, "
        "or pass the path of a spec JSON file"
    )


def _load_spec_file(path: Path) -> BaseModelSpec:
    try:
        raw = read_regular_file(
            path,
            limit=_MAX_SPEC_FILE_BYTES,
            what="base model spec",
            missing=_spec_not_found,
            too_large=BaseSpecError,
        )
    except IOFailure as exc:
        raise BaseSpecError(exc.message, path=str(path)) from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaseSpecError(
            f"base model spec {path} is not valid JSON: {exc}", path=str(path)
        ) from exc
    try:
        return BaseModelSpec.model_validate(data)
    except ValidationError as exc:
        raise BaseSpecError(
            f"base model spec {path} is ill-shaped: {_summarize(exc)}", path=str(path)
        ) from exc


def _spec_not_found(message: str, *, path: str) -> BaseSpecError:
    return BaseSpecError(f"cannot read base model spec {path}: no such file", path=path)


def _summarize(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(spec)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
