"""Both decompression paths (system libzstd through ctypes, python-zstandard)
accept the same archives and refuse the same damage with the same class."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from snaparc.archive import zstd_native
from snaparc.archive.reader import read_archive
from snaparc.errors import CorruptArchiveError, DigestMismatchError


@pytest.fixture(params=["native", "python-zstandard"])
def path_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "native":
        if not zstd_native.available():
            pytest.skip("the system libzstd is not installed (libzstd1)")
    else:
        monkeypatch.setattr(zstd_native, "_lib", None)
    return str(request.param)


def test_valid_archive_reads_the_same(path_kind: str, packed: Path) -> None:
    report = read_archive(io.BytesIO(packed.read_bytes()), threads=2)
    assert report.blobs_verified == len(report.manifest.blobs)


def test_flipped_compressed_byte_is_corrupt(path_kind: str, packed: Path) -> None:
    data = bytearray(packed.read_bytes())
    data[len(data) // 2] ^= 0x10
    with pytest.raises((CorruptArchiveError, DigestMismatchError)):
        read_archive(io.BytesIO(bytes(data)), threads=2)


def test_native_output_is_bounded_by_the_declared_size() -> None:
    """One-shot decoding writes into the caller's buffer only: a frame holding
    more (or fewer) bytes than declared is refused, never written past."""
    if not zstd_native.available():
        pytest.skip("the system libzstd is not installed (libzstd1)")
    import zstandard

    frame = bytearray(zstandard.ZstdCompressor().compress(b"x" * 100))
    out = bytearray(64) + b"canary"
    assert zstd_native.decompress_frame_into(memoryview(frame), out, 64) is not None
    assert out.endswith(b"canary")
    assert zstd_native.decompress_frame_into(memoryview(frame), bytearray(200), 120) is not None
    ok = bytearray(200)
    assert zstd_native.decompress_frame_into(memoryview(frame), ok, 100) is None
    assert ok[:100] == b"x" * 100
