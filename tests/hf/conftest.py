"""Fixtures for the HF snapshot tests.

Fake stores (a JSON `adapter_config.json` plus a weights file, no torch) serve
the layout and error-path tests; the session-scoped `tiny_audio_case` and
`tiny_llava_case` build the real tiny models once (see `tiny_models.py`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hf_fakes import write_fake_adapter

from snaparc.hf import Store


@pytest.fixture
def fake_store(tmp_path: Path) -> Store:
    """A store with adapter v0001 and v0002 (current = v0002) and named `voice` v0003."""
    root = tmp_path / "store"
    write_fake_adapter(root / "adapter/versions/v0001", payload=b"one")
    write_fake_adapter(root / "adapter/versions/v0002", payload=b"two")
    (root / "adapter/current.txt").write_text("adapter/versions/v0002\n", encoding="utf-8")
    write_fake_adapter(root / "adapter/voice/versions/v0003", payload=b"three")
    (root / "adapter/voice/current.txt").write_text(
        "adapter/voice/versions/v0003", encoding="utf-8"
    )
    return Store(root)


@dataclass
class TinyCase:
    """A tiny base + LoRA, saved once per session.

    `base_dir`: the base saved before the LoRA was added; `store_template`: a
    store holding the adapter as `adapter/versions/v0001` (copy it, do not
    modify it); `peft_model`: the in-memory LoRA model; `batch`: processor
    output for `tiny.inputs`; `logits`: the in-memory model's logits on it.
    """

    tiny: Any
    peft_model: Any
    base_dir: Path
    processor_dir: Path
    store_template: Path
    batch: Any
    logits: Any

    def new_store(self, where: Path) -> Store:
        shutil.copytree(self.store_template, where)
        return Store(where)


def _build_case(kind: str, root: Path) -> TinyCase:
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    import tiny_models as tm

    tiny = tm.build_tiny_audio() if kind == "audio" else tm.build_tiny_llava()
    base_dir = root / "base"
    tiny.model.save_pretrained(str(base_dir))
    processor_dir = root / "processor"
    tiny.processor.save_pretrained(str(processor_dir))
    peft_model = tm.add_lora(tiny.model, tiny.lora_targets)
    store_template = root / "store"
    tm.save_adapter_to_store(peft_model, store_template)
    batch = tiny.processor(**tiny.inputs)
    logits = tm.forward_logits(peft_model, batch)
    return TinyCase(tiny, peft_model, base_dir, processor_dir, store_template, batch, logits)


@pytest.fixture(scope="session")
def tiny_audio_case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyCase]:
    yield _build_case("audio", tmp_path_factory.mktemp("tiny_audio"))


@pytest.fixture(scope="session")
def tiny_llava_case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyCase]:
    yield _build_case("llava", tmp_path_factory.mktemp("tiny_llava"))
