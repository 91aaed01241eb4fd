"""Materialize into a directory: the snapshot export tree itself, read-only.

`materialize_hf_dir(source, dest)` recreates `adapter/`, `processor/`,
`snapshot_manifest.json` and `README.md` at `dest`, complete or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from snaparc.archive.input import ArchiveInput, OpenBase
from snaparc.archive.reader import ReadReport, read_archive
from snaparc.archive.unpack import TreeSink, fill_from_base
from snaparc.format.limits import DEFAULT_LIMITS, Limits
from snaparc.format.manifest import BlobEntry, Manifest
from snaparc.hf.manifest import (
    SNAPSHOT_MANIFEST_FILENAME,
)
from snaparc.hf.materialize.checks import (
    PublishedSnapshot,
    SnapshotCheck,
    check_snapshot,
    precheck,
    read_small,
)
from snaparc.progress import Progress
from snaparc.publish import (
    StagingDir,
)


@dataclass(frozen=True, slots=True)
class MaterializeResult(PublishedSnapshot):
    """A snapshot export tree published at `target`."""

    target: Path
    snapshot: SnapshotCheck
    report: ReadReport


class _SnapshotTreeSink:
    """A read-only `TreeSink` that first checks the archive is an HF snapshot."""

    def __init__(self, root: Path, *, has_base: bool = False) -> None:
        self._tree = TreeSink(root, read_only=True, has_base=has_base)
        self._has_base = has_base

    def begin(self, manifest: Manifest, archive_id: str) -> None:
        precheck(manifest, has_base=self._has_base)
        self._tree.begin(manifest, archive_id)

    def external_wanted(self, manifest: Manifest) -> dict[str, BlobEntry]:
        return self._tree.external_wanted(manifest)

    def open_blob(self, blob: BlobEntry) -> Any:
        return self._tree.open_blob(blob)

    def blob_done(self, blob: BlobEntry) -> None:
        self._tree.blob_done(blob)


def materialize_hf_dir(
    source: ArchiveInput | BinaryIO,
    dest: Path,
    *,
    force: bool = False,
    threads: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    base: OpenBase | None = None,
) -> MaterializeResult:
    """Verify the archive on `source` and publish its snapshot export tree at `dest`.

    `base` opens the base archive of a thin archive (only if blobs are needed
    from it); its blobs are checked too.

    `dest` must not exist or be an empty directory, unless `force` (then it is
    replaced atomically). Raises `DestinationError` (exit 5) for an unusable
    target, `UsageError` for an archive that is no HF snapshot, `IntegrityError`
    for damaged data, `DiskFullError` when space runs out; `dest` is then as it was.
    """
    return _to_local_dir(source, Path(dest), force, threads, limits, progress, base)


def _to_local_dir(
    source: ArchiveInput | BinaryIO,
    dest: Path,
    force: bool,
    threads: int | None,
    limits: Limits,
    progress: Progress | None,
    base: OpenBase | None = None,
) -> MaterializeResult:
    with StagingDir(dest, force=force) as staging:
        sink = _SnapshotTreeSink(staging.path, has_base=base is not None)
        report = read_archive(source, sink, threads=threads, limits=limits, progress=progress)
        report.bytes_verified += fill_from_base(sink, report.manifest, base)
        raw = read_small(staging.path / SNAPSHOT_MANIFEST_FILENAME, limits)
        check = check_snapshot(report.manifest, report, raw)
        staging.publish()
    return MaterializeResult(staging.target, check, report)
