"""Normative constants of the `.dlmsnap` format v1 (spec/FORMAT.md)."""

from __future__ import annotations

FORMAT_NAME = "dlmsnap"
FORMAT_MAJOR = 1
FORMAT_MINOR = 1  # the newest minor this snaparc reads and writes
FORMAT_VERSION = f"{FORMAT_MAJOR}.{FORMAT_MINOR}"
# A writer writes 1.0 unless it uses a field of a later minor (1.1: `tensors`).
BASE_FORMAT_VERSION = f"{FORMAT_MAJOR}.0"
TENSOR_INDEX_MINOR = 1

MANIFEST_MEMBER = "dlmsnap/manifest.json"
BLOB_MEMBER_PREFIX = "blobs/sha256/"

TAR_BLOCK = 512
TAR_EOF = bytes(2 * TAR_BLOCK)
USTAR_MAX_OCTAL_SIZE = 8**11 - 1  # 8 GiB - 1, the largest 11-digit octal size
MEMBER_MODE = 0o644
MEMBER_MTIME = 0

# Every tar member is cut into frames of FRAME_SIZE decompressed bytes (the
# last one shorter); the end-of-archive blocks form the last data frame.
FRAME_SIZE = 8 * 1024 * 1024
MAX_WINDOW_SIZE = FRAME_SIZE

ZSTD_MAGIC = 0xFD2FB528
SKIPPABLE_MAGIC_MIN = 0x184D2A50
SKIPPABLE_MAGIC_MAX = 0x184D2A5F
SEEKTABLE_SKIPPABLE_MAGIC = 0x184D2A5E
SEEKABLE_MAGIC = 0x8F92EAB1

DIGEST_ALGORITHMS = ("blake3", "sha256")
DIGEST_HEX_LEN = 64
