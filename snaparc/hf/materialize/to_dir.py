"""Materialize into a directory: the snapshot export tree itself, read-only.

`materialize_hf_dir(source, dest)` recreates `adapter/`, `processor/`,
`snapshot_manifest.json` and `README.md` at `dest`, complete or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from snaparc.archive.input import ArchiveInput, OpenBase
from snaparc.archive.reader import ReadReport
from snaparc.archive.unpack import unpack_archive
from snaparc.format.limits import DEFAULT_LIMITS, Limits
from snaparc.format.manifest import Manifest
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


@dataclass(frozen=True, slots=True)
class MaterializeResult(PublishedSnapshot):
    """A snapshot export tree published at `target`."""

    target: Path
    snapshot: SnapshotCheck
    report: ReadReport


def materialize_hf_dir(
    source: ArchiveInput | BinaryIO,
    dest: Path,
    *,
    force: bool = False,
    threads: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    base: OpenBase | None = None,
    also_precheck: Callable[[Manifest], None] | None = None,
) -> MaterializeResult:
    """Verify the archive on `source` and publish its snapshot export tree at `dest`.

    `base` opens the base archive of a thin archive (only if blobs are needed
    from it); its blobs are checked too. `also_precheck(manifest)` is a
    caller's own check, run with the snapshot precheck before anything is written.

    `dest` must not exist or be an empty directory, unless `force` (then it is
    replaced atomically). Raises `DestinationError` (exit 5) for an unusable
    target, `UsageError` for an archive that is no HF snapshot, `IntegrityError`
    for damaged data, `DiskFullError` when space runs out; `dest` is then as it was.
    """
    return _to_local_dir(source, Path(dest), force, threads, limits, progress, base, also_precheck)


def _to_local_dir(
    source: ArchiveInput | BinaryIO,
    dest: Path,
    force: bool,
    threads: int | None,
    limits: Limits,
    progress: Progress | None,
    base: OpenBase | None = None,
    also_precheck: Callable[[Manifest], None] | None = None,
) -> MaterializeResult:
    checked: list[SnapshotCheck] = []

    def prechecks(manifest: Manifest) -> None:
        precheck(manifest, has_base=base is not None)
        if also_precheck is not None:
            also_precheck(manifest)

    def check_staged(root: Path, report: ReadReport) -> None:
        raw = read_small(root / SNAPSHOT_MANIFEST_FILENAME, limits)
        checked.append(check_snapshot(report.manifest, report, raw))

    result = unpack_archive(
        source,
        dest,
        force=force,
        threads=threads,
        limits=limits,
        progress=progress,
        read_only=True,
        base=base,
        precheck=prechecks,
        before_publish=check_staged,
    )
    return MaterializeResult(result.target, checked[0], result.report)
