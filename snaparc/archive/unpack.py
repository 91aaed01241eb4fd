"""Unpack an archive into a directory tree: verified, then published atomically.

The tree is built in a staging directory beside the target from the
manifest's paths (never from tar member names): each blob's bytes go to the
first file that uses it and are copied to the others once both digests
matched. Only after the whole archive verified (seek table and trailing bytes
included) does the staging directory become the target, with one rename.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from snaparc.archive.input import ArchiveInput, OpenBase
from snaparc.archive.reader import ReadReport, read_archive
from snaparc.archive.sink import DISCARD, BlobSink, BlobWriter, ThinSink
from snaparc.archive.tensors import TensorProfiles
from snaparc.errors import DiskFullError, MissingBlobError
from snaparc.format.limits import DEFAULT_LIMITS, Limits
from snaparc.format.manifest import BlobEntry, FileEntry, Manifest
from snaparc.format.safetensors import HeadCollector
from snaparc.progress import Progress
from snaparc.publish import NewFileWriter, StagingDir, os_error

# Room kept free beyond the payload: metadata, staging, other writers.
DISK_HEADROOM = 64 * 1024 * 1024


def file_mode(executable: bool, *, read_only: bool) -> int:
    if read_only:
        return 0o555 if executable else 0o444
    return 0o755 if executable else 0o644


def check_free_space(directory: Path, needed: int) -> None:
    free = shutil.disk_usage(directory).free
    if needed + DISK_HEADROOM > free:
        raise DiskFullError(
            f"not enough free space in {directory}: need {needed} bytes "
            f"(+{DISK_HEADROOM} headroom), {free} free"
        )


class TreeSink:
    """Lays the manifest's tree out under `root` as blobs arrive.

    `precheck(manifest)`, if given, runs first in `begin`: a caller's own
    refusal (not an HF snapshot, say) comes before any directory is made.
    """

    def __init__(
        self,
        root: Path,
        *,
        read_only: bool = False,
        has_base: bool = False,
        precheck: Callable[[Manifest], None] | None = None,
    ) -> None:
        self.root = root
        self.read_only = read_only
        self.has_base = has_base
        self.precheck = precheck
        self._by_blob: dict[str, list[FileEntry]] = {}
        self.manifest: Manifest | None = None

    def begin(self, manifest: Manifest, archive_id: str) -> None:
        if self.precheck is not None:
            self.precheck(manifest)
        if manifest.base is not None and not self.has_base:
            raise MissingBlobError(
                f"thin archive: some blobs live in base archive {manifest.base}; "
                "pass --base BASE.dlmsnap"
            )
        self.manifest = manifest
        check_free_space(self.root, manifest.total_size)
        self._by_blob = manifest.paths_by_blob()
        dirs = {str(Path(f.path).parent) for f in manifest.files} | set(manifest.dirs)
        try:
            for d in sorted(dirs):
                if d != ".":
                    (self.root / d).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise os_error(exc, f"creating directories in {self.root}") from None

    def _path(self, entry: FileEntry) -> Path:
        # Paths were checked by the manifest parser: relative, no '..', NFC.
        return self.root / entry.path

    def open_blob(self, blob: BlobEntry) -> NewFileWriter:
        return NewFileWriter(self._path(self._by_blob[blob.sha256][0]))

    def blob_done(self, blob: BlobEntry) -> None:
        entries = self._by_blob[blob.sha256]
        first = self._path(entries[0])
        try:
            for other in entries[1:]:
                dst = self._path(other)
                shutil.copyfile(first, dst, follow_symlinks=False)
                with open(dst, "rb+") as f:
                    os.fsync(f.fileno())
            for entry in entries:
                os.chmod(self._path(entry), file_mode(entry.executable, read_only=self.read_only))
        except OSError as exc:
            raise os_error(exc, f"writing {first}") from None

    def external_wanted(self, manifest: Manifest) -> dict[str, BlobEntry]:
        return {b.sha256: b for b in manifest.blobs if b.external}


def fill_from_base(sink: ThinSink, manifest: Manifest, open_base: OpenBase | None) -> int:
    """Feed `sink` the external blobs it wants from thin archive `manifest`'s base;
    return their bytes.

    `open_base` opens the base (a file, read by random access: only the
    needed blobs; split volumes; or a mirror target, read as a stream keeping
    the needed blobs); it is called only if some blob is wanted. The base must
    be the archive the thin one names, and both digests of every blob taken
    from it are checked. `sink.begin` is not called.
    """
    external = sink.external_wanted(manifest)
    if not external:
        return 0
    if open_base is None:
        raise MissingBlobError(
            f"thin archive: {len(external)} blobs live in base archive {manifest.base}; "
            "pass --base BASE.dlmsnap"
        )
    with open_base() as base:
        if base.seekable:
            _external_by_index(sink, base, manifest, external)
        else:
            read_archive(base, _BaseBlobs(sink, manifest, external, base.name))
    return sum(b.size for b in external.values())


class _Watched:
    """A blob writer that also feeds the thin archive's safetensors check: a blob
    taken from the base must meet the thin archive's own rules (profile, index)."""

    def __init__(self, writer: BlobWriter, head: HeadCollector) -> None:
        self.writer = writer
        self.head = head

    def write(self, data: memoryview, /) -> object:
        self.head.feed(data)
        return self.writer.write(data)

    def close(self) -> None:
        self.writer.close()


