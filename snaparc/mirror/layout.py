"""The mirror layout (spec/MIRROR.md): keys, the archive record, parts.

Pure: bytes and dataclasses in, bytes and dataclasses out; no I/O.

Keys, relative to the mirror root:

    blobs/<C>/<P>            a part of blob C's member: exact compressed frames
    manifests/<ID>/<P>       a part of archive ID's manifest member
    archives/<ID>.json       the archive record (canonical JSON)
    signatures/<ID>/<KIND>   a signature travelling with archive ID (KIND:
                             SIGNATURE_KINDS), opaque bytes to the mirror
    refs/<NAME>              "<ID>\\n"

C is a blob's content sha256 (from the manifest), ID an archive id, P the
sha256 of the part object's own bytes. A member's frames are cut into parts
of PART_FRAMES consecutive frames from its first frame, so the same member
compressed the same way always yields the same part objects (dedup), and a
member compressed differently yields other part keys (byte identity).

The record holds what is needed to rebuild the file byte for byte: the
part list of every member in archive order with each frame's compressed
size, the sizes from which the decompressed frame sizes follow, the
compressed end-of-archive frame, and the whole file's size and sha256. The
seek table is recomputed.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

from snaparc.errors import CorruptArchiveError
from snaparc.format.constants import TAR_EOF
from snaparc.format.layout import frame_sizes
from snaparc.format.seektable import SeekEntry, encode_seek_table, seek_table_size
from snaparc.format.tarheader import member_len

RECORD_FORMAT = "snaparc-mirror-archive"
RECORD_VERSION = 1
PART_FRAMES = 4
MAX_RECORD_BYTES = 64 * 1024 * 1024
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX = re.compile(r"^(?:[0-9a-f]{2})+$")


class MirrorRecordError(CorruptArchiveError):
    """An archive record in the mirror is malformed or inconsistent (exit 1)."""


# --- keys --------------------------------------------------------------------


def blob_part_key(blob_sha256: str, part_sha256: str) -> str:
    return f"blobs/{blob_sha256}/{part_sha256}"


def manifest_part_key(archive_id: str, part_sha256: str) -> str:
    return f"manifests/{archive_id}/{part_sha256}"


def record_key(archive_id: str) -> str:
    return f"archives/{archive_id}.json"


# Signatures a mirror carries beside an archive: the OMS bundle of its tree
# and of its hub-cache snapshot (snaparc.airgap.oms), at most this large.
SIGNATURE_KINDS = ("oms.json", "hub.oms.json")
MAX_SIGNATURE_BYTES = 64 * 1024 * 1024


def signature_key(archive_id: str, kind: str) -> str:
    if kind not in SIGNATURE_KINDS:
        raise ValueError(f"unknown signature kind {kind!r}")
    return f"signatures/{archive_id}/{kind}"


def ref_key(name: str) -> str:
    return f"refs/{name}"


def encode_ref(archive_id: str) -> bytes:
    return archive_id.encode("ascii") + b"\n"


def decode_ref(data: bytes, *, name: str) -> str:
    text = data.decode("ascii", errors="replace").strip()
    if not _HEX64.match(text) or data not in (text.encode() + b"\n", text.encode()):
        raise MirrorRecordError(f"mirror ref {name!r} does not hold an archive id")
    return text


# --- the record ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Part:
    """One part object: `frames` are the compressed sizes of its frames."""

    sha256: str
    size: int
    frames: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """One tar member: `name` is None for the manifest, else the blob sha256."""

    blob: str | None
    size: int  # the member's data size (manifest bytes, or blob size)
    parts: tuple[Part, ...]

    def key(self, archive_id: str, part: Part) -> str:
        if self.blob is None:
            return manifest_part_key(archive_id, part.sha256)
        return blob_part_key(self.blob, part.sha256)

    @property
    def compressed_size(self) -> int:
        return sum(p.size for p in self.parts)


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    archive_id: str
    manifest: MemberRecord
    blobs: tuple[MemberRecord, ...]
    end_frame: bytes
    file_size: int
    file_sha256: str

    @property
    def members(self) -> tuple[MemberRecord, ...]:
        return (self.manifest, *self.blobs)

    def seek_entries(self) -> list[SeekEntry]:
        entries: list[SeekEntry] = []
        for m in self.members:
            compressed = [c for p in m.parts for c in p.frames]
            sizes = frame_sizes(member_len(m.size))
            entries.extend(SeekEntry(c, d) for c, d in zip(compressed, sizes, strict=True))
        entries.append(SeekEntry(len(self.end_frame), len(TAR_EOF)))
        return entries

    def seek_table(self) -> bytes:
        return encode_seek_table(self.seek_entries())


def encode_record(rec: ArchiveRecord) -> bytes:
    """Canonical bytes: sorted keys, no spaces, ASCII, one trailing newline."""

    def member(m: MemberRecord) -> dict[str, Any]:
        out: dict[str, Any] = {
            "size": m.size,
            "parts": [
                {"sha256": p.sha256, "size": p.size, "frames": list(p.frames)} for p in m.parts
            ],
        }
        if m.blob is not None:
            out["sha256"] = m.blob
        return out

    obj = {
        "format": RECORD_FORMAT,
        "version": RECORD_VERSION,
        "archive_id": rec.archive_id,
        "manifest": member(rec.manifest),
        "blobs": [member(b) for b in rec.blobs],
        "end_frame": rec.end_frame.hex(),
        "file_size": rec.file_size,
        "file_sha256": rec.file_sha256,
    }
    return (
        json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"
    )


def _want(cond: bool, what: str) -> None:
    if not cond:
        raise MirrorRecordError(f"mirror archive record: {what}")


def _int(v: Any, what: str) -> int:
    _want(isinstance(v, int) and not isinstance(v, bool) and v >= 0, f"{what} is not a size")
    assert isinstance(v, int)
    return v


def _hex64(v: Any, what: str) -> str:
    _want(isinstance(v, str) and bool(_HEX64.match(v)), f"{what} is not a sha256")
    assert isinstance(v, str)
    return v


def _member(obj: Any, *, blob: bool, where: str) -> MemberRecord:
    keys = {"size", "parts", "sha256"} if blob else {"size", "parts"}
    _want(isinstance(obj, dict) and set(obj) == keys, f"{where} has the wrong fields")
    size = _int(obj["size"], f"{where}.size")
    parts_obj = obj["parts"]
    _want(isinstance(parts_obj, list) and bool(parts_obj), f"{where}.parts is empty")
    parts: list[Part] = []
    for i, p in enumerate(parts_obj):
        pw = f"{where}.parts[{i}]"
        _want(isinstance(p, dict) and set(p) == {"sha256", "size", "frames"}, f"{pw} is malformed")
        frames = p["frames"]
        _want(isinstance(frames, list) and 0 < len(frames) <= PART_FRAMES, f"{pw}.frames")
        sizes = tuple(_int(c, f"{pw}.frames") for c in frames)
        part = Part(_hex64(p["sha256"], f"{pw}.sha256"), _int(p["size"], f"{pw}.size"), sizes)
        _want(part.size == sum(sizes), f"{pw}.size is not the sum of its frames")
        parts.append(part)
    n = sum(len(p.frames) for p in parts)
    _want(n == len(frame_sizes(member_len(size))), f"{where} has {n} frames; its size needs other")
    return MemberRecord(
        _hex64(obj["sha256"], f"{where}.sha256") if blob else None, size, tuple(parts)
    )


def decode_record(data: bytes, *, archive_id: str) -> ArchiveRecord:
    """Parse and check a record; it must be canonical and describe `archive_id`."""
    _want(len(data) <= MAX_RECORD_BYTES, "too large")
    try:
        obj = json.loads(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise MirrorRecordError(f"mirror archive record {archive_id} is not JSON") from None
    fields = {
        "format",
        "version",
        "archive_id",
        "manifest",
        "blobs",
        "end_frame",
        "file_size",
        "file_sha256",
    }
    _want(isinstance(obj, dict) and set(obj) == fields, "wrong fields")
    _want(obj["format"] == RECORD_FORMAT, f"format is {obj['format']!r}")
    _want(obj["version"] == RECORD_VERSION, f"unsupported record version {obj['version']!r}")
    _want(obj["archive_id"] == archive_id, f"describes {obj['archive_id']!r}, not {archive_id}")
    end = obj["end_frame"]
    _want(isinstance(end, str) and bool(_HEX.match(end)) and len(end) <= 1024, "end_frame")
    blobs_obj = obj["blobs"]
    _want(isinstance(blobs_obj, list), "blobs is not a list")
    rec = ArchiveRecord(
        archive_id=archive_id,
        manifest=_member(obj["manifest"], blob=False, where="manifest"),
        blobs=tuple(_member(b, blob=True, where=f"blobs[{i}]") for i, b in enumerate(blobs_obj)),
        end_frame=bytes.fromhex(end),
        file_size=_int(obj["file_size"], "file_size"),
        file_sha256=_hex64(obj["file_sha256"], "file_sha256"),
    )
    shas = [b.blob for b in rec.blobs]
    _want(
        all(a is not None and b is not None and a < b for a, b in itertools.pairwise(shas)),
        "blobs not sorted",
    )
    frames = sum(len(p.frames) for m in rec.members for p in m.parts) + 1
    total = (
        sum(m.compressed_size for m in rec.members) + len(rec.end_frame) + seek_table_size(frames)
    )
    _want(total == rec.file_size, f"parts add up to {total} bytes, not file_size {rec.file_size}")
    _want(encode_record(rec) == data, "bytes are not canonical")
    return rec


def split_parts(frame_sizes_compressed: list[int]) -> list[list[int]]:
    """Cut one member's compressed frame sizes into runs of PART_FRAMES."""
    return [
        frame_sizes_compressed[i : i + PART_FRAMES]
        for i in range(0, len(frame_sizes_compressed), PART_FRAMES)
    ]
