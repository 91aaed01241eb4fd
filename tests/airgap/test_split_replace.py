"""`pack --split --force` replaces a split set without losing it on failure;
volumes are published like archive files; a FIFO volume never blocks."""

from __future__ import annotations

import os
import random
import stat
from pathlib import Path

import pytest
from snaparc_testlib import sample_files, tree_state, write_tree

import snaparc.archive.pack as pack_module
from snaparc import api
from snaparc.cli import main
from snaparc.errors import NotRegularFileError, SourceError


def _tree(root: Path, seed: int) -> Path:
    files = sample_files()
    # incompressible and over 2 MiB: three volumes of 1 MiB
    files["adapter/adapter_model.safetensors"] = random.Random(seed).randbytes(2_500_000)
    return write_tree(root, files)


@pytest.fixture
def old_set(tmp_path: Path) -> Path:
    out = tmp_path / "out" / "s.dlmsnap"
    out.parent.mkdir()
    api.pack(_tree(tmp_path / "v1", 1), out, split="1M")
    return out


def test_force_replaces_the_set_with_the_new_one(old_set: Path, tmp_path: Path) -> None:
    before = api.verify(old_set).archive_id
    new = api.pack(_tree(tmp_path / "v2", 2), old_set, split="1M", force=True)
    assert new.archive_id != before
    assert api.verify(old_set).archive_id == new.archive_id
    names = sorted(p.name for p in old_set.parent.iterdir())
    index = api.ls(old_set)  # the new index lists exactly the volumes that are there
    assert index.archive_id == new.archive_id
    assert all(not n.startswith(".") for n in names)


def test_a_failing_pack_with_force_leaves_the_previous_set_whole(
    old_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tree_state(old_set.parent)
    real = pack_module.write_archive

    def fail_halfway(plan, out, **kwargs):  # type: ignore[no-untyped-def]
        out.write(b"\0" * (1 << 20) * 2)  # two volumes' worth of temp bytes
        raise SourceError("a source file changed while it was being packed")

    monkeypatch.setattr(pack_module, "write_archive", fail_halfway)
    with pytest.raises(SourceError):
        api.pack(_tree(tmp_path / "v2", 2), old_set, split="1M", force=True)
    monkeypatch.setattr(pack_module, "write_archive", real)
    assert tree_state(old_set.parent) == before
    assert api.verify(old_set).report.blobs_verified > 0


def test_volumes_get_the_mode_of_an_archive_file(old_set: Path) -> None:
    mask = os.umask(0)
    os.umask(mask)
    for volume in old_set.parent.glob("s.dlmsnap.0*"):
        assert stat.S_IMODE(volume.stat().st_mode) == 0o644 & ~mask


@pytest.mark.timeout(30)
def test_a_fifo_volume_is_refused_not_read(
    old_set: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    second = old_set.with_name("s.dlmsnap.002")
    size = second.stat().st_size
    second.unlink()
    os.mkfifo(second)
    # The size check comes first for a FIFO found at open (size 0 is wrong);
    # sums hashes every volume and must refuse the FIFO instead of blocking on it.
    assert main(["verify", str(old_set), "-q"]) == 1
    capsys.readouterr()
    assert main(["sums", str(old_set)]) == 2
    assert "not a regular file" in capsys.readouterr().err
    assert size > 0
    with pytest.raises(NotRegularFileError):
        from snaparc.airgap.sums import hash_file

        hash_file(second)