def _external_by_index(
    sink: BlobSink, base: ArchiveInput, manifest: Manifest, external: dict[str, BlobEntry]
) -> None:
    from snaparc.archive.index import open_index, read_blob

    index = open_index(base)
    _check_base(index.archive_id, index.manifest, manifest, external, base.name)
    in_base = index.manifest.blob_index()
    profiles = TensorProfiles(manifest)
    for blob in external.values():
        writer = sink.open_blob(blob)
        head = profiles.collector(blob)
        out = writer if head is None else _Watched(writer, head)
        read_blob(base.stream, index, in_base[blob.sha256], cast(BinaryIO, out))
        if head is not None:
            profiles.check(blob, head)
        writer.close()
        sink.blob_done(blob)


def _check_base(
    base_id: str,
    base_manifest: Manifest,
    manifest: Manifest,
    external: dict[str, BlobEntry],
    base: str,
) -> None:
    if base_id != manifest.base:
        raise MissingBlobError(
            f"{base} is archive {base_id}, but this thin archive needs base {manifest.base}"
        )
    in_base = base_manifest.blob_index()
    for blob in external.values():
        have = in_base.get(blob.sha256)
        if have is None or have.external or have.digests != blob.digests:
            raise MissingBlobError(f"blob {blob.sha256} is not stored in base {base}")


class _BaseBlobs:
    """A sink over a streamed base archive that keeps only the needed blobs."""

    def __init__(
        self, tree: BlobSink, manifest: Manifest, external: dict[str, BlobEntry], base: str
    ) -> None:
        self._tree = tree
        self._manifest = manifest
        self._external = external
        self._base = base
        self._profiles = TensorProfiles(manifest)  # the thin archive's rules
        self._heads: dict[str, HeadCollector] = {}

    def begin(self, manifest: Manifest, archive_id: str) -> None:
        _check_base(archive_id, manifest, self._manifest, self._external, self._base)

    def open_blob(self, blob: BlobEntry) -> BlobWriter:
        mine = self._external.get(blob.sha256)
        if mine is None:
            return DISCARD
        writer = self._tree.open_blob(mine)
        head = self._profiles.collector(mine)
        if head is None:
            return writer
        self._heads[mine.sha256] = head
        return _Watched(writer, head)

    def blob_done(self, blob: BlobEntry) -> None:
        mine = self._external.get(blob.sha256)
        if mine is not None:
            head = self._heads.pop(mine.sha256, None)
            if head is not None:
                self._profiles.check(mine, head)
            self._tree.blob_done(mine)


@dataclass(frozen=True, slots=True)
class UnpackResult:
    target: Path
    report: ReadReport


def unpack_archive(
    source: ArchiveInput | BinaryIO,
    dest: Path,
    *,
    force: bool = False,
    threads: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    read_only: bool = False,
    base: OpenBase | None = None,
    precheck: Callable[[Manifest], None] | None = None,
    before_publish: Callable[[Path, ReadReport], None] | None = None,
) -> UnpackResult:
    """Verify every byte of `source` and publish its tree at `dest` atomically.

    `precheck(manifest)` may refuse the archive before anything is written;
    `before_publish(staged_root, report)` may refuse the verified tree before
    it becomes `dest` (materialize checks the snapshot manifest there).
    """
    with StagingDir(dest, force=force) as staging:
        sink = TreeSink(
            staging.path, read_only=read_only, has_base=base is not None, precheck=precheck
        )
        report = read_archive(source, sink, threads=threads, limits=limits, progress=progress)
        report.bytes_verified += fill_from_base(sink, report.manifest, base)
        if before_publish is not None:
            before_publish(staging.path, report)
        staging.publish()
    return UnpackResult(staging.target, report)
