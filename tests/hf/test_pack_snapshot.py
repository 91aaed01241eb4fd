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


def test_thin_archive_materializes_with_its_base(
    fake_store: Store, export_dir: Path, tmp_path: Path
) -> None:
    v1 = tmp_path / "v1.dlmsnap"
    assert main(["pack", str(export_dir), "-o", str(v1), "-q"]) == 0
    weights = fake_store.root / "adapter/versions/v0002/adapter_model.safetensors"
    weights.write_bytes(b"retrained weights")
    spec = BASE_MODELS["qwen2-audio-7b-instruct"]
    export_dir = export_snapshot(fake_store, spec, processor=FakeProcessor()).export_dir
    delta = tmp_path / "delta.dlmsnap"
    assert main(["pack", str(export_dir), "-o", str(delta), "--base", str(v1), "-q"]) == 0
    dest = tmp_path / "m"
    assert main(["materialize", str(delta), str(dest), "-q"]) == 2
    assert not dest.exists()
    assert main(["materialize", str(delta), str(dest), "--base", str(v1), "-q"]) == 0
    for p in export_dir.rglob("*"):
        if p.is_file():
            assert (dest / p.relative_to(export_dir)).read_bytes() == p.read_bytes()
    other = tmp_path / "other.dlmsnap"
    assert main(["pack", str(tmp_path / "m" / "processor"), "-o", str(other), "-q"]) == 0
    wrong = tmp_path / "m2"
    assert main(["materialize", str(delta), str(wrong), "--base", str(other), "-q"]) == 1
    assert not wrong.exists()
