"""Memory and time are bounded before they are spent (issue #5, rule 5).

Python-heap peaks are measured with tracemalloc (zstd's and blake3's own C
buffers are not traced, but every frame buffer and decompressed frame is a
Python object). Allocation counts replace wall-clock limits, so the tests
do not depend on machine load.
"""

from __future__ import annotations

import builtins
import io
import random
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from snaparc.archive.index import open_index, read_blob
from snaparc.archive.listing import read_listing
from snaparc.archive.reader import read_archive
from snaparc.cli import main
from snaparc.errors import CorruptArchiveError, LimitExceededError, SnaparcError
from snaparc.format.limits import DEFAULT_LIMITS
from tests.hostile import forge as F
from tests.hostile.conftest import Arena

MiB = 1024 * 1024
FRAME_BUF = DEFAULT_LIMITS.max_frame_bytes + MiB  # one splitter buffer


@pytest.fixture
def frame_buffers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the decode buffers handed out (mmap-backed, so tracemalloc does not see them)."""
    import snaparc.publish.directio

    made: list[int] = []
    real = snaparc.publish.directio.frame_buffer

    def counting(size: int = snaparc.publish.directio.FRAME_SIZE) -> memoryview:
        made.append(size)
        return real(size)

    monkeypatch.setattr(snaparc.publish.directio, "frame_buffer", counting)
    return made


def _peak(fn: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        fn()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


@pytest.fixture(scope="module")
def big_blob_archive() -> tuple[bytes, bytes]:
    data = random.Random(7).randbytes(40 * MiB)
    files = [F.FileSpec("w.bin", data), F.FileSpec("run.sh", b"#!/bin/sh\n", True)]
    return F.forge(files, level=1).data, data


class _Discard:
    n = 0

    def write(self, b: Any) -> int:
        self.n += len(b)
        return len(b)


def test_cat_memory_does_not_grow_with_the_blob(
    big_blob_archive: tuple[bytes, bytes], frame_buffers: list[int]
) -> None:
    """cat of a seekable archive reads one frame at a time, not the whole blob."""
    archive, data = big_blob_archive
    f = io.BytesIO(archive)
    index = open_index(f)
    blob = next(b for b in index.manifest.blobs if b.size == len(data))
    out = _Discard()
    peak = _peak(lambda: read_blob(f, index, blob, out))  # type: ignore[arg-type]
    assert out.n == len(data)
    assert peak < 4 * FRAME_BUF, f"read_blob peaked at {peak / MiB:.0f} MiB for a 40 MiB blob"
    assert len(frame_buffers) == 1, "one decode buffer, reused for the blob's 5 frames"


def test_verify_memory_is_a_window_of_frames(
    big_blob_archive: tuple[bytes, bytes], frame_buffers: list[int]
) -> None:
    archive, _ = big_blob_archive
    threads = 2
    peak = _peak(lambda: read_archive(io.BytesIO(archive), threads=threads))
    assert frame_buffers, "verify decodes into the frame buffers"
    # window = threads + 2 frames in flight, each a compressed and a raw buffer,
    # plus the splitter's recycled buffers.
    bound = 2 * (threads + 2) * FRAME_BUF + 4 * FRAME_BUF
    assert peak < bound, f"verify peaked at {peak / MiB:.0f} MiB"


@pytest.mark.parametrize("threads", [1, 2])
def test_decode_buffers_are_a_window_not_one_per_frame(
    frame_buffers: list[int], tmp_path: Path, threads: int
) -> None:
    """24 frames of one blob: the buffers in use are the read-ahead window
    (threads + 2), the frames whose hashing/writing still runs (SIDE_FRAMES)
    and the one being handed on; for verify and for unpack alike."""
    from snaparc.archive.reader import SIDE_FRAMES

    data = bytes(range(256)) * (24 * 8 * MiB // 256 - 7)  # compresses fast
    archive = F.forge([F.FileSpec("w.bin", data)], level=1).data
    bound = threads + 2 + SIDE_FRAMES + 1
    read_archive(io.BytesIO(archive), threads=threads)
    assert len(frame_buffers) <= bound < 24, f"verify: {len(frame_buffers)} decode buffers"
    frame_buffers.clear()
    (tmp_path / "a.dlmsnap").write_bytes(archive)
    out = tmp_path / "out"
    argv = ["unpack", str(tmp_path / "a.dlmsnap"), "-C", str(out), "-q", "--threads", str(threads)]
    assert main(argv) == 0
    assert (out / "w.bin").read_bytes() == data
    assert len(frame_buffers) <= bound, f"unpack: {len(frame_buffers)} decode buffers"


def test_frame_buffers_are_reused(
    monkeypatch: pytest.MonkeyPatch, frame_buffers: list[int]
) -> None:
    """Hundreds of tiny members must not cost one 10 MiB buffer each (time
    and page faults grow with the member count otherwise)."""
    allocated = [0]

    class Counting(builtins.bytearray):
        def __init__(self, *args: Any) -> None:
            if args and isinstance(args[0], int):
                allocated[0] += args[0]
            super().__init__(*args)

    monkeypatch.setattr("snaparc.format.zstdframes.bytearray", Counting, raising=False)
    files = [F.FileSpec(f"f{i:04d}", b"%d" % i) for i in range(300)]
    archive = F.forge(files).data
    report = read_archive(io.BytesIO(archive), threads=2)
    assert report.blobs_verified == 300
    assert allocated[0] < 24 * FRAME_BUF, f"{allocated[0] / MiB:.0f} MiB of frame buffers"
    assert len(frame_buffers) <= 2 + 4, f"{len(frame_buffers)} decode buffers for 300 members"


def test_rle_bomb_is_refused_without_expanding() -> None:
    """A 200-byte frame of RLE blocks that would expand to 8 MiB, declaring the
    1024 bytes the layout needs."""

    def bomb(frames: list[F.Frame]) -> list[F.Frame]:
        frames[1] = F.Frame(
            F.raw_frame(b"\0", rle=True, rle_blocks=64, fcs=frames[1].raw_size), frames[1].raw_size
        )
        return frames

    archive = F.forge(frames_hook=bomb).data

    def run() -> None:
        with pytest.raises(CorruptArchiveError):
            read_archive(io.BytesIO(archive), threads=2)

    assert _peak(run) < 4 * FRAME_BUF


def test_default_max_files_limit(arena: Arena) -> None:
    """100,001 files (one shared empty blob): refused by the default limit
    before the manifest is validated entry by entry."""
    n = DEFAULT_LIMITS.max_files + 1
    empty = F.sha256(b"")
    obj = F.manifest_obj([F.FileSpec("x", b"")])
    obj["files"] = [
        {"path": f"f{i:06d}", "size": 0, "executable": False, "blob": empty} for i in range(n)
    ]
    archive = F.forge([F.FileSpec("x", b"")], manifest_bytes=F.canonical_json(obj)).data
    p = arena.write_archive(archive)
    assert main(["ls", str(p)]) == LimitExceededError.exit_code
    with pytest.raises(LimitExceededError) as ei, open(p, "rb") as fh:
        read_listing(fh)
    assert ei.value.limit == "max_files" and ei.value.value == n
    assert main(["unpack", str(p), "-C", str(arena.target), "--quiet"]) == 3
    arena.assert_untouched()
    # Raised on purpose, the limit lets the same archive through.
    assert main(["ls", str(p), "--json", "--max-files", str(n)]) == 0


def test_every_error_is_a_snaparc_error_on_garbage(arena: Arena) -> None:
    """Files that are not archives at all: each refused with a named error."""
    for blob in (b"", b"\0" * 4096, b"PK\x03\x04" + bytes(100), F.seek_table([]) * 3):
        p = arena.write_archive(blob)
        for argv in (["verify", str(p)], ["ls", str(p)], ["cat", str(p), "x"]):
            assert main(argv) in (1, 3), argv
        with pytest.raises(SnaparcError):
            read_archive(io.BytesIO(blob))
    arena.assert_untouched()
