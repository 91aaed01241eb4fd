"""HF snapshot export with fake adapters/processors: layout, manifest, atomic replace.

No torch here: the real-model round trips live in test_hf_export_models.py.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from hf_fakes import FakeProcessor, fake_weights
from snaparc_testlib import dead_owner_tags

from snaparc.errors import ExportError, ExportManifestError
from snaparc.hf.export import BASE_MODELS, BaseModelSpec, Store, export_snapshot, load_base_spec
from snaparc.hf.manifest import (
    AudioSnapshotManifest,
    VlSnapshotManifest,
    load_snapshot_manifest,
    sha256_file,
    verify_artifacts,
)
from snaparc.publish import owner_tag, remove_owned
from snaparc.publish import staging as staging_mod

AUDIO = load_base_spec("qwen2-audio-7b-instruct")
VL = load_base_spec("llava-1.5-7b")


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def leftovers(store: Store) -> list[str]:
    return sorted(p.name for p in store.exports.iterdir() if p.name.startswith("."))


def test_audio_export_layout_and_manifest(fake_store: Store) -> None:
    result = export_snapshot(fake_store, AUDIO, processor=FakeProcessor(), created_by="t 1")
    out = fake_store.root / "exports/hf-audio-snapshot"
    assert result.export_dir == out
    assert sorted(tree(out)) == [
        "README.md",
        "adapter/adapter_config.json",
        "adapter/adapter_model.safetensors",
        "adapter/extra/notes.txt",
        "processor/processor_config.json",
        "processor/tokenizer.json",
        "snapshot_manifest.json",
    ]
    assert (out / "adapter/adapter_model.safetensors").read_bytes() == fake_weights(b"two")
    raw = result.manifest_path.read_text(encoding="utf-8")
    data = json.loads(raw)
    assert raw == json.dumps(data, sort_keys=True, indent=2) + "\n"
    assert data["export_target"] == "hf_snapshot"
    assert data["modality"] == "audio-language"
    assert data["created_by"] == "t 1"
    assert data["base_model_hf_id"] == "Qwen/Qwen2-Audio-7B-Instruct"
    assert data["base_model_revision"] == AUDIO.revision
    assert data["base_model_architecture"] == "Qwen2AudioForConditionalGeneration"
    assert (data["sample_rate"], data["max_length_seconds"]) == (16000, 30.0)
    assert (data["audio_token"], data["num_audio_tokens"]) == ("<|AUDIO|>", 750)
    assert (data["adapter_version"], data["adapter_name"]) == (2, None)
    paths = [a["path"] for a in data["artifacts"]]
    assert paths == sorted(paths) and len(paths) == 5
    for artifact in data["artifacts"]:
        assert artifact["sha256"] == sha256_file(out / artifact["path"])
        assert artifact["size_bytes"] == (out / artifact["path"]).stat().st_size
    manifest = load_snapshot_manifest(out)
    assert isinstance(manifest, AudioSnapshotManifest)
    assert manifest == result.manifest
    verify_artifacts(out, manifest)
    assert leftovers(fake_store) == []


def test_vl_export_goes_to_hf_snapshot(fake_store: Store) -> None:
    result = export_snapshot(fake_store, VL, adapter_name="voice")
    assert result.export_dir == fake_store.root / "exports/hf-snapshot"
    assert result.processor_dir is None
    assert not (result.export_dir / "processor").exists()
    manifest = load_snapshot_manifest(result.export_dir)
    assert isinstance(manifest, VlSnapshotManifest)
    assert (manifest.adapter_version, manifest.adapter_name) == (3, "voice")
    assert (manifest.image_token, manifest.num_image_tokens) == ("<image>", 576)
    assert (manifest.target_size, manifest.resize_policy) == (336, "fixed")
    readme = result.readme_path.read_text(encoding="utf-8")
    assert 'AutoProcessor.from_pretrained("llava-hf/llava-1.5-7b-hf"' in readme


def test_readme_has_pinned_load_instructions(fake_store: Store) -> None:
    result = export_snapshot(fake_store, AUDIO, processor=FakeProcessor())
    readme = result.readme_path.read_text(encoding="utf-8")
    assert "from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration" in readme
    assert '"Qwen/Qwen2-Audio-7B-Instruct"' in readme
    assert f'revision="{AUDIO.revision}"' in readme
    assert 'PeftModel.from_pretrained(base, "./adapter")' in readme
    assert 'AutoProcessor.from_pretrained("./processor")' in readme


def test_explicit_adapter_path(fake_store: Store) -> None:
    path = fake_store.root / "adapter/versions/v0001"
    result = export_snapshot(fake_store, AUDIO, adapter_path=path)
    assert result.manifest.adapter_version == 1
    assert (result.adapter_dir / "adapter_model.safetensors").read_bytes() == fake_weights(b"one")


def test_text_base_refused(fake_store: Store) -> None:
    text = next(s for s in BASE_MODELS.values() if s.modality == "text")
    with pytest.raises(ExportError, match="audio-language and vision-language"):
        export_snapshot(fake_store, text)
    assert not fake_store.exports.exists()


def test_processor_and_processor_dir_together_refused(fake_store: Store, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="not both"):
        export_snapshot(fake_store, AUDIO, processor=FakeProcessor(), processor_dir=tmp_path)


def test_object_without_save_pretrained_refused(fake_store: Store) -> None:
    with pytest.raises(ExportError, match="no save_pretrained"):
        export_snapshot(fake_store, AUDIO, processor=object())
    assert leftovers(fake_store) == []


def test_missing_processor_dir_refused(fake_store: Store, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="processor dir"):
        export_snapshot(fake_store, AUDIO, processor_dir=tmp_path / "nope")


def test_adapter_with_symlink_refused(fake_store: Store, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("x")
    os.symlink(secret, fake_store.root / "adapter/versions/v0002/link")
    with pytest.raises(ExportError, match="not a regular file"):
        export_snapshot(fake_store, AUDIO)
    assert leftovers(fake_store) == []


def test_symlinked_export_target_refused(fake_store: Store, tmp_path: Path) -> None:
    fake_store.exports.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", fake_store.exports / "hf-audio-snapshot")
    with pytest.raises(ExportError, match="not a plain directory"):
        export_snapshot(fake_store, AUDIO)


def test_rename_exchange_swaps_two_dirs(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "f").write_text("a")
    (b / "f").write_text("b")
    if not staging_mod.rename_with_flags(a, b, staging_mod.RENAME_EXCHANGE):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available here")
    assert ((a / "f").read_text(), (b / "f").read_text()) == ("b", "a")


@pytest.mark.parametrize("exchange", [True, False], ids=["rename-exchange", "rename-aside"])
def test_reexport_replaces_completely(
    fake_store: Store, monkeypatch: pytest.MonkeyPatch, exchange: bool
) -> None:
    if not exchange:
        monkeypatch.setattr(staging_mod, "rename_with_flags", lambda *_a: False)
    first = export_snapshot(fake_store, AUDIO, processor=FakeProcessor(tag="old"))
    (first.export_dir / "stray.txt").write_text("left over", encoding="utf-8")
    (first.export_dir / "adapter" / "stale.bin").write_bytes(b"stale")
    second = export_snapshot(
        fake_store,
        AUDIO,
        adapter_path=fake_store.root / "adapter/versions/v0001",
        processor=FakeProcessor(tag="new"),
    )
    files = tree(second.export_dir)
    assert "stray.txt" not in files and "adapter/stale.bin" not in files
    assert files["adapter/adapter_model.safetensors"] == fake_weights(b"one")
    assert b'"new"' in files["processor/processor_config.json"]
    verify_artifacts(second.export_dir, load_snapshot_manifest(second.export_dir))
    assert leftovers(fake_store) == []


def test_failed_export_leaves_old_export_intact(fake_store: Store) -> None:
    first = export_snapshot(fake_store, AUDIO, processor=FakeProcessor(tag="old"))
    before = tree(first.export_dir)
    with pytest.raises(ExportError, match="saving the processor failed: disk on fire"):
        export_snapshot(fake_store, AUDIO, adapter_name="voice", processor=FakeProcessor(fail=True))
    assert tree(first.export_dir) == before
    assert leftovers(fake_store) == []


def test_failed_swap_leaves_old_export_intact(
    fake_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = export_snapshot(fake_store, AUDIO)
    before = tree(first.export_dir)
    monkeypatch.setattr(staging_mod, "rename_with_flags", lambda *_a: False)
    real_rename = os.rename
    calls: list[str] = []

    def flaky_rename(src: os.PathLike[str], dst: os.PathLike[str]) -> None:
        calls.append(Path(src).name)
        if Path(src).name.startswith(".hf-audio-snapshot.snaparc-staging-"):
            raise OSError(28, "No space left on device")
        real_rename(src, dst)

    monkeypatch.setattr(staging_mod.os, "rename", flaky_rename)
    with pytest.raises(ExportError, match=r"(?i)no space left"):
        export_snapshot(fake_store, AUDIO, adapter_name="voice")
    assert len(calls) == 3  # old aside, new in (fails), old back
    assert tree(first.export_dir) == before
    assert leftovers(fake_store) == []


def test_first_export_without_renameat2(fake_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(staging_mod, "rename_with_flags", lambda *_a: False)
    result = export_snapshot(fake_store, VL)
    verify_artifacts(result.export_dir, load_snapshot_manifest(result.export_dir))
    assert leftovers(fake_store) == []


class InterruptingProcessor:
    """Ctrl-C lands while the processor is being saved, before any cleanup code
    runs: it records the hidden entries beside the export and what the CLI's
    signal cleanup (`remove_owned`) removes, then raises KeyboardInterrupt."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.hidden: list[str] = []
        self.removed: list[str] = []

    def save_pretrained(self, out: str) -> None:
        Path(out, "processor_config.json").write_text("{}", encoding="utf-8")
        self.hidden = leftovers(self.store)
        self.removed = sorted(p.name for p in remove_owned() if p.parent == self.store.exports)
        raise KeyboardInterrupt


