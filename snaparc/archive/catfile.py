"""Write one file of an archive, verified, to a stream (`snaparc cat`).

From a seekable archive only the frames of that file's blob are read. No
byte reaches `out` before both digests matched: the bytes are spooled (in
memory up to SPOOL_MEMORY, then in a temp file) and copied out afterwards.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import BinaryIO, cast

from snaparc.archive.index import open_index, read_blob
from snaparc.archive.input import ArchiveInput, as_input
from snaparc.archive.reader import read_archive
from snaparc.archive.sink import DISCARD, BlobWriter
from snaparc.errors import IntegrityError, UsageError
from snaparc.format.limits import DEFAULT_LIMITS, Limits
from snaparc.format.manifest import BlobEntry, FileEntry, Manifest

SPOOL_MEMORY = 64 * 1024 * 1024


def find_file(manifest: Manifest, path: str) -> FileEntry:
    for f in manifest.files:
        if f.path == path:
            return f
    raise UsageError(f"no file {path!r} in the archive", path=path)


class _Capture:
    """A sink that keeps one blob's bytes."""

    def __init__(self, path: str, spool: BinaryIO) -> None:
        self.path = path
        self.spool = spool
        self.blob: str | None = None
        self.entry: FileEntry | None = None

    def begin(self, manifest: Manifest, archive_id: str) -> None:
        self.entry = find_file(manifest, self.path)
        self.blob = self.entry.blob

    def open_blob(self, blob: BlobEntry) -> BlobWriter:
        return self if blob.sha256 == self.blob else DISCARD

    def write(self, data: memoryview) -> None:
        self.spool.write(data)

    def close(self) -> None:
        pass

    def blob_done(self, blob: BlobEntry) -> None:
        pass


def cat_file(
    source: ArchiveInput | BinaryIO,
    path: str,
    out: BinaryIO,
    *,
    limits: Limits = DEFAULT_LIMITS,
    threads: int | None = None,
) -> FileEntry:
    archive = as_input(source)
    with cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)) as spool:
        if archive.seekable:
            index = open_index(archive, limits=limits)
            entry = find_file(index.manifest, path)
            blob = index.manifest.blob_index()[entry.blob]
            if blob.external:
                raise IntegrityError(
                    f"{path!r} lives in base archive {index.manifest.base} (thin archive)"
                )
            read_blob(archive.stream, index, blob, spool)
        else:
            sink = _Capture(path, spool)
            read_archive(archive, sink, threads=threads, limits=limits)
            assert sink.entry is not None
            entry = sink.entry
        spool.seek(0)
        shutil.copyfileobj(spool, out, 1 << 20)
    out.flush()
    return entry
