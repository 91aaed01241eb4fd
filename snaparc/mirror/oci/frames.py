"""Frames rebuilt from raw bytes, exactly as `snaparc pack` writes them.

A registry holds each file raw; the archive holds it as zstd frames of its
tar member. Both directions need the same two things: the decompressed
bytes of a member's frames (header, data, padding, cut every FRAME_SIZE
bytes) and a compressor configured exactly like the packer's
(`snaparc.archive.pack._FrameBuilder`: the level, a content checksum, the
content size, no worker threads). zstd is deterministic for a given library
version and parameters, so the same raw bytes give the same frames.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

import zstandard

from snaparc.format.constants import FRAME_SIZE, TAR_BLOCK, TAR_EOF
from snaparc.format.tarheader import build_header, padding_len

ZSTD_VERSION = ".".join(str(p) for p in zstandard.ZSTD_VERSION)
LEVELS = tuple(range(1, 20))


class FrameCompressor:
    """Compresses frames at one level; one zstd context per thread."""

    def __init__(self, level: int) -> None:
        self.level = level
        self._local = threading.local()

    def compress(self, raw: bytes | bytearray | memoryview) -> bytes:
        cctx: zstandard.ZstdCompressor | None = getattr(self._local, "cctx", None)
        if cctx is None:
            cctx = zstandard.ZstdCompressor(
                level=self.level, write_checksum=True, write_content_size=True, threads=0
            )
            self._local.cctx = cctx
        return cctx.compress(raw)

    def end_frame(self) -> bytes:
        return zstandard.ZstdCompressor(
            level=self.level, write_checksum=True, write_content_size=True
        ).compress(TAR_EOF)


def member_frames(name: str, size: int, data: Iterable[bytes]) -> Iterator[bytes]:
    """The decompressed frames of the member `name` holding `size` bytes of `data`.

    `data` must yield exactly `size` bytes (the caller checks its content);
    a frame is handed out only when it is full, or at the member's end.
    """
    buf = bytearray(build_header(name, size))
    seen = 0
    for chunk in data:
        seen += len(chunk)
        if seen > size:
            raise ValueError(f"{name}: more than {size} bytes")
        buf += chunk
        while len(buf) >= FRAME_SIZE and (len(buf) > FRAME_SIZE or seen < size):
            yield bytes(buf[:FRAME_SIZE])
            del buf[:FRAME_SIZE]
    if seen != size:
        raise ValueError(f"{name}: {seen} bytes, not {size}")
    buf += bytes(padding_len(size))
    while buf:
        yield bytes(buf[:FRAME_SIZE])
        del buf[:FRAME_SIZE]


def member_data(frames: Iterable[bytes], size: int) -> Iterator[bytes]:
    """The inverse: a member's data bytes from its decompressed frames."""
    skip = TAR_BLOCK
    left = size
    for raw in frames:
        view = memoryview(raw)[skip:]
        skip = max(0, skip - len(raw))
        if left <= 0:
            continue
        piece = view[:left]
        left -= len(piece)
        if piece:
            yield bytes(piece)
