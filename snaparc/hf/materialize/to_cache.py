"""Materialize into a Hugging Face hub cache: blobs, a snapshot of links, refs/main.

`materialize_hf_cache(source, repo_id=...)` publishes the archive as a repo
of the hub cache (layout, revision and write-order rules in
`snaparc.hf.materialize`); on any failure the cache is left as it was.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from snaparc.archive.input import ArchiveInput, OpenBase
from snaparc.archive.reader import ReadReport, read_archive
from snaparc.archive.sink import DISCARD, BlobWriter
from snaparc.archive.unpack import check_free_space, fill_from_base
from snaparc.errors import (
    DestinationError,
    UsageError,
)
from snaparc.format.limits import DEFAULT_LIMITS, Limits
from snaparc.format.manifest import BlobEntry, Manifest
from snaparc.hf.manifest import (
    SNAPSHOT_MANIFEST_FILENAME,
)
from snaparc.hf.materialize.checks import (
    PublishedSnapshot,
    SnapshotCheck,
    check_is_snapshot,
    check_snapshot,
    check_thin,
    read_small,
)
from snaparc.hf.materialize.layout import (
    LayoutConflict,
    RepoLayout,
    blob_link,
    inside,
    plan_repo_layout,
    repo_folder_name,
    revision_for,
    validate_repo_id,
)
from snaparc.progress import Progress
from snaparc.publish import (
    AtomicFile,
    NewFileWriter,
    StagingDir,
    clean_stale,
    disown,
    fsync_dir,
    os_error,
    own,
    temp_name,
)

BLOB_MODE = 0o444


_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class CacheResult(PublishedSnapshot):
    """A snapshot published into a hub cache as `repo_id` at `revision`."""

    repo_id: str
    cache_dir: Path
    repo_dir: Path
    revision: str
    snapshot_dir: Path
    blobs_written: int
    blobs_reused: int
    conflicts: tuple[LayoutConflict, ...]
    merged: tuple[tuple[str, str], ...]
    files: dict[str, str]
    snapshot: SnapshotCheck
    report: ReadReport


_BlobFile = NewFileWriter  # one blob's bytes into a new temp file


def _verified_blob(path: Path, blob: BlobEntry) -> bool:
    """An existing cache blob is trusted only as a regular file of the right size and sha256."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise os_error(exc, f"checking {path}") from None
    if not stat.S_ISREG(st.st_mode) or st.st_size != blob.size:
        return False
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return False
    return digest.hexdigest() == blob.sha256


class _Dirs:
    """Creates directories and remembers which, so a failure can remove them again."""

    def __init__(self) -> None:
        self.created: list[Path] = []

    def ensure(self, path: Path) -> None:
        missing: list[Path] = []
        p = path
        while not p.exists() and not p.is_symlink():
            missing.append(p)
            p = p.parent
        for d in reversed(missing):
            try:
                d.mkdir()
            except FileExistsError:
                continue
            except OSError as exc:
                raise os_error(exc, f"creating {d}") from None
            self.created.append(d)
        if path.is_symlink() or not path.is_dir():
            raise DestinationError(f"{path} is not a plain directory", path=str(path))

    def undo(self) -> None:
        for d in reversed(self.created):
            with suppress(OSError):
                d.rmdir()
        self.created.clear()


@dataclass
class _Repo:
    cache_dir: Path
    repo_dir: Path
    blobs: Path
    snapshots: Path
    refs: Path

    @classmethod
    def at(cls, cache_dir: Path, repo_id: str) -> _Repo:
        root = Path(os.path.abspath(cache_dir))
        repo_dir = inside(root, repo_folder_name(repo_id))
        return cls(
            root,
            repo_dir,
            inside(repo_dir, "blobs"),
            inside(repo_dir, "snapshots"),
            inside(repo_dir, "refs"),
        )


class _CacheBlobSink:
    """Streams new blobs to temp files in `blobs/`; publishes them on request only."""

    def __init__(
        self,
        repo: _Repo,
        dirs: _Dirs,
        *,
        has_base: bool = False,
        also_precheck: Callable[[Manifest], None] | None = None,
    ) -> None:
        self.repo = repo
        self.dirs = dirs
        self.has_base = has_base
        self.also_precheck = also_precheck
        self.layout: RepoLayout | None = None
        self.reused: set[str] = set()
        self.temps: dict[str, Path] = {}
        self.published: list[Path] = []

    def begin(self, manifest: Manifest, archive_id: str) -> None:
        check_is_snapshot(manifest)
        self.layout = plan_repo_layout(manifest.files)
        if self.also_precheck is not None:
            self.also_precheck(manifest)
        if self.repo.blobs.is_dir():
            for blob in manifest.blobs:
                if _verified_blob(self.final(blob.sha256), blob):
                    self.reused.add(blob.sha256)
        check_thin(manifest, has_base=self.has_base, have=frozenset(self.reused))
        for d in (self.repo.blobs, self.repo.snapshots, self.repo.refs):
            self.dirs.ensure(d)
        needed = 0
        for blob in manifest.blobs:
            if blob.sha256 not in self.reused:
                needed += blob.size
                clean_stale(self.repo.blobs, blob.sha256)
        check_free_space(self.repo.blobs, needed)

    def external_wanted(self, manifest: Manifest) -> dict[str, BlobEntry]:
        """The blobs a thin archive leaves to its base that the cache lacks."""
        return {b.sha256: b for b in manifest.blobs if b.external and b.sha256 not in self.reused}

    def final(self, sha256: str) -> Path:
        return inside(self.repo.blobs, sha256)

    def open_blob(self, blob: BlobEntry) -> BlobWriter:
        if blob.sha256 in self.reused:
            return DISCARD  # the reader still verifies it
        tmp = temp_name(self.final(blob.sha256).parent, blob.sha256, "tmp")
        self.temps[blob.sha256] = tmp
        own(tmp, is_dir=False)
        return _BlobFile(tmp)

    def blob_done(self, blob: BlobEntry) -> None:
        tmp = self.temps.get(blob.sha256)
        if tmp is not None:
            try:
                os.chmod(tmp, BLOB_MODE)
            except OSError as exc:
                raise os_error(exc, f"writing {tmp}") from None

    def path_of(self, sha256: str) -> Path:
        """Where the verified bytes of `sha256` are now (temp or existing blob)."""
        return self.temps.get(sha256) or self.final(sha256)

    def publish_blobs(self) -> None:
        for sha256, tmp in sorted(self.temps.items()):
            final = self.final(sha256)
            existed = final.exists() or final.is_symlink()
            try:
                os.replace(tmp, final)
            except OSError as exc:
                raise os_error(exc, f"publishing {final}") from None
            disown(tmp)
            if not existed:
                self.published.append(final)
        self.temps.clear()
        try:
            fsync_dir(self.repo.blobs)
        except OSError as exc:
            raise os_error(exc, f"publishing blobs in {self.repo.blobs}") from None

    def discard(self) -> None:
        """Remove temp files and the blobs this run published (never older ones)."""
        for path in [*self.temps.values(), *self.published]:
            with suppress(OSError):
                path.unlink(missing_ok=True)
                disown(path)
        self.temps.clear()
        self.published.clear()


