"""What an archive holds, read from its head only (`snaparc ls`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from snaparc.archive.frames import next_data_frame, read_into_of, read_manifest_head
from snaparc.archive.index import open_index
from snaparc.archive.input import ArchiveInput, as_input
from snaparc.format.limits import DEFAULT_LIMITS, Limits
from snaparc.format.manifest import Manifest, archive_id
from snaparc.format.zstdframes import FrameSplitter


@dataclass(frozen=True, slots=True)
class Listing:
    manifest: Manifest
    archive_id: str
    compressed_size: int | None  # unknown when read from a pipe
    frames: int | None


def read_listing(source: ArchiveInput | BinaryIO, *, limits: Limits = DEFAULT_LIMITS) -> Listing:
    """The manifest (checked) without decompressing any blob.

    From a seekable file the seek table is checked against the manifest
    too; from a pipe only the head of the stream is read.
    """
    archive = as_input(source)
    if archive.seekable:
        index = open_index(archive, limits=limits)
        return Listing(index.manifest, index.archive_id, index.file_size, len(index.seek_table))
    splitter = FrameSplitter(
        read_into_of(archive.stream), max_frame_bytes=limits.max_frame_bytes, chunk=64 * 1024
    )
    manifest, body, _ = read_manifest_head(
        lambda w: next_data_frame(splitter, w),
        limits,
        expected_id=archive.expected_id,
        name=archive.name,
    )
    size = archive.size  # a mirror knows its record's file size
    return Listing(manifest, archive_id(body), size, None)
