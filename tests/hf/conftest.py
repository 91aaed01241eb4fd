"""Fixtures for the HF snapshot tests.

Fake stores (a JSON `adapter_config.json` plus a weights file, no torch) serve
the layout and error-path tests; the session-scoped `tiny_audio_case` and
`tiny_llava_case` build the real tiny models once (see `tiny_models.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hf_fakes import write_fake_adapter
from tiny_models import TinyCase, build_case

from snaparc.hf.export import Store


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


@pytest.fixture(scope="session")
def tiny_audio_case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyCase]:
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    yield build_case("audio", tmp_path_factory.mktemp("tiny_audio"))


@pytest.fixture(scope="session")
def tiny_llava_case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyCase]:
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    yield build_case("llava", tmp_path_factory.mktemp("tiny_llava"))
