"""Torch-free stand-ins for HF snapshot tests: fake adapter dirs and processors."""

from __future__ import annotations

import json
from pathlib import Path

from snaparc_testlib import lora_weights


def fake_weights(payload: bytes) -> bytes:
    """The adapter_model.safetensors `write_fake_adapter` writes for `payload`:
    a valid safetensors file of LoRA tensors carrying those bytes."""
    return lora_weights(payload)


def write_fake_adapter(version_dir: Path, *, payload: bytes = b"lora-weights") -> Path:
    """A minimal PEFT-looking adapter dir (config + weights + a nested file);
    the weights are `fake_weights(payload)`."""
    version_dir.mkdir(parents=True, exist_ok=True)
    (version_dir / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "r": 4}), encoding="utf-8"
    )
    (version_dir / "adapter_model.safetensors").write_bytes(fake_weights(payload))
    (version_dir / "extra").mkdir(exist_ok=True)
    (version_dir / "extra" / "notes.txt").write_text("nested\n", encoding="utf-8")
    return version_dir


class FakeProcessor:
    """Stands in for a transformers processor: `save_pretrained` writes two files."""

    def __init__(self, *, fail: bool = False, tag: str = "p") -> None:
        self.fail = fail
        self.tag = tag

    def save_pretrained(self, out: str) -> None:
        Path(out, "processor_config.json").write_text(
            json.dumps({"processor_class": "Fake", "tag": self.tag}), encoding="utf-8"
        )
        if self.fail:
            raise RuntimeError("disk on fire")
        Path(out, "tokenizer.json").write_text("{}", encoding="utf-8")
