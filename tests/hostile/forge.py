"""A test-side archive forger: `.dlmsnap` bytes built from the format's primitives.

Nothing here imports snaparc's writer: headers, manifests, frames and seek
tables are rebuilt from the spec so that every field can be bent on purpose.
`forge()` with no knobs produces exactly the bytes `snaparc pack` writes
(tests check this), so a rejected forgery differs from a valid archive only
in the violation it was asked for.

Layers, each with knobs:

- `manifest_obj` / `canonical_json`: the manifest as a dict and its bytes;
- `tar_header` / `Member`: ustar headers with every field settable;
- `compress_frame` / `raw_frame` / `rewrite_frame_header` / `skippable_frame`:
  zstd frames, including frames zstd itself would never write;
- `seek_table`: the trailing seek table with every field settable;
- `forge()`: the whole archive, with hooks between the layers.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import blake3
import zstandard

FRAME_SIZE = 8 * 1024 * 1024
TAR_BLOCK = 512
TAR_EOF = bytes(1024)
MANIFEST_MEMBER = "dlmsnap/manifest.json"
BLOB_PREFIX = "blobs/sha256/"
ZSTD_MAGIC = 0xFD2FB528
SEEKTABLE_SKIPPABLE_MAGIC = 0x184D2A5E
SEEKABLE_MAGIC = 0x8F92EAB1
CREATED_BY = "snaparc 0.1.0"

# --- digests -----------------------------------------------------------------


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b3(data: bytes) -> str:
    return str(blake3.blake3(data).hexdigest())


_P1, _P2, _P3, _P4, _P5 = (
    0x9E3779B185EBCA87,
    0xC2B2AE3D27D4EB4F,
    0x165667B19E3779F9,
    0x85EBCA77C2B2AE63,
    0x27D4EB2F165667C5,
)
_M64 = (1 << 64) - 1


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M64


def _round(acc: int, lane: int) -> int:
    acc = (acc + lane * _P2) & _M64
    return (_rotl(acc, 31) * _P1) & _M64


def xxh64(data: bytes, seed: int = 0) -> int:
    """Pure-Python XXH64 (the zstd content checksum is its low 32 bits)."""
    n = len(data)
    i = 0
    if n >= 32:
        v = [
            (seed + _P1 + _P2) & _M64,
            (seed + _P2) & _M64,
            seed,
            (seed - _P1) & _M64,
        ]
        while i + 32 <= n:
            for k in range(4):
                v[k] = _round(v[k], int.from_bytes(data[i + 8 * k : i + 8 * k + 8], "little"))
            i += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & _M64
        for k in range(4):
            h = ((h ^ _round(0, v[k])) * _P1 + _P4) & _M64
    else:
        h = (seed + _P5) & _M64
    h = (h + n) & _M64
    while i + 8 <= n:
        h ^= _round(0, int.from_bytes(data[i : i + 8], "little"))
        h = (_rotl(h, 27) * _P1 + _P4) & _M64
        i += 8
    if i + 4 <= n:
        h ^= (int.from_bytes(data[i : i + 4], "little") * _P1) & _M64
        h = (_rotl(h, 23) * _P2 + _P3) & _M64
        i += 4
    while i < n:
        h ^= (data[i] * _P5) & _M64
        h = (_rotl(h, 11) * _P1) & _M64
        i += 1
    h ^= h >> 33
    h = (h * _P2) & _M64
    h ^= h >> 29
    h = (h * _P3) & _M64
    h ^= h >> 32
    return h


# --- manifest ----------------------------------------------------------------


@dataclass
class FileSpec:
    path: str
    data: bytes
    executable: bool = False


def manifest_obj(
    files: list[FileSpec],
    *,
    dirs: tuple[str, ...] | list[str] = (),
    metadata: dict[str, Any] | None = None,
    created_by: str = CREATED_BY,
    version: str = "1.0",
) -> dict[str, Any]:
    """The canonical manifest object (files and blobs sorted, blobs deduplicated)."""
    blobs: dict[str, dict[str, Any]] = {}
    for f in files:
        h = sha256(f.data)
        blobs[h] = {"digests": {"blake3": b3(f.data), "sha256": h}, "size": len(f.data)}
    return {
        "format": "dlmsnap",
        "format_version": version,
        "created_by": created_by,
        "files": [
            {
                "path": f.path,
                "size": len(f.data),
                "executable": f.executable,
                "blob": sha256(f.data),
            }
            for f in sorted(files, key=lambda f: f.path)
        ],
        "dirs": sorted(dirs),
        "blobs": [blobs[k] for k in sorted(blobs)],
        "metadata": dict(metadata or {}),
    }


def canonical_json(obj: Any) -> bytes:
    text = json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return text.encode("utf-8") + b"\n"


# --- tar ---------------------------------------------------------------------


def octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def size_field(size: int, *, base256: bool = False) -> bytes:
    if base256 or size > 8**11 - 1:
        return b"\x80" + size.to_bytes(11, "big")
    return octal(size, 12)


def tar_header(
    name: str | bytes,
    size: int,
    *,
    mode: bytes | None = None,
    uid: bytes | None = None,
    gid: bytes | None = None,
    size_raw: bytes | None = None,
    mtime: bytes | None = None,
    typeflag: bytes = b"0",
    linkname: bytes = b"",
    magic: bytes = b"ustar\x0000",
    uname: bytes = b"",
    gname: bytes = b"",
    devmajor: bytes | None = None,
    devminor: bytes | None = None,
    prefix: bytes = b"",
    checksum: bytes | None = None,
    tail: bytes = b"",
) -> bytes:
    """One ustar header block; defaults give the exact header snaparc writes."""
    raw_name = name.encode("utf-8") if isinstance(name, str) else name
    block = bytearray(TAR_BLOCK)

    def put(off: int, width: int, value: bytes) -> None:
        assert len(value) <= width, (off, value)
        block[off : off + len(value)] = value

    put(0, 100, raw_name)
    put(100, 8, mode if mode is not None else octal(0o644, 8))
    put(108, 8, uid if uid is not None else octal(0, 8))
    put(116, 8, gid if gid is not None else octal(0, 8))
    put(124, 12, size_raw if size_raw is not None else size_field(size))
    put(136, 12, mtime if mtime is not None else octal(0, 12))
    put(156, 1, typeflag)
    put(157, 100, linkname)
    put(257, 8, magic)
    put(265, 32, uname)
    put(297, 32, gname)
    put(329, 8, devmajor if devmajor is not None else octal(0, 8))
    put(337, 8, devminor if devminor is not None else octal(0, 8))
    put(345, 155, prefix)
    put(500, 12, tail)
    if checksum is None:
        block[148:156] = b" " * 8
        block[148:156] = b"%06o\0 " % sum(block)
    else:
        put(148, 8, checksum)
    return bytes(block)


@dataclass
class Member:
    """One tar member: a header, the data, the padding to a 512-byte boundary."""

    name: str | bytes
    data: bytes
    header: bytes | None = None  # full override
    header_kw: dict[str, Any] = field(default_factory=dict)
    size: int | None = None  # size written in the header (default len(data))
    padding: bytes | None = None  # override of the zero padding

    def to_bytes(self) -> bytes:
        size = len(self.data) if self.size is None else self.size
        header = (
            self.header
            if self.header is not None
            else tar_header(self.name, size, **self.header_kw)
        )
        pad = self.padding if self.padding is not None else bytes(-len(self.data) % TAR_BLOCK)
        return header + self.data + pad


# --- zstd frames -------------------------------------------------------------


@dataclass
class Frame:
    """One frame of the archive and what the seek table says about it."""

    data: bytes
    raw_size: int
    in_table: bool = True  # skippable frames are not in the seek table


def compress_frame(
    raw: bytes, *, level: int = 3, checksum: bool = True, content_size: bool = True
) -> bytes:
    cctx = zstandard.ZstdCompressor(
        level=level, write_checksum=checksum, write_content_size=content_size
    )
    return cctx.compress(raw)


def raw_frame(
    content: bytes,
    *,
    block_size: int = 128 * 1024,
    checksum: bool = True,
    fcs: int | None = None,
    window_log: int | None = None,
    rle: bool = False,
    rle_blocks: int = 0,
) -> bytes:
    """A frame of raw (or RLE) blocks built by hand.

    `fcs` overrides the declared content size; `window_log` writes a window
    descriptor (no single-segment flag); `rle` makes `rle_blocks` RLE blocks of
    `block_size` copies of content[0] (a bomb: a few bytes that expand).
    """
    declared = len(content) if fcs is None else fcs
    if rle:
        real = content[:1] * block_size * rle_blocks
        declared = len(real) if fcs is None else fcs
    else:
        real = content
    fcs_flag = 3  # 8-byte content size
    fhd = (fcs_flag << 6) | (0x04 if checksum else 0)
    if window_log is None:
        fhd |= 0x20  # single segment
        hdr = struct.pack("<IB", ZSTD_MAGIC, fhd)
    else:
        hdr = struct.pack("<IBB", ZSTD_MAGIC, fhd, (window_log - 10) << 3)
    hdr += struct.pack("<Q", declared)
    blocks = bytearray()
    if rle:
        for i in range(rle_blocks):
            last = 1 if i == rle_blocks - 1 else 0
            bh = last | (1 << 1) | (block_size << 3)
            blocks += bh.to_bytes(3, "little") + content[:1]
    else:
        chunks = [content[i : i + block_size] for i in range(0, len(content), block_size)] or [b""]
        for i, chunk in enumerate(chunks):
            last = 1 if i == len(chunks) - 1 else 0
            bh = last | (0 << 1) | (len(chunk) << 3)
            blocks += bh.to_bytes(3, "little") + chunk
    out = hdr + bytes(blocks)
    if checksum:
        out += struct.pack("<I", xxh64(real) & 0xFFFFFFFF)
    return out


def skippable_frame(payload: bytes, magic: int = 0x184D2A50) -> bytes:
    return struct.pack("<II", magic, len(payload)) + payload


def frames_of(
    raw: bytes, *, frame_size: int = FRAME_SIZE, level: int = 3, **kw: Any
) -> list[Frame]:
    """Cut one member's bytes into frames of `frame_size` and compress each."""
    out = []
    for i in range(0, len(raw), frame_size):
        chunk = raw[i : i + frame_size]
        out.append(Frame(compress_frame(chunk, level=level, **kw), len(chunk)))
    return out


