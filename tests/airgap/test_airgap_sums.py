"""Detached checksums: `sha256sum -c` and `b3sum -c` accept them, and catch tampering."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import blake3
import pytest

from snaparc.airgap.sums import hash_file, write_sums
from snaparc.airgap.volumes import SplitWriter
from snaparc.errors import InputNotFoundError, UsageError

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def checkers(tool: Callable[[str], str]) -> tuple[str, str]:
    return tool("sha256sum"), tool("b3sum")


def _check(run: Run, checkers: tuple[str, str], sums: list[Path]) -> list[int]:
    sha256sum, b3sum = checkers
    sha, b3 = sums
    return [
        run([sha256sum, "-c", sha.name], cwd=sha.parent).returncode,
        run([b3sum, "-c", b3.name], cwd=b3.parent).returncode,
    ]


def _flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 1]))


@pytest.mark.parametrize("size", [0, 1, (4 << 20) - 1, (9 << 20) + 17])
def test_hash_file_matches_references(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    p = tmp_path / "f"
    p.write_bytes(data)
    d = hash_file(p)
    assert d.size == size
    assert d.sha256 == hashlib.sha256(data).hexdigest()
    assert d.blake3 == blake3.blake3(data).hexdigest()


def test_single_archive_sums_check_and_catch_tampering(
    tmp_path: Path, checkers: tuple[str, str], run: Run
) -> None:
    archive = tmp_path / "snap.dlmsnap"
    archive.write_bytes(os.urandom(5 << 20))
    sums = write_sums(archive)
    assert sums == [tmp_path / "snap.dlmsnap.sha256", tmp_path / "snap.dlmsnap.b3"]
    assert (
        sums[0].read_text() == f"{hashlib.sha256(archive.read_bytes()).hexdigest()}  snap.dlmsnap\n"
    )
    assert _check(run, checkers, sums) == [0, 0]
    _flip(archive, 4 << 20)
    assert _check(run, checkers, sums) == [1, 1]


def test_split_archive_sums_list_every_volume_and_the_index(
    tmp_path: Path, checkers: tuple[str, str], run: Run
) -> None:
    out = tmp_path / "snap.dlmsnap"
    with SplitWriter(out, 1000, min_volume_size=1) as w:
        w.write(os.urandom(3500))
    for given in (out, tmp_path / "snap.dlmsnap.001", tmp_path / "snap.dlmsnap.index.json"):
        sums = write_sums(given)
        assert sums == [tmp_path / "snap.dlmsnap.sha256", tmp_path / "snap.dlmsnap.b3"]
        names = [line.split("  ", 1)[1] for line in sums[1].read_text().splitlines()]
        assert names == [f"snap.dlmsnap.{i:03d}" for i in range(1, 5)] + ["snap.dlmsnap.index.json"]
        assert _check(run, checkers, sums) == [0, 0]
    _flip(tmp_path / "snap.dlmsnap.003", 10)
    assert _check(run, checkers, sums) == [1, 1]


def test_explicit_files_are_named_relative_to_the_sums_directory(
    tmp_path: Path, checkers: tuple[str, str], run: Run
) -> None:
    (tmp_path / "sub").mkdir()
    archive = tmp_path / "a.dlmsnap"
    archive.write_bytes(b"archive")
    extra = tmp_path / "sub" / "notes.txt"
    extra.write_bytes(b"notes")
    sums = write_sums(archive, files=[archive, extra])
    assert "  sub/notes.txt\n" in sums[0].read_text()
    assert _check(run, checkers, sums) == [0, 0]


def test_unlistable_names_and_missing_archive(tmp_path: Path) -> None:
    bad = tmp_path / "new\nline"
    bad.write_bytes(b"x")
    with pytest.raises(UsageError):
        write_sums(tmp_path / "a.dlmsnap", files=[bad])
    with pytest.raises(InputNotFoundError):
        write_sums(tmp_path / "missing.dlmsnap")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new\nline"]
