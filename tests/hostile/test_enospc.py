"""Disk full: refused before writing when the manifest says so, and cleaned up
when the filesystem fills anyway (ENOSPC mid-write). Exit 6, `DiskFullError`,
nothing left behind: no target, no staging, no temp file.

The mid-write cases mount small tmpfs filesystems (we run as root); they skip,
saying why, where mounting is not possible.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from snaparc.api import pack as pack_directory
from snaparc.api import unpack as unpack_path
from snaparc.cli import main
from snaparc.errors import DiskFullError
from tests.hostile import forge as F
from tests.hostile.conftest import make_canary, snapshot


def _mount(path: Path, options: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    try:
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a tmpfs for the ENOSPC test: {exc}")
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the ENOSPC test (needs root): {r.stderr.strip()}")


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Any]:
    """A factory mounting a tmpfs with given options; all unmounted at the end."""
    mounted: list[Path] = []

    def make(options: str) -> Path:
        mnt = tmp_path / f"fs{len(mounted)}"
        _mount(mnt, options)
        mounted.append(mnt)
        arena = mnt / "arena"
        arena.mkdir()
        make_canary(arena)
        return arena

    yield make
    for mnt in mounted:
        subprocess.run(["umount", "-l", str(mnt)], check=False, timeout=30)


def _state(arena: Path) -> tuple[set[str], dict[str, Any]]:
    return set(os.listdir(arena)), snapshot(arena / "canary")


def _expect_disk_full(argv: list[str], archive: Path, arena: Path, **kw: Any) -> None:
    before = _state(arena)
    target = arena / "out"
    assert main([*argv, "--quiet"]) == DiskFullError.exit_code
    assert _state(arena) == before, "something was left behind"
    with pytest.raises(DiskFullError):
        unpack_path(archive, target, threads=2, **kw)
    assert _state(arena) == before, "something was left behind"


def test_precheck_refuses_before_writing(small_fs: Any, tmp_path: Path) -> None:
    arena = small_fs("size=8m")
    data = os.urandom(1024 * 1024)
    archive = tmp_path / "a.dlmsnap"
    archive.write_bytes(F.forge([F.FileSpec("w.bin", data)]).data)
    used = os.statvfs(arena).f_bfree
    _expect_disk_full(["unpack", str(archive), "-C", str(arena / "out")], archive, arena)
    assert os.statvfs(arena).f_bfree == used


def test_manifest_claiming_a_tib_is_refused_before_reading_blobs(tmp_path: Path) -> None:
    """1 TiB is under --max-total-bytes, so the free-space check must catch it
    (exit 6) before one byte is written, though the archive holds no such data."""
    size = 1024**4

    def hook(o: dict[str, Any], _: dict[str, bytes]) -> None:
        o["blobs"][0]["size"] = size
        o["files"][0]["size"] = size

    archive = tmp_path / "a.dlmsnap"
    archive.write_bytes(F.forge([F.FileSpec("huge.bin", b"x")], manifest_hook=hook).data)
    arena = tmp_path / "arena"
    arena.mkdir()
    make_canary(arena)
    if os.statvfs(arena).f_bavail * os.statvfs(arena).f_frsize > size:
        pytest.skip("this filesystem has more than 1 TiB free")
    _expect_disk_full(["unpack", str(archive), "-C", str(arena / "out")], archive, arena)


def test_enospc_while_writing_blocks(small_fs: Any, tmp_path: Path, monkeypatch: Any) -> None:
    """Files the pre-check counts as 1 byte each take a 4 KiB page each on
    tmpfs: the filesystem fills mid-unpack. Exit 6, staging removed."""
    arena = small_fs("size=4m")
    files = [F.FileSpec(f"d{i % 7}/f{i:05d}", b"%d" % (i % 10)) for i in range(1200)]
    archive = tmp_path / "a.dlmsnap"
    archive.write_bytes(F.forge(files).data)
    free = os.statvfs(arena).f_bavail * os.statvfs(arena).f_frsize
    # The product keeps 64 MiB of headroom; on a 4 MiB filesystem that alone
    # refuses. Shrink it so the pre-check passes and the disk fills for real.
    monkeypatch.setattr("snaparc.archive.unpack.DISK_HEADROOM", 0)
    assert sum(len(f.data) for f in files) < free < len(files) * 4096
    _expect_disk_full(["unpack", str(archive), "-C", str(arena / "out")], archive, arena)


def test_enospc_out_of_inodes_files(small_fs: Any, tmp_path: Path) -> None:
    """Real headroom, no patching: the filesystem runs out of inodes instead."""
    arena = small_fs("size=200m,nr_inodes=64")
    files = [F.FileSpec(f"f{i:03d}", b"%d" % i) for i in range(100)]
    archive = tmp_path / "a.dlmsnap"
    archive.write_bytes(F.forge(files).data)
    _expect_disk_full(["unpack", str(archive), "-C", str(arena / "out")], archive, arena)


def test_enospc_out_of_inodes_directories(small_fs: Any, tmp_path: Path) -> None:
    arena = small_fs("size=200m,nr_inodes=64")
    files = [F.FileSpec(f"d{i:03d}/f", b"%d" % i) for i in range(100)]
    archive = tmp_path / "a.dlmsnap"
    archive.write_bytes(F.forge(files).data)
    _expect_disk_full(["unpack", str(archive), "-C", str(arena / "out")], archive, arena)


def test_enospc_force_keeps_old_tree(small_fs: Any, tmp_path: Path, monkeypatch: Any) -> None:
    arena = small_fs("size=4m")
    old = arena / "out"
    (old / "sub").mkdir(parents=True)
    (old / "sub" / "model.bin").write_bytes(b"old\n")
    old_state = snapshot(old)
    files = [F.FileSpec(f"f{i:05d}", b"%d" % (i % 10)) for i in range(1200)]
    archive = tmp_path / "a.dlmsnap"
    archive.write_bytes(F.forge(files).data)
    monkeypatch.setattr("snaparc.archive.unpack.DISK_HEADROOM", 0)
    names = set(os.listdir(arena))
    argv = ["unpack", str(archive), "-C", str(old), "--force", "--quiet"]
    assert main(argv) == DiskFullError.exit_code
    assert set(os.listdir(arena)) == names
    assert snapshot(old) == old_state
    with pytest.raises(DiskFullError):
        unpack_path(archive, old, force=True, threads=2)
    assert snapshot(old) == old_state


def test_pack_enospc_leaves_no_temp_file(small_fs: Any, tmp_path: Path) -> None:
    arena = small_fs("size=2m")
    src = tmp_path / "src"
    src.mkdir()
    (src / "w.bin").write_bytes(os.urandom(4 * 1024 * 1024))
    out = arena / "a.dlmsnap"
    before = _state(arena)
    assert main(["pack", str(src), "-o", str(out), "--quiet"]) == DiskFullError.exit_code
    assert _state(arena) == before
    with pytest.raises(DiskFullError):
        pack_directory(src, out)
    assert _state(arena) == before