# --- seek table --------------------------------------------------------------


def seek_table(
    entries: list[tuple[int, int]],
    *,
    n: int | None = None,
    descriptor: int = 0,
    magic: int = SEEKABLE_MAGIC,
    frame_size: int | None = None,
    skippable_magic: int = SEEKTABLE_SKIPPABLE_MAGIC,
    checksums: list[int] | None = None,
) -> bytes:
    body = bytearray()
    for i, (c, d) in enumerate(entries):
        body += struct.pack("<II", c, d)
        if checksums is not None:
            body += struct.pack("<I", checksums[i])
    body += struct.pack("<IBI", len(entries) if n is None else n, descriptor, magic)
    size = len(body) if frame_size is None else frame_size
    return struct.pack("<II", skippable_magic, size) + bytes(body)


def table_entries(frames: list[Frame]) -> list[tuple[int, int]]:
    return [(len(f.data), f.raw_size) for f in frames if f.in_table]


# --- the whole archive -------------------------------------------------------


@dataclass
class Forged:
    """An archive and the parts it was built from (for tests that cut it up)."""

    data: bytes
    manifest: dict[str, Any]
    manifest_bytes: bytes
    members: list[Member]
    frames: list[Frame]

    def frame_offsets(self) -> list[int]:
        """Start offset of every frame, then the seek table's offset."""
        out = [0]
        for f in self.frames:
            out.append(out[-1] + len(f.data))
        return out


