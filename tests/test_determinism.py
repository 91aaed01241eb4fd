"""Packing the same tree twice gives byte-identical archives."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from snaparc_testlib import sample_files, write_tree

from snaparc.api import pack as pack_directory


def _pack(src: Path, out: Path, threads: int) -> bytes:
    pack_directory(src, out, threads=threads)
    return out.read_bytes()


def test_archive_is_same_if_tree_is_moved_retimed_and_recreated(tmp_path: Path) -> None:
    files = sample_files()
    a = write_tree(tmp_path / "a", files, executable={"scripts/run.sh"}, empty_dirs=("e",))
    # Same tree, created in reverse order, different mtimes, umask and location.
    old = os.umask(0o077)
    try:
        b = tmp_path / "elsewhere" / "b"
        for rel in reversed(list(files)):
            p = b / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(files[rel])
            os.utime(p, (1_000_000, 2_000_000))
        (b / "e").mkdir()
        os.chmod(b / "scripts/run.sh", 0o700)  # same owner-exec bit, other bits differ
    finally:
        os.umask(old)
    one = _pack(a, tmp_path / "1.dlmsnap", threads=1)
    two = _pack(b, tmp_path / "2.dlmsnap", threads=2)
    assert one == two


def test_archive_is_same_for_any_thread_count(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "s", {"big.bin": os.urandom(9 * 1024 * 1024 + 5), "x": b"x"})
    outs = {_pack(src, tmp_path / f"{t}.dlmsnap", threads=t) for t in (1, 2, 3)}
    assert len(outs) == 1


def test_different_content_gives_different_archive_id(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "s", {"x": b"1"})
    first = pack_directory(src, tmp_path / "1.dlmsnap").archive_id
    (src / "x").write_bytes(b"2")
    second = pack_directory(src, tmp_path / "2.dlmsnap").archive_id
    assert first != second
    shutil.rmtree(src)