def materialize_hf_cache(
    source: ArchiveInput | BinaryIO,
    *,
    repo_id: str,
    cache_dir: Path | None = None,
    threads: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    base: OpenBase | None = None,
    also_precheck: Callable[[Manifest], None] | None = None,
) -> CacheResult:
    """Verify the archive on `source` and publish it in a hub cache as `repo_id`.

    `also_precheck(manifest)` is a caller's own check, run before anything is
    written to the cache.

    `cache_dir` defaults to the hub's rule (`HF_HUB_CACHE`, else `$HF_HOME/hub`,
    else `~/.cache/huggingface/hub`, read once in `snaparc.hf.constants`).
    `repo_id` is validated first (`UsageError`). The layout, revision and
    atomicity rules are in the module docstring. On any failure the cache is
    left as it was.

    A thin archive takes the blobs it leaves to its base from the cache when
    the repo already holds them (a blob there is trusted only after its bytes
    hash to its name), else from the archive `base` opens, checked against
    both digests.
    """
    validate_repo_id(repo_id)
    if cache_dir is None:
        from snaparc.hf import constants

        cache_dir = constants.HF_HUB_CACHE
    repo = _Repo.at(Path(cache_dir), repo_id)
    return _to_cache_dir(source, repo_id, repo, threads, limits, progress, base, also_precheck)


def _to_cache_dir(
    source: ArchiveInput | BinaryIO,
    repo_id: str,
    repo: _Repo,
    threads: int | None,
    limits: Limits,
    progress: Progress | None,
    base: OpenBase | None = None,
    also_precheck: Callable[[Manifest], None] | None = None,
) -> CacheResult:
    for existing in (repo.repo_dir, repo.blobs, repo.snapshots, repo.refs):
        if existing.is_symlink() or (existing.exists() and not existing.is_dir()):
            raise DestinationError(f"{existing} is not a plain directory", path=str(existing))
    dirs = _Dirs()
    sink = _CacheBlobSink(repo, dirs, has_base=base is not None, also_precheck=also_precheck)
    new_snapshot: Path | None = None
    try:
        report = read_archive(source, sink, threads=threads, limits=limits, progress=progress)
        manifest = report.manifest
        report.bytes_verified += fill_from_base(sink, manifest, base)
        raw = read_small(sink.path_of(_snapshot_blob(manifest)), limits)
        check = check_snapshot(manifest, report, raw)
        layout = sink.layout
        assert layout is not None
        revision = revision_for(report.archive_id)
        target = inside(repo.snapshots, revision)
        existed = target.exists()
        with StagingDir(target, force=True) as staging:
            for repo_path, entry in sorted(layout.files.items()):
                link = inside(staging.path, repo_path)
                link.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(blob_link(repo_path, entry.blob), link)
            sink.publish_blobs()
            staging.publish()
        if not existed:
            new_snapshot = target
        with AtomicFile(inside(repo.refs, "main"), force=True) as ref:
            ref.file.write(revision.encode("ascii"))
    except BaseException:
        if new_snapshot is not None:
            _remove_tree(new_snapshot)
        sink.discard()
        dirs.undo()
        raise
    return CacheResult(
        repo_id=repo_id,
        cache_dir=repo.cache_dir,
        repo_dir=repo.repo_dir,
        revision=revision,
        snapshot_dir=target,
        blobs_written=len(manifest.blobs) - len(sink.reused),
        blobs_reused=len(sink.reused),
        conflicts=layout.conflicts,
        merged=layout.merged,
        files=dict(sorted(layout.sources.items())),
        snapshot=check,
        report=report,
    )


def _snapshot_blob(manifest: Manifest) -> str:
    for f in manifest.files:
        if f.path == SNAPSHOT_MANIFEST_FILENAME:
            return f.blob
    raise UsageError("not an HF snapshot archive")  # pragma: no cover (prechecked)


def _remove_tree(path: Path) -> None:
    """Remove a snapshot dir this call published (symlinks and dirs only)."""
    for root, dirnames, filenames in os.walk(path, topdown=False):
        for name in filenames + dirnames:
            p = os.path.join(root, name)
            if os.path.islink(p) or not os.path.isdir(p):
                os.unlink(p)
            else:
                os.rmdir(p)
    os.rmdir(path)
