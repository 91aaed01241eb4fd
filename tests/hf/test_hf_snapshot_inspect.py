"""`inspect_snapshot_tree`: what the packer learns from an HF snapshot tree."""

from __future__ import annotations

from pathlib import Path

import pytest
from hf_fakes import FakeProcessor, fake_weights

from snaparc.errors import ExportManifestError
from snaparc.hf.export import Store, export_snapshot, inspect_snapshot_tree, load_base_spec
from snaparc.hf.export.tree import METADATA_KEYS

AUDIO = load_base_spec("qwen2-audio-7b-instruct")


def files_of(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture
def exported(fake_store: Store) -> Path:
    return export_snapshot(
        fake_store, AUDIO, adapter_name="voice", processor=FakeProcessor()
    ).export_dir


def test_plain_tree_is_not_a_snapshot(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    assert inspect_snapshot_tree(tmp_path, ["a.txt"]) is None


def test_clean_export_has_no_undeclared_files(exported: Path) -> None:
    info = inspect_snapshot_tree(exported, files_of(exported))
    assert info is not None
    assert info.undeclared == []
    assert info.metadata == {
        "base_model_hf_id": "Qwen/Qwen2-Audio-7B-Instruct",
        "base_model_revision": AUDIO.revision,
        "base_model_architecture": "Qwen2AudioForConditionalGeneration",
        "modality": "audio-language",
        "adapter_version": 3,
        "adapter_name": "voice",
        "export_target": "hf_snapshot",
    }
    assert tuple(info.metadata) == METADATA_KEYS
    for value in info.metadata.values():
        assert value is None or type(value) in (str, int, bool)


def test_undeclared_files_are_listed(exported: Path) -> None:
    (exported / "notes.md").write_text("hi")
    (exported / "adapter/optimizer.pt").write_bytes(b"\0" * 8)
    info = inspect_snapshot_tree(exported, files_of(exported))
    assert info is not None
    assert info.undeclared == ["adapter/optimizer.pt", "notes.md"]


def test_tampered_tree_is_refused(exported: Path) -> None:
    (exported / "adapter/adapter_model.safetensors").write_bytes(fake_weights(b"THREE"))
    with pytest.raises(ExportManifestError, match="sha256 mismatch"):
        inspect_snapshot_tree(exported, files_of(exported))


def test_declared_file_left_out_of_the_pack_is_refused(exported: Path) -> None:
    files = [f for f in files_of(exported) if f != "processor/tokenizer.json"]
    with pytest.raises(ExportManifestError, match=r"not being packed: processor/tokenizer\.json"):
        inspect_snapshot_tree(exported, files)


def test_broken_manifest_is_refused(exported: Path) -> None:
    (exported / "snapshot_manifest.json").write_text("{}")
    with pytest.raises(ExportManifestError, match="not a valid snapshot manifest"):
        inspect_snapshot_tree(exported, files_of(exported))
