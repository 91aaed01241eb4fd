"""Where every byte of an archive lives, derived from the manifest alone.

The tar stream is: the manifest member, one member per stored blob in
manifest order, then the two zero blocks that end a tar archive. Each member
(header + data + padding) is cut into frames of FRAME_SIZE decompressed bytes,
the last frame of a member holding the rest; the end blocks are one more
frame. So a reader that has the manifest knows the decompressed size of every
frame that must follow, and which bytes of which blob each frame carries.
"""

from __future__ import annotations

from dataclasses import dataclass

from snaparc.format.constants import (
    BLOB_MEMBER_PREFIX,
    CODED_MEMBER_ROOT,
    FRAME_SIZE,
    MANIFEST_MEMBER,
    TAR_EOF,
)
from snaparc.format.manifest import BlobEntry, Manifest
from snaparc.format.tarheader import member_len


def blob_member_name(sha256: str, codec: str | None = None) -> str:
    """`blobs/sha256/<sha256>`, or `blobs/<codec>/<sha256>` for a coded blob."""
    if codec is None:
        return BLOB_MEMBER_PREFIX + sha256
    return f"{CODED_MEMBER_ROOT}{codec}/{sha256}"


def frame_sizes(length: int) -> list[int]:
    """Decompressed sizes of the frames that carry `length` bytes of one member."""
    full, rest = divmod(length, FRAME_SIZE)
    return [FRAME_SIZE] * full + ([rest] if rest else [])


@dataclass(frozen=True, slots=True)
class MemberPlan:
    name: str
    size: int
    blob: BlobEntry | None  # None for the manifest member
    first_frame: int
    num_frames: int
    offset: int  # decompressed offset of the member's header


@dataclass(frozen=True, slots=True)
class Layout:
    members: list[MemberPlan]
    frame_sizes: list[int]  # every data frame, end-of-archive frame last

    @property
    def num_frames(self) -> int:
        return len(self.frame_sizes)

    @property
    def tar_size(self) -> int:
        return sum(self.frame_sizes)

    def blob_member(self, sha256: str) -> MemberPlan:
        for m in self.members:
            if m.blob is not None and m.blob.sha256 == sha256:
                return m
        raise KeyError(sha256)


def plan_layout(manifest: Manifest, manifest_size: int) -> Layout:
    members: list[MemberPlan] = []
    sizes: list[int] = []
    offset = 0

    def add(name: str, size: int, blob: BlobEntry | None) -> None:
        nonlocal offset
        length = member_len(size)
        chunks = frame_sizes(length)
        members.append(MemberPlan(name, size, blob, len(sizes), len(chunks), offset))
        sizes.extend(chunks)
        offset += length

    add(MANIFEST_MEMBER, manifest_size, None)
    for blob in manifest.stored_blobs:
        add(blob_member_name(blob.sha256, blob.codec), blob.size, blob)
    sizes.append(len(TAR_EOF))
    return Layout(members, sizes)
