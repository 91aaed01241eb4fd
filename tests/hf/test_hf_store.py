"""Adapter resolution in a store: current, named, explicit, and every refusal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hf_fakes import write_fake_adapter

from snaparc.errors import ExportError
from snaparc.hf.export import AdapterResolutionError, Store, resolve_adapter
from snaparc.hf.export.store import check_adapter_name, version_from_dir_name


def test_current_adapter_follows_pointer(fake_store: Store) -> None:
    got = resolve_adapter(fake_store)
    assert got.path == (fake_store.root / "adapter/versions/v0002").resolve()
    assert got.version == 2
    assert got.name is None


def test_named_adapter_follows_its_own_pointer(fake_store: Store) -> None:
    got = resolve_adapter(fake_store, adapter_name="voice")
    assert got.path == (fake_store.root / "adapter/voice/versions/v0003").resolve()
    assert (got.version, got.name) == (3, "voice")


def test_explicit_path_takes_version_from_dir_name(fake_store: Store, tmp_path: Path) -> None:
    got = resolve_adapter(fake_store, adapter_path=fake_store.root / "adapter/versions/v0001")
    assert got.version == 1
    elsewhere = write_fake_adapter(tmp_path / "my-adapter")
    assert resolve_adapter(fake_store, adapter_path=elsewhere).version == 1
    v12 = write_fake_adapter(tmp_path / "v0012")
    assert resolve_adapter(fake_store, adapter_path=v12).version == 12


@pytest.mark.parametrize(
    ("name", "version"), [("v0007", 7), ("v0000", 1), ("v07", 1), ("v00012", 1), ("x", 1)]
)
def test_version_from_dir_name(name: str, version: int) -> None:
    assert version_from_dir_name(Path(name)) == version


def test_missing_pointer_says_what_to_do(fake_store: Store) -> None:
    (fake_store.root / "adapter/current.txt").unlink()
    with pytest.raises(AdapterResolutionError, match=r"no adapter pointer.*--adapter-path"):
        resolve_adapter(fake_store)


def test_missing_named_pointer(fake_store: Store) -> None:
    with pytest.raises(AdapterResolutionError, match="no adapter pointer"):
        resolve_adapter(fake_store, adapter_name="other")


@pytest.mark.parametrize("text", ["", "  \n", "\n"])
def test_empty_pointer_refused(fake_store: Store, text: str) -> None:
    (fake_store.root / "adapter/current.txt").write_text(text, encoding="utf-8")
    with pytest.raises(AdapterResolutionError, match="is empty"):
        resolve_adapter(fake_store)


def test_pointer_to_nothing_refused(fake_store: Store) -> None:
    (fake_store.root / "adapter/current.txt").write_text("adapter/versions/v0009")
    with pytest.raises(AdapterResolutionError, match="does not exist"):
        resolve_adapter(fake_store)


def test_pointer_escaping_with_dotdot_refused(fake_store: Store, tmp_path: Path) -> None:
    write_fake_adapter(tmp_path / "outside")
    (fake_store.root / "adapter/current.txt").write_text("../outside")
    with pytest.raises(AdapterResolutionError, match="outside the store root"):
        resolve_adapter(fake_store)


def test_pointer_escaping_with_absolute_path_refused(fake_store: Store, tmp_path: Path) -> None:
    outside = write_fake_adapter(tmp_path / "outside")
    (fake_store.root / "adapter/current.txt").write_text(str(outside))
    with pytest.raises(AdapterResolutionError, match="outside the store root"):
        resolve_adapter(fake_store)


def test_pointer_escaping_through_symlink_refused(fake_store: Store, tmp_path: Path) -> None:
    outside = write_fake_adapter(tmp_path / "outside")
    os.symlink(outside, fake_store.root / "adapter/versions/v0005")
    (fake_store.root / "adapter/current.txt").write_text("adapter/versions/v0005")
    with pytest.raises(AdapterResolutionError, match="outside the store root"):
        resolve_adapter(fake_store)


def test_symlink_inside_store_is_fine(fake_store: Store) -> None:
    os.symlink("v0001", fake_store.root / "adapter/versions/latest")
    (fake_store.root / "adapter/current.txt").write_text("adapter/versions/latest")
    got = resolve_adapter(fake_store)
    assert got.path.name == "v0001"
    assert got.version == 1


def test_pointer_to_file_refused(fake_store: Store) -> None:
    (fake_store.root / "adapter/current.txt").write_text("adapter/current.txt")
    with pytest.raises(AdapterResolutionError, match="not a directory"):
        resolve_adapter(fake_store)


def test_dir_without_adapter_config_refused(fake_store: Store) -> None:
    (fake_store.root / "adapter/versions/v0002/adapter_config.json").unlink()
    with pytest.raises(AdapterResolutionError, match="not a PEFT adapter"):
        resolve_adapter(fake_store)


@pytest.mark.parametrize(
    "name", ["", "Voice", "1voice", "_x", "a-b", "a/b", "..", "a" * 33, "voice\n"]
)
def test_bad_adapter_names_refused(fake_store: Store, name: str) -> None:
    with pytest.raises(AdapterResolutionError, match="invalid adapter name"):
        resolve_adapter(fake_store, adapter_name=name)


@pytest.mark.parametrize("name", ["a", "voice_2", "a" * 32])
def test_good_adapter_names(name: str) -> None:
    check_adapter_name(name)


def test_name_and_path_together_refused(fake_store: Store) -> None:
    with pytest.raises(AdapterResolutionError, match="not both"):
        resolve_adapter(fake_store, adapter_name="voice", adapter_path=fake_store.root)


def test_missing_store_and_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"store root .* does not exist"):
        resolve_adapter(Store(tmp_path / "nope"))
    with pytest.raises(ExportError, match=r"adapter path .* does not exist"):
        resolve_adapter(Store(tmp_path), adapter_path=tmp_path / "nope")
