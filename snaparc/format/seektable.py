"""The zstd seekable format's seek table (facebook/zstd contrib/seekable_format).

A skippable frame (magic 0x184D2A5E) at the very end of the file:

    u32 LE  0x184D2A5E          skippable magic
    u32 LE  frame_size          = 8 * N + 9
    N x (u32 LE compressed_size, u32 LE decompressed_size)
    u32 LE  N                   number of frames
    u8      descriptor          0 (no per-frame checksums; zstd frame checksums are used)
    u32 LE  0x8F92EAB1          seekable magic

snaparc writes the descriptor as 0 and refuses any other value.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from snaparc.errors import CorruptArchiveError, LimitExceededError, NonCanonicalError
from snaparc.format.constants import SEEKABLE_MAGIC, SEEKTABLE_SKIPPABLE_MAGIC

FOOTER_SIZE = 9
_U32_MAX = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class SeekEntry:
    compressed_size: int
    decompressed_size: int


def encode_seek_table(entries: list[SeekEntry]) -> bytes:
    parts = [struct.pack("<II", SEEKTABLE_SKIPPABLE_MAGIC, 8 * len(entries) + FOOTER_SIZE)]
    for e in entries:
        if e.compressed_size > _U32_MAX or e.decompressed_size > _U32_MAX:
            raise ValueError("frame too large for the seek table")
        parts.append(struct.pack("<II", e.compressed_size, e.decompressed_size))
    parts.append(struct.pack("<IBI", len(entries), 0, SEEKABLE_MAGIC))
    return b"".join(parts)


def seek_table_size(num_frames: int) -> int:
    return 8 + 8 * num_frames + FOOTER_SIZE


def decode_footer(footer: bytes | bytearray) -> int:
    """Number of frames, from the last 9 bytes of the file."""
    if len(footer) != FOOTER_SIZE:
        raise CorruptArchiveError("file too short for a seek table")
    n, descriptor, magic = struct.unpack("<IBI", footer)
    if magic != SEEKABLE_MAGIC:
        raise CorruptArchiveError("no zstd seek table at the end of the file")
    if descriptor != 0:
        raise NonCanonicalError(f"seek table descriptor is {descriptor:#04x}; the spec needs 0")
    return int(n)


def decode_seek_table(frame: bytes | bytearray, *, max_frames: int) -> list[SeekEntry]:
    """Decode a whole seek-table skippable frame (its 8-byte header included)."""
    if len(frame) < 8 + FOOTER_SIZE:
        raise CorruptArchiveError("seek table frame is too short")
    magic, size = struct.unpack_from("<II", frame, 0)
    if magic != SEEKTABLE_SKIPPABLE_MAGIC:
        raise CorruptArchiveError("seek table frame has the wrong magic")
    n = decode_footer(frame[-FOOTER_SIZE:])
    if n > max_frames:
        raise LimitExceededError(
            f"seek table lists {n} frames", limit="frames", value=n, maximum=max_frames
        )
    if size != 8 * n + FOOTER_SIZE or len(frame) != 8 + size:
        raise CorruptArchiveError("seek table size does not match its number of frames")
    return [SeekEntry(*struct.unpack_from("<II", frame, 8 + 8 * i)) for i in range(n)]