def test_interrupted_export_staging_is_claimed(fake_store: Store) -> None:
    """The staging dir carries PID@HOST and is claimed: a signal mid-export
    leaves only the previous export."""
    first = export_snapshot(fake_store, AUDIO, processor=FakeProcessor(tag="old"))
    before = tree(first.export_dir)
    proc = InterruptingProcessor(fake_store)
    with pytest.raises(KeyboardInterrupt):
        export_snapshot(fake_store, AUDIO, adapter_name="voice", processor=proc)
    tag = re.escape(owner_tag())
    assert len(proc.hidden) == 1
    assert re.fullmatch(
        rf"\.hf-audio-snapshot\.snaparc-staging-{tag}-[0-9a-f]{{8}}", proc.hidden[0]
    )
    assert proc.removed == proc.hidden
    assert tree(first.export_dir) == before
    assert sorted(p.name for p in fake_store.exports.iterdir()) == ["hf-audio-snapshot"]


def test_next_export_removes_dead_staging_of_this_host_only(fake_store: Store) -> None:
    """A killed export's staging dir goes with the next export; another
    machine's (a store on a shared filesystem) is left alone."""
    ours, foreign = dead_owner_tags()
    fake_store.exports.mkdir(parents=True)
    stale = fake_store.exports / f".hf-audio-snapshot.snaparc-staging-{ours}-deadbeef"
    (stale / "adapter").mkdir(parents=True)
    (stale / "adapter" / "half.bin").write_bytes(b"half")
    os.chmod(stale / "adapter", 0o500)
    far = fake_store.exports / f".hf-audio-snapshot.snaparc-staging-{foreign}-deadbeef"
    far.mkdir()
    (far / "busy").write_bytes(b"another machine is exporting")
    result = export_snapshot(fake_store, AUDIO)
    verify_artifacts(result.export_dir, load_snapshot_manifest(result.export_dir))
    assert not stale.exists()
    assert (far / "busy").read_bytes() == b"another machine is exporting"
    assert leftovers(fake_store) == [far.name]


