"""`snaparc pack` of a snapshot export: validated first, undeclared files refused,
base model pin carried into the archive metadata and shown by `ls`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hf_fakes import FakeProcessor

from snaparc.cli import main
from snaparc.hf import BASE_MODELS, Store, export_snapshot
from snaparc.inputs import open_archive_input
from snaparc.listing import read_listing


@pytest.fixture
def export_dir(fake_store: Store) -> Path:
    spec = BASE_MODELS["qwen2-audio-7b-instruct"]
    return export_snapshot(fake_store, spec, processor=FakeProcessor()).export_dir


def test_pack_records_base_model_pin(
    export_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "a.dlmsnap"
    assert main(["pack", str(export_dir), "-o", str(out), "-q"]) == 0
    with open_archive_input(out) as f:
        meta = read_listing(f).manifest.metadata
    spec = BASE_MODELS["qwen2-audio-7b-instruct"]
    assert meta["base_model_hf_id"] == spec.hf_id
    assert meta["base_model_revision"] == spec.revision
    assert meta["modality"] == "audio-language"
    assert meta["adapter_version"] == 2
    assert main(["ls", str(out)]) == 0
    assert spec.revision in capsys.readouterr().out


def test_pack_refuses_undeclared_files_unless_allowed(export_dir: Path, tmp_path: Path) -> None:
    (export_dir / "adapter" / "base_model.safetensors").write_bytes(b"base weights!")
    out = tmp_path / "a.dlmsnap"
    assert main(["pack", str(export_dir), "-o", str(out), "-q"]) == 7
    assert not out.exists()
    assert main(["pack", str(export_dir), "-o", str(out), "-q", "--allow-undeclared"]) == 0
    with open_archive_input(out) as f:
        paths = {e.path for e in read_listing(f).manifest.files}
    assert "adapter/base_model.safetensors" in paths


def test_pack_refuses_tampered_artifact(export_dir: Path, tmp_path: Path) -> None:
    weights = export_dir / "adapter" / "adapter_model.safetensors"
    weights.write_bytes(b"X" * len(weights.read_bytes()))
    out = tmp_path / "a.dlmsnap"
    assert main(["pack", str(export_dir), "-o", str(out), "-q"]) == 9
    assert not out.exists()


def test_pack_refuses_missing_declared_artifact(export_dir: Path, tmp_path: Path) -> None:
    manifest = json.loads((export_dir / "snapshot_manifest.json").read_text())
    victim = manifest["artifacts"][0]["path"]
    (export_dir / victim).unlink()
    assert main(["pack", str(export_dir), "-o", str(tmp_path / "a.dlmsnap"), "-q"]) == 9