def default_files() -> list[FileSpec]:
    return [
        FileSpec("adapter/adapter_config.json", b'{"r": 8, "lora_alpha": 16}\n'),
        FileSpec("adapter/adapter_model.safetensors", bytes(range(256)) * 40),
        FileSpec("copy/adapter_config.json", b'{"r": 8, "lora_alpha": 16}\n'),
        FileSpec("run.sh", b"#!/bin/sh\necho hi\n", executable=True),
        FileSpec("empty.txt", b""),
    ]


def forge(
    files: list[FileSpec] | None = None,
    *,
    dirs: tuple[str, ...] = (),
    metadata: dict[str, Any] | None = None,
    created_by: str = CREATED_BY,
    version: str = "1.0",
    manifest_hook: Callable[[dict[str, Any], dict[str, bytes]], None] | None = None,
    manifest_bytes: bytes | None = None,
    manifest_member_hook: Callable[[Member], None] | None = None,
    members_hook: Callable[[list[Member]], list[Member]] | None = None,
    frame_size: int = FRAME_SIZE,
    level: int = 3,
    frames_hook: Callable[[list[Frame]], list[Frame]] | None = None,
    eof: bytes = TAR_EOF,
    table: bytes | None = None,
    table_hook: Callable[[list[tuple[int, int]]], bytes] | None = None,
    trailing: bytes = b"",
) -> Forged:
    """Build an archive; every hook may bend one layer.

    `manifest_hook(obj, blob_data)` edits the manifest object and the
    sha256 -> bytes map the blob members are built from; `members_hook` edits
    the tar members (manifest member first); `frames_hook` the compressed
    frames (end-of-archive frame last); `table_hook(entries)` returns the seek
    table bytes (or pass `table`).
    """
    files = default_files() if files is None else files
    obj = manifest_obj(files, dirs=dirs, metadata=metadata, created_by=created_by, version=version)
    blob_data = {sha256(f.data): f.data for f in files}
    if manifest_hook is not None:
        manifest_hook(obj, blob_data)
    mbytes = canonical_json(obj) if manifest_bytes is None else manifest_bytes
    mmember = Member(MANIFEST_MEMBER, mbytes)
    if manifest_member_hook is not None:
        manifest_member_hook(mmember)
    members = [mmember]
    for blob in obj.get("blobs", []):
        if not isinstance(blob, dict) or blob.get("external"):
            continue
        h = blob.get("digests", {}).get("sha256")
        if not isinstance(h, str):
            continue
        members.append(Member(BLOB_PREFIX + h, blob_data.get(h, b"")))
    if members_hook is not None:
        members = members_hook(members)
    frames: list[Frame] = []
    for m in members:
        frames += frames_of(m.to_bytes(), frame_size=frame_size, level=level)
    if eof:
        frames.append(Frame(compress_frame(eof, level=level), len(eof)))
    if frames_hook is not None:
        frames = frames_hook(frames)
    if table is None:
        entries = table_entries(frames)
        table = table_hook(entries) if table_hook is not None else seek_table(entries)
    data = b"".join(f.data for f in frames) + table + trailing
    return Forged(data, obj, mbytes, members, frames)


def valid_archive(**kw: Any) -> bytes:
    return forge(**kw).data
