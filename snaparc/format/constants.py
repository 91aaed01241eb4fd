"""Normative constants of the `.dlmsnap` format v1 (spec/FORMAT.md)."""

from __future__ import annotations

FORMAT_NAME = "dlmsnap"
FORMAT_MAJOR = 1
FORMAT_MINOR = 2  # the newest minor this snaparc reads and writes
FORMAT_VERSION = f"{FORMAT_MAJOR}.{FORMAT_MINOR}"
# A writer writes 1.0 unless it uses a field of a later minor (1.1: `tensors`,
# 1.2: a blob's `codec`), and then the lowest minor that has every field it uses.
BASE_FORMAT_VERSION = f"{FORMAT_MAJOR}.0"
TENSOR_INDEX_MINOR = 1
TENSOR_INDEX_VERSION = f"{FORMAT_MAJOR}.{TENSOR_INDEX_MINOR}"
CODEC_MINOR = 2
CODEC_VERSION = f"{FORMAT_MAJOR}.{CODEC_MINOR}"

MANIFEST_MEMBER = "dlmsnap/manifest.json"
BLOB_MEMBER_PREFIX = "blobs/sha256/"
# A coded blob (format 1.2) is the member `blobs/<codec>/<sha256>`: stock tar
# never writes a file named by a sha256 its bytes do not have.
CODED_MEMBER_ROOT = "blobs/"

# Blob codecs (format 1.2): `bytegroup` stores the elements of every BF16, F16
# and F32 tensor of a frame as byte planes (spec/FORMAT.md, "Blob codecs").
CODEC_BYTEGROUP = "bytegroup"
CODECS = (CODEC_BYTEGROUP,)
BYTEGROUP_WIDTHS = {"BF16": 2, "F16": 2, "F32": 4}

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
