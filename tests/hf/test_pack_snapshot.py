"""`snaparc pack` of a snapshot export: validated first, undeclared files refused,
base model pin carried into the archive metadata and shown by `ls`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hf_fakes import FakeProcessor, fake_weights

from snaparc.archive.listing import read_listing
from snaparc.cli import main
from snaparc.hf.export import BASE_MODELS, Store, export_snapshot
from snaparc.sources.archive import open_source as open_archive_input


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
    (export_dir / "adapter" / "base_model.safetensors").write_bytes(fake_weights(b"base weights!"))
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


def _v1_and_delta(fake_store: Store, export_dir: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """(v1 archive, the v2 export dir, the v2 delta thin on v1): v2 retrains the weights."""
    v1 = tmp_path / "v1.dlmsnap"
    assert main(["pack", str(export_dir), "-o", str(v1), "-q"]) == 0
    weights = fake_store.root / "adapter/versions/v0002/adapter_model.safetensors"
    weights.write_bytes(fake_weights(b"retrained weights"))
    spec = BASE_MODELS["qwen2-audio-7b-instruct"]
    export_v2 = export_snapshot(fake_store, spec, processor=FakeProcessor()).export_dir
    delta = tmp_path / "delta.dlmsnap"
    assert main(["pack", str(export_v2), "-o", str(delta), "--base", str(v1), "-q"]) == 0
    return v1, export_v2, delta


def test_thin_archive_materializes_with_its_base(
    fake_store: Store, export_dir: Path, tmp_path: Path
) -> None:
    v1, export_dir, delta = _v1_and_delta(fake_store, export_dir, tmp_path)
    dest = tmp_path / "m"
    assert main(["materialize", str(delta), str(dest), "-q"]) == 1  # missing blobs
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


def _tree(root: Path) -> dict[str, bytes | str]:
    """Every entry under root: file bytes, or the target of a link."""
    out: dict[str, bytes | str] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "-> " + str(p.readlink())
        elif p.is_file():
            out[rel] = p.read_bytes()
    return out


def _snapshot_matches(cache: Path, export_dir: Path) -> None:
    """refs/main names a snapshot whose every file has the export's bytes."""
    repo = cache / "models--org--thin"
    snap = repo / "snapshots" / (repo / "refs" / "main").read_text()
    files = {p.relative_to(snap).as_posix(): p.read_bytes() for p in snap.rglob("*") if p.is_file()}
    exported = {p.relative_to(export_dir).as_posix(): p.read_bytes() for p in export_dir.rglob("*")
                if p.is_file()}  # fmt: skip
    # adapter/P and processor/P sit at the repo root; README.md and the
    # manifest keep their paths; a losing duplicate keeps its export path.
    for path, data in files.items():
        candidates = [path, f"adapter/{path}", f"processor/{path}"]
        assert data in [exported.get(c) for c in candidates], path
    assert sorted(set(exported.values())) == sorted(set(files.values()))


def test_thin_archive_into_the_hub_cache(
    fake_store: Store, export_dir: Path, tmp_path: Path
) -> None:
    """v1 in the cache, then the v2 delta: the cache supplies v1's blobs, no --base needed;
    a cache without them needs --base, and a wrong or missing base changes nothing."""
    v1, export_v2, delta = _v1_and_delta(fake_store, export_dir, tmp_path)
    with open_archive_input(str(delta)) as f:
        external = [b for b in read_listing(f).manifest.blobs if b.external]
    assert external, "the delta must leave blobs to its base"

    def materialize(cache: Path, *extra: str) -> int:
        argv = ["materialize", str(delta), "--hf-cache", str(cache), "--repo-id", "org/thin"]
        return main([*argv, "-q", *extra])

    # The cache already holds v1: no --base needed.
    warm = tmp_path / "warm"
    assert (
        main(["materialize", str(v1), "--hf-cache", str(warm), "--repo-id", "org/thin", "-q"]) == 0
    )
    assert materialize(warm) == 0
    _snapshot_matches(warm, export_v2)

    # A fresh cache: refused without a base, and with the wrong one, untouched both times.
    cold = tmp_path / "cold"
    cold.mkdir()
    assert materialize(cold) == 1  # the base's blobs are missing
    other = tmp_path / "other.dlmsnap"
    assert main(["pack", str(export_v2 / "processor"), "-o", str(other), "-q"]) == 0
    assert materialize(cold, "--base", str(other)) == 1
    assert list(cold.iterdir()) == []
    assert materialize(cold, "--base", str(v1)) == 0
    _snapshot_matches(cold, export_v2)

    # A damaged blob in the cache is not trusted: it needs the base again, which repairs it.
    blob = cold / "models--org--thin" / "blobs" / external[0].sha256
    blob.chmod(0o644)
    blob.write_bytes(b"x" * external[0].size)
    before = _tree(cold)
    assert materialize(cold) == 1  # the base's blobs are missing
    assert _tree(cold) == before
    assert materialize(cold, "--base", str(v1)) == 0
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == external[0].sha256