# --- load / verify errors ------------------------------------------------------


@pytest.fixture
def exported(fake_store: Store) -> Path:
    return export_snapshot(fake_store, AUDIO, processor=FakeProcessor()).export_dir


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ExportManifestError, match="missing"):
        load_snapshot_manifest(tmp_path)


def test_unparsable_manifest(exported: Path) -> None:
    (exported / "snapshot_manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ExportManifestError, match="cannot parse"):
        load_snapshot_manifest(exported)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("base_model_revision"), "base_model_revision"),
        (lambda d: d.update(modality="text"), "modality"),
        (lambda d: d.update(adapter_version=0), "adapter_version"),
        (lambda d: d.update(surprise=1), "surprise"),
        (lambda d: d.update(export_target="gguf"), "export_target"),
        (lambda d: d["artifacts"][0].update(path="../etc/passwd"), "relative posix"),
        (lambda d: d["artifacts"][0].update(path="/abs"), "relative posix"),
        (lambda d: d["artifacts"][0].update(sha256="XYZ"), "sha256"),
        (lambda d: d["artifacts"].append(dict(d["artifacts"][0])), "listed twice"),
        (lambda d: d.pop("audio_token"), "audio_token"),
        (lambda d: d.update(image_token="<image>"), "image_token"),
    ],
)
def test_ill_shaped_manifest(exported: Path, mutate: object, message: str) -> None:
    path = exported / "snapshot_manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    mutate(data)  # type: ignore[operator]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ExportManifestError, match=message):
        load_snapshot_manifest(exported)


