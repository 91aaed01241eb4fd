"""Write one file of an archive, verified, to a stream (`snaparc cat`).

From a seekable archive only the frames of that file's blob are read. No
byte reaches `out` before both digests matched: the bytes are spooled (in
memory up to SPOOL_MEMORY, then in a temp file) and copied out afterwards.

With `tensor`, only that tensor's bytes are copied out: its range comes from
the manifest's tensor index, which the blob's header is checked against.
From a seekable archive whose blob has frame digests (format 1.2: a
safetensors blob of more than one frame), only the frames holding the
tensor and the blob's header are read, each checked against its frame
digest (`read_blob_part`). Otherwise (a pipe, a mirror or OCI target, which
are streams, or a blob without frame digests) the whole blob is read and
verified against its digests, then the tensor's range copied out.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import BinaryIO, cast

from snaparc.archive.index import open_index, read_blob, read_blob_part
from snaparc.archive.input import ArchiveInput, as_input
from snaparc.archive.reader import read_archive
from snaparc.archive.sink import DISCARD, BlobWriter
from snaparc.errors import IntegrityError, UsageError
from snaparc.format.limits import DEFAULT_LIMITS, Limits
from snaparc.format.manifest import BlobEntry, FileEntry, Manifest
from snaparc.format.safetensors import TensorInfo

SPOOL_MEMORY = 64 * 1024 * 1024


def find_file(manifest: Manifest, path: str) -> FileEntry:
    for f in manifest.files:
        if f.path == path:
            return f
    raise UsageError(f"no file {path!r} in the archive", path=path)


def find_tensor(manifest: Manifest, entry: FileEntry, name: str) -> TensorInfo:
    index = manifest.tensors.get(entry.blob)
    if index is None:
        raise UsageError(
            f"{entry.path!r} has no tensor index (a snapshot safetensors file of a "
            "format 1.1 archive has one)",
            path=entry.path,
        )
    for t in index:
        if t.name == name:
            return t
    raise UsageError(
        f"no tensor {name!r} in {entry.path!r} (`snaparc ls --tensors` lists them)",
        path=entry.path,
    )


class _Capture:
    """A sink that keeps one blob's bytes."""

    def __init__(self, path: str, spool: BinaryIO, tensor: str | None) -> None:
        self.path = path
        self.spool = spool
        self.tensor_name = tensor
        self.blob: str | None = None
        self.entry: FileEntry | None = None
        self.tensor: TensorInfo | None = None

    def begin(self, manifest: Manifest, archive_id: str) -> None:
        self.entry = find_file(manifest, self.path)
        if self.tensor_name is not None:
            self.tensor = find_tensor(manifest, self.entry, self.tensor_name)
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
    tensor: str | None = None,
) -> tuple[FileEntry, TensorInfo | None]:
    """Write file `path` (or one `tensor` of it) to `out`, verified; return its
    entry and the tensor written, if one was asked for."""
    archive = as_input(source)
    found: TensorInfo | None = None
    partial = False  # the spool holds only the tensor's bytes
    with cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)) as spool:
        if archive.seekable:
            index = open_index(archive, limits=limits)
            entry = find_file(index.manifest, path)
            if tensor is not None:
                found = find_tensor(index.manifest, entry, tensor)
            blob = index.manifest.blob_index()[entry.blob]
            if blob.external:
                raise IntegrityError(
                    f"{path!r} lives in base archive {index.manifest.base} (thin archive)"
                )
            if found is not None and blob.frame_blake3:
                read_blob_part(archive.stream, index, blob, found.begin, found.end, spool)
                partial = True
            else:
                read_blob(archive.stream, index, blob, spool)
        else:
            sink = _Capture(path, spool, tensor)
            read_archive(archive, sink, threads=threads, limits=limits)
            assert sink.entry is not None
            entry, found = sink.entry, sink.tensor
        if found is None or partial:
            spool.seek(0)
            shutil.copyfileobj(spool, out, 1 << 20)
        else:
            _copy_range(spool, out, found.begin, found.end)
    out.flush()
    return entry, found


def _copy_range(src: BinaryIO, out: BinaryIO, begin: int, end: int) -> None:
    src.seek(begin)
    left = end - begin
    while left:
        data = src.read(min(left, 1 << 20))
        if not data:
            raise IntegrityError("the verified blob is shorter than its tensor index says")
        out.write(data)
        left -= len(data)
