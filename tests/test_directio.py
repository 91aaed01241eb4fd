"""Unpack's writer goes around the page cache when the bytes line up, and writes
exactly the bytes it was given in every case (snaparc.publish.directio, NewFileWriter)."""

from __future__ import annotations

import fcntl
import itertools
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snaparc.format.constants import FRAME_SIZE, TAR_BLOCK
from snaparc.publish import NewFileWriter, directio

pytestmark = pytest.mark.skipif(not directio.O_DIRECT, reason="no O_DIRECT on this platform")

ALIGN = directio.ALIGN


def _is_direct(writer: NewFileWriter) -> bool:
    return bool(fcntl.fcntl(writer._fd, fcntl.F_GETFL) & directio.O_DIRECT)


@pytest.fixture(autouse=True)
def _direct_capable_tmp(tmp_path: Path) -> None:
    fd = os.open(tmp_path / ".probe", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if not directio.enter_direct(fd):
            pytest.skip(f"the filesystem of {tmp_path} has no O_DIRECT")
    finally:
        os.close(fd)
        os.unlink(tmp_path / ".probe")


def test_frame_buffers_put_blob_bytes_at_congruent_addresses() -> None:
    """A blob's byte at file offset x sits at an address = x (mod ALIGN), in every frame."""
    buf = directio.frame_buffer()
    base = directio.address_of(buf)
    assert base is not None and len(buf) == FRAME_SIZE
    for j in range(
        3
    ):  # frame j holds member bytes [j*FRAME_SIZE, ...); data starts after the header
        k = TAR_BLOCK if j == 0 else 0
        file_offset = j * FRAME_SIZE + k - TAR_BLOCK
        assert (base + k) % ALIGN == file_offset % ALIGN


def _congruent(data: bytes) -> memoryview:
    """`data` in a frame buffer, placed as the reader places blob bytes."""
    buf = directio.frame_buffer(TAR_BLOCK + len(data) + ALIGN)
    buf[TAR_BLOCK : TAR_BLOCK + len(data)] = data
    return buf[TAR_BLOCK : TAR_BLOCK + len(data)]


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(0, 5 * ALIGN + 17),
    cuts=st.lists(st.integers(0, 5 * ALIGN + 17), max_size=6),
)
def test_aligned_chunks_are_written_direct_and_exact(
    tmp_path_factory: pytest.TempPathFactory, size: int, cuts: list[int]
) -> None:
    data = os.urandom(size)
    view = _congruent(data)
    path = tmp_path_factory.mktemp("dio") / "f"
    w = NewFileWriter(path)
    assert _is_direct(w)
    bounds = sorted({0, size, *(c for c in cuts if c <= size)})
    for a, b in itertools.pairwise(bounds):
        w.write(view[a:b])
        assert _is_direct(w), "congruent chunks keep the file in direct mode"
    w.close()
    assert path.read_bytes() == data


def test_unaligned_or_read_only_chunks_fall_back_and_stay_exact(tmp_path: Path) -> None:
    data = os.urandom(3 * ALIGN + 100)
    aligned = _congruent(data)
    w = NewFileWriter(tmp_path / "f")
    w.write(aligned[: ALIGN + 5])  # direct: one block out, 5 bytes pending
    assert _is_direct(w)
    w.write(memoryview(data[ALIGN + 5 : 2 * ALIGN + 5]))  # read-only bytes: falls back
    assert not _is_direct(w)
    w.write(aligned[2 * ALIGN + 5 :])
    w.close()
    assert (tmp_path / "f").read_bytes() == data


def test_misaligned_buffer_falls_back(tmp_path: Path) -> None:
    data = os.urandom(2 * ALIGN)
    buf = directio.frame_buffer(len(data) + TAR_BLOCK + 1)
    buf[TAR_BLOCK + 1 : TAR_BLOCK + 1 + len(data)] = data  # one byte off congruence
    w = NewFileWriter(tmp_path / "f")
    w.write(buf[TAR_BLOCK + 1 : TAR_BLOCK + 1 + len(data)])
    assert not _is_direct(w)
    w.close()
    assert (tmp_path / "f").read_bytes() == data