def test_manifest_that_is_not_an_object(exported: Path) -> None:
    (exported / "snapshot_manifest.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ExportManifestError, match="not a valid snapshot manifest"):
        load_snapshot_manifest(exported)


def test_missing_artifact(exported: Path) -> None:
    manifest = load_snapshot_manifest(exported)
    (exported / "processor/tokenizer.json").unlink()
    with pytest.raises(ExportManifestError, match="missing declared artifact processor/tokenizer"):
        verify_artifacts(exported, manifest)


def test_tampered_artifact_same_size(exported: Path) -> None:
    manifest = load_snapshot_manifest(exported)
    (exported / "adapter/adapter_model.safetensors").write_bytes(fake_weights(b"TWO"))
    with pytest.raises(ExportManifestError, match="sha256 mismatch for adapter/adapter_model"):
        verify_artifacts(exported, manifest)


def test_artifact_size_mismatch(exported: Path) -> None:
    manifest = load_snapshot_manifest(exported)
    (exported / "adapter/adapter_model.safetensors").write_bytes(b"two plus")
    with pytest.raises(ExportManifestError, match="size mismatch"):
        verify_artifacts(exported, manifest)


def test_symlinked_artifact_refused(exported: Path, tmp_path: Path) -> None:
    manifest = load_snapshot_manifest(exported)
    target = exported / "adapter/adapter_model.safetensors"
    copy = tmp_path / "copy"
    copy.write_bytes(target.read_bytes())
    target.unlink()
    os.symlink(copy, target)
    with pytest.raises(ExportManifestError, match="not a regular file"):
        verify_artifacts(exported, manifest)


def test_spec_from_user_json_exports(fake_store: Store, tmp_path: Path) -> None:
    spec = BaseModelSpec.model_validate(
        {**AUDIO.model_dump(), "key": "mine", "hf_id": "me/tiny-audio"}
    )
    path = tmp_path / "mine.json"
    path.write_text(spec.model_dump_json(), encoding="utf-8")
    result = export_snapshot(fake_store, load_base_spec(str(path)))
    assert result.manifest.base_model_hf_id == "me/tiny-audio"
