"""What a killed read of an OCI artifact leaves for the next run (spec/OCI.md,
section 5, "Resuming"; the mechanism is the mirrors', `snaparc.mirror.resume`).

A registry holds raw files; the resume file holds the rebuilt `.dlmsnap`
bytes at their offsets, as for a mirror. The record names no digest of a
compressed frame, so a member of the file is checked through what the
registry's digests cover: its frames, at the record's sizes, must decompress
(zstd checks each frame's content checksum) to a member whose data has the
blob's sha256 (the manifest member: the archive manifest's bytes). The
longest prefix of whole members that pass is read from the file instead of
fetched, and so are the leading frames of the member after them that
decompress (the file was written for this archive: its first member is this
archive's manifest, and a frame's bytes are a function of the archive); the
rest of that member's layer is fetched from the byte those frames end at
(`Range`). The data taken out of the file goes through every check a
fetched layer does (the layer's sha256, the frames rebuilt from it and
their sizes, the whole file's sha256, the archive reader).
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import zstandard

from snaparc.format.codec import blob_codec
from snaparc.format.constants import FRAME_SIZE, TAR_BLOCK
from snaparc.mirror.oci.frames import member_data

if TYPE_CHECKING:
    from snaparc.mirror.oci.layout import CheckedArtifact

__all__ = [
    "OCIResumable",
    "Prefix",
    "cached_data",
    "cached_members",
    "cached_prefix",
    "member_offsets",
]


def member_offsets(art: CheckedArtifact) -> list[int]:
    """The offset of each member's first frame in the archive file, and the
    offset of the end frame last."""
    out = [0]
    for sizes in art.record.frames:
        out.append(out[-1] + sum(sizes))
    return out


def _sizes(art: CheckedArtifact) -> list[tuple[int, str]]:
    """Per member, its data size and sha256 (member 0: the archive manifest)."""
    m = art.manifest
    return [
        (len(art.manifest_bytes), art.archive_id),
        *((b.size, b.sha256) for b in m.stored_blobs),
    ]


def _frames(fd: int, art: CheckedArtifact, i: int, offsets: list[int]) -> Iterator[bytes]:
    """Member `i`'s frames read from `fd`, decompressed; `ValueError` if one
    is short or does not decompress (zstd checks its content checksum)."""
    at = offsets[i]
    dctx = zstandard.ZstdDecompressor()
    # a coded blob's frames hold its planes (spec/FORMAT.md, "Blob codecs"):
    # decoded here, so what is taken out of the file is the layer's content
    codec = None if i == 0 else blob_codec(art.manifest, art.manifest.stored_blobs[i - 1])
    for j, size in enumerate(art.record.frames[i]):
        frame = os.pread(fd, size, at)
        if len(frame) != size:
            raise ValueError("short")
        at += size
        try:
            raw = dctx.decompress(frame, max_output_size=FRAME_SIZE)
        except zstandard.ZstdError:
            raise ValueError("bad frame") from None
        if codec is not None:
            planes = bytearray(raw)
            codec.decode(j, memoryview(planes))
            raw = bytes(planes)
        yield raw


def cached_data(
    fd: int, art: CheckedArtifact, i: int, frames: int | None = None
) -> Iterator[bytes]:
    """Member `i`'s data taken out of the frames the file `fd` holds (with
    `frames`: of its first so many only); the caller checks its sha256, as
    for a fetched layer."""
    size = _sizes(art)[i][0]
    raw = _frames(fd, art, i, member_offsets(art))
    if frames is not None:
        raw = itertools.islice(raw, frames)
    try:
        yield from member_data(raw, size)
    except ValueError:
        from snaparc.errors import IntegrityError

        raise IntegrityError(f"the resume file changed while it was read (member {i})") from None


def cached_members(fd: int, art: CheckedArtifact, *, members: int | None = None) -> int:
    """How many leading members of the archive the file `fd` holds whole and
    right (module docstring); with `members`, at most that many are checked."""
    offsets = member_offsets(art)
    try:
        end = os.fstat(fd).st_size
    except OSError:
        return 0
    sizes = _sizes(art)
    count = len(sizes) if members is None else min(members, len(sizes))
    for i in range(count):
        size, sha = sizes[i]
        if offsets[i + 1] > end:
            return i
        digest = hashlib.sha256()
        got = 0
        try:
            for piece in member_data(_frames(fd, art, i, offsets), size):
                digest.update(piece)
                got += len(piece)
        except (ValueError, OSError):
            return i
        if got != size or digest.hexdigest() != sha:
            return i
    return count


@dataclass(frozen=True, slots=True)
class Prefix:
    """What a resume file holds: `members` whole members, then the first
    `frames` frames of the next one, whose data is its first `data` bytes;
    `size`: the bytes of the file they take."""

    members: int = 0
    frames: int = 0
    data: int = 0
    size: int = 0


def cached_prefix(fd: int, art: CheckedArtifact) -> Prefix:
    """The whole members `cached_members` finds, and the leading frames of
    the next stored blob that decompress (after the manifest member only)."""
    members = cached_members(fd, art)
    offsets = member_offsets(art)
    sizes = _sizes(art)
    if members == 0 or members == len(sizes):
        return Prefix(members, 0, 0, offsets[members])
    frames = 0
    at = offsets[members]
    sizes_of = art.record.frames[members]
    # the member's last frame is never taken alone: its data ends the layer,
    # whose sha256 is checked then (a whole member covers that case)
    try:
        for raw in itertools.islice(_frames(fd, art, members, offsets), len(sizes_of) - 1):
            if len(raw) != FRAME_SIZE:
                break
            at += sizes_of[frames]
            frames += 1
    except (ValueError, OSError):
        pass
    return Prefix(members, frames, _data_in(frames, sizes[members][0]), at)


def _data_in(frames: int, size: int) -> int:
    """The data bytes of a member of `size` in its first `frames` frames."""
    return max(0, min(size, frames * FRAME_SIZE - TAR_BLOCK))


@dataclass(frozen=True, slots=True)
class OCIResumable:
    """A checked artifact as a `snaparc.mirror.resume.Resumable`."""

    art: CheckedArtifact

    @property
    def archive_id(self) -> str:
        return self.art.archive_id

    def room_needed(self) -> int:
        return self.art.record.file_size + sum(b.size for b in self.art.manifest.stored_blobs)

    def begins(self, fd: int) -> bool:
        return cached_members(fd, self.art, members=1) == 1
