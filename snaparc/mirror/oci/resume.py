"""What a killed read of an OCI artifact leaves for the next run (spec/OCI.md,
section 5, "Resuming"; the mechanism is the mirrors', `snaparc.mirror.resume`).

A registry holds raw files; the resume file holds the rebuilt `.dlmsnap`
bytes at their offsets, as for a mirror. The record names no digest of a
compressed frame, so a member of the file is checked through what the
registry's digests cover: its frames, at the record's sizes, must decompress
(zstd checks each frame's content checksum) to a member whose data has the
blob's sha256 (the manifest member: the archive manifest's bytes). The
longest prefix of whole members that pass (`cached_members`) is read from
the file instead of fetched: the data of each is taken out of its frames
and goes through every check a fetched layer does (its sha256, the frames
rebuilt from it and their sizes, the whole file's sha256, the archive
reader). A member is reused whole or not at all.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import zstandard

from snaparc.format.constants import FRAME_SIZE
from snaparc.mirror.oci.frames import member_data

if TYPE_CHECKING:
    from snaparc.mirror.oci.pull import CheckedArtifact

__all__ = ["OCIResumable", "cached_data", "cached_members", "member_offsets"]


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
    for size in art.record.frames[i]:
        frame = os.pread(fd, size, at)
        if len(frame) != size:
            raise ValueError("short")
        at += size
        try:
            yield dctx.decompress(frame, max_output_size=FRAME_SIZE)
        except zstandard.ZstdError:
            raise ValueError("bad frame") from None


def cached_data(fd: int, art: CheckedArtifact, i: int) -> Iterator[bytes]:
    """Member `i`'s data taken out of the frames the file `fd` holds (the
    caller checks its sha256, as for a fetched layer)."""
    size = _sizes(art)[i][0]
    try:
        yield from member_data(_frames(fd, art, i, member_offsets(art)), size)
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
