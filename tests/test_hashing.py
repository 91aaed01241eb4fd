"""Digests never depend on read sizes or thread counts."""

from __future__ import annotations

import hashlib
import io
import itertools
from pathlib import Path

import blake3
from hypothesis import given, settings
from hypothesis import strategies as st

from snaparc.archive.hashing import DualHasher, hash_files
from snaparc.archive.pack import plan_pack, write_archive
from snaparc.archive.reader import read_archive


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=50_000), cuts=st.lists(st.integers(0, 50_000), max_size=8))
def test_dual_hasher_is_independent_of_chunking(data: bytes, cuts: list[int]) -> None:
    h = DualHasher()
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    for a, b in itertools.pairwise(points):
        h.update(data[a:b])
    d = h.digests()
    assert d.sha256 == hashlib.sha256(data).hexdigest()
    assert d.blake3 == blake3.blake3(data).hexdigest()
    assert d.size == len(data)


@settings(max_examples=10, deadline=None)
@given(
    size=st.sampled_from([0, 1, 4 * 1024 * 1024 - 1, 4 * 1024 * 1024, 9 * 1024 * 1024 + 3]),
    threads=st.integers(1, 4),
)
def test_file_hashing_is_independent_of_threads(tmp_path_factory, size: int, threads: int) -> None:  # type: ignore[no-untyped-def]
    p: Path = tmp_path_factory.mktemp("h") / "f.bin"
    data = bytes((i * 7919) % 251 for i in range(size))
    p.write_bytes(data)
    (d,) = hash_files([(p, size)], threads=threads)
    assert (d.sha256, d.blake3, d.size) == (
        hashlib.sha256(data).hexdigest(),
        blake3.blake3(data).hexdigest(),
        size,
    )


@settings(max_examples=8, deadline=None)
@given(threads=st.integers(1, 4), read_size=st.sampled_from([1, 7, 4096, 1 << 16, 1 << 22]))
def test_reader_result_is_independent_of_threads_and_read_sizes(
    tmp_path_factory,
    threads: int,
    read_size: int,  # type: ignore[no-untyped-def]
) -> None:
    src = tmp_path_factory.mktemp("r")
    (src / "a.bin").write_bytes(bytes(range(256)) * 40_000)
    (src / "b.txt").write_bytes(b"hello")
    buf = io.BytesIO()
    write_archive(plan_pack(src, threads=2), buf, level=1)

    class Slow(io.BytesIO):
        def readinto(self, b):  # type: ignore[no-untyped-def,override]
            view = memoryview(b)[:read_size]
            return super().readinto(view)

    report = read_archive(Slow(buf.getvalue()), threads=threads, read_size=read_size)
    assert report.blobs_verified == 2
    assert report.bytes_verified == 256 * 40_000 + 5
