"""The strict ustar profile: one header shape, built and checked byte for byte.

Every member is a regular file (typeflag '0') with mode 0644, uid/gid 0,
mtime 0, empty owner names, no link name and no prefix. Names fit the
100-byte name field (the manifest member and `blobs/sha256/<64 hex>` do).
Sizes up to 8 GiB - 1 are 11 octal digits; larger sizes use GNU base-256
(0x80 then 11 big-endian bytes), which GNU tar, bsdtar and Python's tarfile
read. No PAX or GNU extension headers are ever written or accepted.

Because the writer is canonical, the reader rebuilds the header it expects
and compares bytes; `diagnose_header` explains a difference precisely.
"""

from __future__ import annotations

from snaparc.errors import CorruptArchiveError, NonCanonicalError, UnsafeMemberError
from snaparc.format.constants import MEMBER_MODE, MEMBER_MTIME, TAR_BLOCK, USTAR_MAX_OCTAL_SIZE

_NAME_LEN = 100


def _octal(value: int, width: int) -> bytes:
    """`width` bytes: zero-padded octal digits then NUL."""
    return b"%0*o\0" % (width - 1, value)


def _size_field(size: int) -> bytes:
    if size < 0:
        raise ValueError("negative size")
    if size <= USTAR_MAX_OCTAL_SIZE:
        return _octal(size, 12)
    if size >= 1 << 88:
        raise ValueError("size does not fit base-256 field")
    return b"\x80" + size.to_bytes(11, "big")


def build_header(name: str, size: int) -> bytes:
    """The one header snaparc writes for a member called `name` of `size` bytes."""
    raw_name = name.encode("ascii")
    if len(raw_name) > _NAME_LEN:
        raise ValueError(f"member name too long: {name!r}")
    block = bytearray(TAR_BLOCK)
    block[0 : len(raw_name)] = raw_name
    block[100:108] = _octal(MEMBER_MODE, 8)
    block[108:116] = _octal(0, 8)
    block[116:124] = _octal(0, 8)
    block[124:136] = _size_field(size)
    block[136:148] = _octal(MEMBER_MTIME, 12)
    block[148:156] = b" " * 8
    block[156:157] = b"0"
    block[257:263] = b"ustar\0"
    block[263:265] = b"00"
    block[329:337] = _octal(0, 8)
    block[337:345] = _octal(0, 8)
    checksum = sum(block)
    block[148:156] = b"%06o\0 " % checksum
    return bytes(block)


def padding_len(size: int) -> int:
    return -size % TAR_BLOCK


def member_len(size: int) -> int:
    """Bytes one member takes in the tar stream: header, data, padding."""
    return TAR_BLOCK + size + padding_len(size)


def _checksum_ok(block: bytes) -> bool:
    stored = block[148:156]
    digits = stored.rstrip(b"\0 ").lstrip(b" ")
    if not digits or any(c not in b"01234567" for c in digits):
        return False
    unsigned = sum(block[:148]) + 8 * 0x20 + sum(block[156:])
    return int(digits, 8) == unsigned


def parse_size(field: bytes) -> int:
    """Read a size field in either canonical encoding; refuse anything else."""
    if field[0] == 0x80:
        return int.from_bytes(field[1:12], "big")
    if field[0] & 0x80:
        raise UnsafeMemberError("tar header: negative or unknown binary size field")
    digits = field[:11]
    if field[11:12] != b"\0" or any(c not in b"01234567" for c in digits):
        raise UnsafeMemberError(f"tar header: malformed size field {field!r}")
    return int(digits, 8)


_TYPE_NAMES = {
    b"1": "hard link",
    b"2": "symbolic link",
    b"3": "character device",
    b"4": "block device",
    b"5": "directory",
    b"6": "FIFO",
    b"7": "contiguous file",
    b"x": "PAX extended header",
    b"g": "PAX global header",
    b"L": "GNU long name",
    b"K": "GNU long link name",
    b"S": "GNU sparse file",
    b"D": "GNU dump directory",
    b"M": "GNU multi-volume continuation",
    b"V": "GNU volume label",
}


def header_name(block: bytes) -> str:
    """The name field as text, for messages; never used as an output path."""
    raw = block[:_NAME_LEN].split(b"\0", 1)[0]
    return raw.decode("utf-8", errors="backslashreplace")


def read_header(block: bytes, *, offset: int) -> tuple[str, int]:
    """Check a header block's integrity and profile; return (name, size).

    Raises CorruptArchiveError for a bad checksum, UnsafeMemberError for a
    member type or field outside the profile, NonCanonicalError for a header
    with the right meaning in a form snaparc never writes.
    """
    if len(block) != TAR_BLOCK:
        raise CorruptArchiveError(f"tar header at offset {offset}: short block")
    if not _checksum_ok(block):
        raise CorruptArchiveError(f"tar header at offset {offset}: bad header checksum")
    typeflag = block[156:157]
    if typeflag != b"0":
        kind = _TYPE_NAMES.get(typeflag, f"unknown type {typeflag!r}")
        raise UnsafeMemberError(
            f"tar member {header_name(block)!r} at offset {offset} is a {kind}; "
            "only regular files are allowed",
            path=header_name(block),
        )
    if block[257:265] != b"ustar\x0000":
        raise UnsafeMemberError(f"tar header at offset {offset}: not a POSIX ustar header")
    raw_name = block[:_NAME_LEN]
    name_bytes = raw_name.split(b"\0", 1)[0]
    if raw_name[len(name_bytes) :].strip(b"\0"):
        raise NonCanonicalError(f"tar header at offset {offset}: bytes after the name's NUL")
    try:
        name = name_bytes.decode("ascii")
    except UnicodeDecodeError:
        raise UnsafeMemberError(
            f"tar member at offset {offset}: name is not ASCII ({header_name(block)!r})"
        ) from None
    size = parse_size(block[124:136])
    if block[345:500].strip(b"\0"):
        raise UnsafeMemberError(f"tar member {name!r}: prefix field is set")
    if block[157:257].strip(b"\0"):
        raise UnsafeMemberError(f"tar member {name!r}: link name is set")
    if block != build_header(name, size):
        raise NonCanonicalError(
            f"tar member {name!r} at offset {offset}: header fields (mode, owner, mtime, "
            "names or encoding) differ from the spec's fixed values"
        )
    return name, size