def test_unpack_of_awkward_sizes_round_trips(tmp_path: Path) -> None:
    """Blob sizes around block and frame edges, through the real reader."""
    from snaparc.cli import main

    sizes = [0, 1, ALIGN - 1, ALIGN, ALIGN + 1, FRAME_SIZE - TAR_BLOCK, FRAME_SIZE, FRAME_SIZE + 1]
    src = tmp_path / "src"
    src.mkdir()
    for i, n in enumerate(sizes):
        (src / f"f{i}").write_bytes(os.urandom(n))
    assert main(["pack", str(src), "-o", str(tmp_path / "a.dlmsnap"), "-q"]) == 0
    assert main(["unpack", str(tmp_path / "a.dlmsnap"), "-C", str(tmp_path / "out"), "-q"]) == 0
    for i in range(len(sizes)):
        assert (tmp_path / "out" / f"f{i}").read_bytes() == (src / f"f{i}").read_bytes()


@settings(max_examples=25, deadline=None)
@given(
    chunks=st.lists(st.integers(0, 3 * 1024 * 1024), min_size=1, max_size=8),
    flush_at=st.integers(0, 8),
)
def test_atomic_file_writes_exact_bytes_through_the_aligned_block(
    tmp_path_factory: pytest.TempPathFactory, chunks: list[int], flush_at: int
) -> None:
    """Any mix of write sizes (and a flush anywhere) gives exactly the bytes written."""
    from snaparc.publish import AtomicFile

    target = tmp_path_factory.mktemp("af") / "out.bin"
    pieces = [os.urandom(n) for n in chunks]
    with AtomicFile(target) as af:
        assert fcntl.fcntl(af.file.fileno(), fcntl.F_GETFL) & directio.O_DIRECT
        for i, piece in enumerate(pieces):
            if i == flush_at:
                af.file.flush()
            af.file.write(piece)
    assert target.read_bytes() == b"".join(pieces)


def test_atomic_file_big_writes_stay_direct(tmp_path: Path) -> None:
    from snaparc.publish import AtomicFile

    data = os.urandom(20 * 1024 * 1024 + 123)
    with AtomicFile(tmp_path / "out.bin") as af:
        af.file.write(data[:7])
        af.file.write(data[7:])
        assert fcntl.fcntl(af.file.fileno(), fcntl.F_GETFL) & directio.O_DIRECT
    assert (tmp_path / "out.bin").read_bytes() == data


@pytest.mark.parametrize("writer", ["atomic", "new"])
def test_device_refusing_our_alignment_falls_back_to_buffered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    """A device wanting a coarser alignment answers EINVAL: the file is written buffered."""
    import errno

    from snaparc.publish import AtomicFile

    def refuse(fd: int, view: memoryview, offset: int) -> None:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(directio, "pwrite_all", refuse)
    data = os.urandom(9 * 1024 * 1024 + 5)
    out = tmp_path / "out.bin"
    if writer == "atomic":
        with AtomicFile(out) as af:
            af.file.write(data)
            assert not fcntl.fcntl(af.file.fileno(), fcntl.F_GETFL) & directio.O_DIRECT
    else:
        w = NewFileWriter(out)
        w.write(_congruent(data))
        assert not _is_direct(w)
        w.close()
    assert out.read_bytes() == data


def test_filesystems_without_o_direct_get_buffered_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where O_DIRECT cannot be set, pack and unpack write through the page cache, exactly."""
    from snaparc.cli import main

    monkeypatch.setattr(directio, "enter_direct", lambda fd: False)
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(FRAME_SIZE + 12345))
    (src / "small.txt").write_bytes(b"x" * 100)
    assert main(["pack", str(src), "-o", str(tmp_path / "a.dlmsnap"), "-q"]) == 0
    assert main(["verify", str(tmp_path / "a.dlmsnap"), "-q"]) == 0
    assert main(["unpack", str(tmp_path / "a.dlmsnap"), "-C", str(tmp_path / "out"), "-q"]) == 0
    for name in ("big.bin", "small.txt"):
        assert (tmp_path / "out" / name).read_bytes() == (src / name).read_bytes()
