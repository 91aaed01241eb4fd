"""What an archive holds, read from its head only (`snaparc ls`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from snaparc.archive.index import open_index
from snaparc.archive.reader import next_data_frame, read_into_of, read_manifest_head
from snaparc.format.limits import DEFAULT_LIMITS, Limits
from snaparc.format.manifest import Manifest, archive_id
from snaparc.format.zstdframes import FrameSplitter
from snaparc.inputs import is_seekable


@dataclass(frozen=True, slots=True)
class Listing:
    manifest: Manifest
    archive_id: str
    compressed_size: int | None  # unknown when read from a pipe
    frames: int | None


def read_listing(stream: BinaryIO, *, limits: Limits = DEFAULT_LIMITS) -> Listing:
    """The manifest (checked) without decompressing any blob.

    From a seekable file the seek table is checked against the manifest
    too; from a pipe only the head of the stream is read.
    """
    if is_seekable(stream):
        index = open_index(stream, limits=limits)
        return Listing(index.manifest, index.archive_id, index.file_size, len(index.seek_table))
    splitter = FrameSplitter(
        read_into_of(stream), max_frame_bytes=limits.max_frame_bytes, chunk=64 * 1024
    )
    manifest, body, _ = read_manifest_head(lambda w: next_data_frame(splitter, w), limits)
    return Listing(manifest, archive_id(body), None, None)
