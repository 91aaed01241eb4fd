"""Stock tools read what snaparc writes: GNU tar, bsdtar, zstd, sha256sum, b3sum."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from snaparc_testlib import require_tool

pytestmark = pytest.mark.interop


def _blob_names(root: Path) -> list[Path]:
    return sorted((root / "blobs" / "sha256").iterdir())


@pytest.mark.parametrize(
    "argv",
    [
        ["tar", "--zstd", "-xf"],
        ["tar", "-xf"],  # auto-detection: the file starts with a real zstd frame
        ["bsdtar", "-xf"],
    ],
    ids=["gnu-tar-zstd", "gnu-tar-autodetect", "bsdtar"],
)
def test_stock_tar_extracts_and_blob_names_are_sha256(
    argv: list[str], packed: Path, tmp_path: Path
) -> None:
    require_tool(argv[0])
    if argv[0] == "tar":
        require_tool("zstd")
    out = tmp_path / "x"
    out.mkdir()
    proc = subprocess.run([*argv, str(packed), "-C", str(out)], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""  # not even a warning
    assert (out / "dlmsnap" / "manifest.json").is_file()
    require_tool("sha256sum")
    blobs = _blob_names(out)
    assert blobs
    sums = subprocess.run(["sha256sum", *map(str, blobs)], capture_output=True, check=True)
    for line in sums.stdout.decode().splitlines():
        digest, name = line.split("  ", 1)
        assert Path(name).name == digest


def test_zstd_cli_accepts_archive(packed: Path) -> None:
    require_tool("zstd")
    proc = subprocess.run(["zstd", "-t", str(packed)], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_zstd_cli_rejects_corrupted_archive(packed: Path, tmp_path: Path) -> None:
    require_tool("zstd")
    data = bytearray(packed.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.dlmsnap"
    bad.write_bytes(bytes(data))
    proc = subprocess.run(["zstd", "-t", str(bad)], capture_output=True, check=False)
    assert proc.returncode != 0


def test_b3sum_agrees_with_manifest_blake3(packed: Path, tmp_path: Path) -> None:
    require_tool("b3sum")
    require_tool("tar")
    from snaparc.archive.listing import read_listing
    from snaparc.sources.archive import open_source as open_archive_input

    with open_archive_input(packed) as f:
        manifest = read_listing(f).manifest
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["tar", "--zstd", "-xf", str(packed), "-C", str(out)], check=True)
    for blob in manifest.blobs:
        proc = subprocess.run(
            ["b3sum", "--no-names", str(out / "blobs" / "sha256" / blob.sha256)],
            capture_output=True,
            check=True,
        )
        assert proc.stdout.decode().strip() == blob.blake3


def test_python_seekable_reader_reads_seek_table(packed: Path) -> None:
    pyzstd = pytest.importorskip("pyzstd")
    with pyzstd.SeekableZstdFile(str(packed), "r") as f:
        assert f.seek(0, 2) > 0  # an independent reader accepts the seek table
