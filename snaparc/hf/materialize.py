"""Materialize an archived HF snapshot export: verified while written, published whole.

Two destinations, one public function each; both read the archive once through
`snaparc.archive.reader.read_archive` (every blob's sha256 and blake3, tar headers,
seek table, end of archive) and publish only after it returned:

`materialize_hf_dir(stream, dest)` recreates the snapshot export tree itself
(`adapter/`, `processor/`, `snapshot_manifest.json`, `README.md`) at `dest`,
complete or not at all (`StagingDir`; `force=True` swaps atomically). Files
are published read-only (0444, 0555 if executable); directories stay 0755 so
the tree can be deleted. `PeftModel.from_pretrained(base, dest / "adapter")`
and `AutoProcessor.from_pretrained(dest / "processor")` load it.

`materialize_hf_cache(stream, repo_id="ORG/NAME")` writes the Hugging Face hub
cache layout under `cache_dir` (default: `snaparc.hf.constants.HF_HUB_CACHE`,
the hub's own rule):

    models--ORG--NAME/blobs/<sha256>                      content, 0444
    models--ORG--NAME/snapshots/<revision>/<path>  ->  ../../blobs/<sha256>
    models--ORG--NAME/refs/main                           <revision>

Rules (normative for this module):

- Revision: the first 40 hex characters of the archive id (the sha256 of the
  archive's canonical manifest). The same archive always gives the same
  revision; a different archive gives a different one.
- Repo layout (how adapter repos on the Hub look): `adapter/P` goes to `P`
  and `processor/P` to `P` at the repo root; every other file of the export
  (`snapshot_manifest.json`, `README.md`, anything else) keeps its path.
  Files claim names in priority order: the export's other files first, then
  `adapter/`, then `processor/` (each sorted by path). Files with the same
  name and identical content merge into one entry. A real conflict (same
  name, different content, or a file/directory clash) is never lost: the
  losing file keeps its export path (`processor/P`, `adapter/README.md`, ...)
  in the snapshot, and the conflict is reported in `CacheResult.conflicts`.
  peft writes a `README.md` model card into every adapter dir, so
  `adapter/README.md` normally loses to the export's `README.md` and is kept
  as `adapter/README.md`. Empty directories of the export are not recreated
  (the hub cache has no notion of them).
- Blobs are named by the sha256 the reader verified. A blob already in the
  cache is reused (not rewritten) only if it is a regular file (not a
  symlink) of the right size whose content we hash and find equal to its
  name; anything else is replaced by the verified copy. New blobs are written
  to process-unique temp names inside `blobs/` and renamed into place after
  the whole archive verified.
- Write order: blobs renamed into place; the snapshot dir (built in a staging
  dir beside it) renamed to `snapshots/<revision>` (atomic exchange if that
  revision already exists); `refs/main` written last, via `AtomicFile`. A
  failure at any step undoes the earlier ones: new blobs and the new snapshot
  dir are removed, temp files and staging dirs are deleted, and directories
  this call created are removed again, so the cache is left as it was.

Neither function imports torch, transformers or peft.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import stat
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, BinaryIO

from pydantic import Field, TypeAdapter, ValidationError

from snaparc.archive.input import ArchiveInput, OpenBase
from snaparc.archive.reader import ReadReport, read_archive
from snaparc.archive.sink import DISCARD, BlobWriter
from snaparc.archive.unpack import TreeSink, check_free_space, fill_from_base
from snaparc.errors import (
    DestinationError,
    ExportError,
    ExportManifestError,
    IntegrityError,
    MissingBlobError,
    UsageError,
)
from snaparc.format.limits import DEFAULT_LIMITS, Limits
from snaparc.format.manifest import BlobEntry, FileEntry, Manifest
from snaparc.hf.manifest import (
    SNAPSHOT_MANIFEST_FILENAME,
    SNAPSHOT_README_FILENAME,
    AnySnapshotManifest,
    AudioSnapshotManifest,
    VlSnapshotManifest,
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
    owner_tag,
)

ADAPTER_DIR = "adapter"
PROCESSOR_DIR = "processor"
ADAPTER_CONFIG = f"{ADAPTER_DIR}/adapter_config.json"
REVISION_LENGTH = 40
BLOB_MODE = 0o444
_TMP_TAG = ".snaparc-tmp-"
_CHUNK = 1 << 20
_REPO_PART = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.\-]{0,94}[A-Za-z0-9_])?")
_SNAPSHOT_ADAPTER: TypeAdapter[AnySnapshotManifest] = TypeAdapter(
    Annotated[AudioSnapshotManifest | VlSnapshotManifest, Field(discriminator="modality")]
)

# --- results -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SnapshotCheck:
    """What was verified about the archived snapshot export, beyond the archive itself."""

    archive_id: str
    base_model_hf_id: str
    base_model_revision: str
    modality: str
    adapter_version: int
    adapter_name: str | None
    artifacts_checked: int
    undeclared: tuple[str, ...]
    checks: tuple[str, ...]


class _PublishedSnapshot:
    """What both results say about the archive they came from."""

    __slots__ = ()
    snapshot: SnapshotCheck
    report: ReadReport

    @property
    def archive_id(self) -> str:
        return self.report.archive_id

    @property
    def base_model_hf_id(self) -> str:
        return self.snapshot.base_model_hf_id

    @property
    def base_model_revision(self) -> str:
        return self.snapshot.base_model_revision


@dataclass(frozen=True, slots=True)
class MaterializeResult(_PublishedSnapshot):
    """A snapshot export tree published at `target`."""

    target: Path
    snapshot: SnapshotCheck
    report: ReadReport


@dataclass(frozen=True, slots=True)
class LayoutConflict:
    """Two export files wanted the same repo path; `moved` lives at `moved_to` instead."""

    repo_path: str
    kept: str
    moved: str
    moved_to: str
    reason: str

    def describe(self) -> str:
        return (
            f"{self.repo_path}: {self.kept} kept at the root; {self.moved} "
            f"({self.reason}) kept as {self.moved_to}"
        )


@dataclass(frozen=True, slots=True)
class RepoLayout:
    """Where each export file lives in the repo snapshot.

    `files` maps repo path -> the file entry placed there, `sources` repo
    path -> its export path; `merged` lists (repo path, export path) of identical files folded into
    an existing entry.
    """

    files: dict[str, FileEntry]
    sources: dict[str, str]
    merged: tuple[tuple[str, str], ...]
    conflicts: tuple[LayoutConflict, ...]


@dataclass(frozen=True, slots=True)
class CacheResult(_PublishedSnapshot):
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


# --- pure rules ----------------------------------------------------------------


def validate_repo_id(repo_id: str) -> tuple[str, str]:
    """`ORG/NAME` with the Hub's characters (A-Z a-z 0-9 _ . -), each part 1..96
    characters starting and ending with a letter, digit or `_`, no `--` or `..`
    (the cache folder name uses `--` as separator), not ending in `.git`.
    Raises `UsageError`; returns (org, name)."""
    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise UsageError(f"repo id {repo_id!r} must be ORG/NAME")
    org, name = repo_id.split("/")
    for part in (org, name):
        if not _REPO_PART.fullmatch(part):
            raise UsageError(
                f"repo id {repo_id!r}: {part!r} must be 1-96 of A-Z a-z 0-9 _ . - and start "
                "and end with a letter, digit or _"
            )
        if "--" in part or ".." in part:
            raise UsageError(f"repo id {repo_id!r}: '--' and '..' are not allowed")
    if name.endswith(".git"):
        raise UsageError(f"repo id {repo_id!r}: the name cannot end in .git")
    return org, name


def repo_folder_name(repo_id: str) -> str:
    """The hub cache folder of a model repo: `models--ORG--NAME`."""
    org, name = validate_repo_id(repo_id)
    return f"models--{org}--{name}"


def revision_for(archive_id: str) -> str:
    """The cache revision of an archive: the first 40 hex chars of its archive id."""
    if not re.fullmatch(r"[0-9a-f]{64}", archive_id):
        raise ValueError(f"not an archive id: {archive_id!r}")
    return archive_id[:REVISION_LENGTH]


def _priority(path: str) -> tuple[int, str]:
    top = path.split("/", 1)[0]
    if top == ADAPTER_DIR and "/" in path:
        return 1, path.split("/", 1)[1]
    if top == PROCESSOR_DIR and "/" in path:
        return 2, path.split("/", 1)[1]
    return 0, path


def plan_repo_layout(files: Sequence[FileEntry]) -> RepoLayout:
    """Map export paths to repo paths by the rule in the module docstring."""
    ordered = sorted(files, key=lambda f: (_priority(f.path)[0], f.path))
    placed: dict[str, FileEntry] = {}
    sources: dict[str, str] = {}
    dirs: set[str] = set()
    merged: list[tuple[str, str]] = []
    conflicts: list[LayoutConflict] = []

    def clash(path: str) -> str | None:
        """Why `path` cannot hold a new file (None if it can)."""
        if path in placed:
            return "different content"
        if path in dirs:
            return "a directory of that name exists"
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in placed:
                return f"{'/'.join(parts[:i])} is a file"
        return None

    def place(path: str, entry: FileEntry) -> None:
        placed[path] = entry
        sources[path] = entry.path
        parts = path.split("/")
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))

    for entry in ordered:
        want = _priority(entry.path)[1]
        occupant = placed.get(want)
        if occupant is not None and occupant.blob == entry.blob:
            merged.append((want, entry.path))
            continue
        reason = clash(want)
        if reason is None:
            place(want, entry)
            continue
        fallback = entry.path
        fallback_occupant = placed.get(fallback)
        if fallback_occupant is not None and fallback_occupant.blob == entry.blob:
            merged.append((fallback, entry.path))
        elif fallback == want or clash(fallback) is not None:
            raise ExportError(
                f"cannot lay out {entry.path} in the repo: {want} and {fallback} are both taken"
            )
        else:
            place(fallback, entry)
        kept = sources.get(want, want)
        conflicts.append(LayoutConflict(want, kept, entry.path, fallback, reason))
    return RepoLayout(placed, sources, tuple(merged), tuple(conflicts))


def _blob_link(repo_path: str, sha256: str) -> str:
    """`../../blobs/<sha>` from `snapshots/<rev>/<repo_path>`, one `..` per extra level."""
    depth = len(PurePosixPath(repo_path).parts) + 1
    return "../" * depth + f"blobs/{sha256}"


def _inside(root: Path, rel: str) -> Path:
    """`root/rel`, refused unless it stays lexically inside `root`."""
    base = os.path.normpath(os.path.abspath(root))
    path = os.path.normpath(os.path.join(base, *PurePosixPath(rel).parts))
    if os.path.isabs(rel) or not path.startswith(base + os.sep):
        raise ExportError(f"path {rel!r} would leave {root}", path=str(root))
    return Path(path)


# --- snapshot checks -------------------------------------------------------------


def _precheck(manifest: Manifest, *, has_base: bool = False) -> None:
    """Before any byte is written: is this an archived HF snapshot export?"""
    _check_is_snapshot(manifest)
    _check_thin(manifest, has_base=has_base)


def _check_is_snapshot(manifest: Manifest) -> None:
    paths = {f.path for f in manifest.files}
    target = manifest.metadata.get("export_target")
    if SNAPSHOT_MANIFEST_FILENAME not in paths or target not in (None, "hf_snapshot"):
        raise UsageError(
            "not an HF snapshot archive: it has no top-level snapshot_manifest.json "
            "(pack the export dir written by `snaparc export`, or use `snaparc unpack`)"
        )
    if ADAPTER_CONFIG not in paths:
        raise ExportManifestError(f"the archived snapshot has no {ADAPTER_CONFIG}")


def _check_thin(manifest: Manifest, *, has_base: bool, have: frozenset[str] = frozenset()) -> None:
    """A thin archive needs its base, unless `have` (blobs already verified at
    the destination) holds every blob it leaves to the base."""
    external = [b for b in manifest.blobs if b.external and b.sha256 not in have]
    if external and not has_base:
        raise MissingBlobError(
            f"thin archive: {len(external)} blobs live in base archive {manifest.base}; "
            "pass --base BASE.dlmsnap"
        )


def _check_snapshot(manifest: Manifest, report: ReadReport, raw: bytes) -> SnapshotCheck:
    """The archived `snapshot_manifest.json` must describe the archive's files exactly."""
    try:
        snap = _SNAPSHOT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(manifest)"
        raise ExportManifestError(
            f"the archived {SNAPSHOT_MANIFEST_FILENAME} is not a valid snapshot manifest: "
            f"{where}: {first['msg']}"
        ) from None
    files = {f.path: f for f in manifest.files}
    for artifact in snap.artifacts:
        entry = files.get(artifact.path)
        if entry is None:
            raise IntegrityError(
                f"{SNAPSHOT_MANIFEST_FILENAME} declares {artifact.path}, which the archive lacks",
                path=artifact.path,
            )
        if entry.blob != artifact.sha256 or entry.size != artifact.size_bytes:
            raise IntegrityError(
                f"{artifact.path}: the archive holds sha256 {entry.blob[:12]}… ({entry.size} "
                f"bytes), {SNAPSHOT_MANIFEST_FILENAME} declares {artifact.sha256[:12]}… "
                f"({artifact.size_bytes} bytes)",
                path=artifact.path,
            )
    for key in ("base_model_hf_id", "base_model_revision"):
        recorded = manifest.metadata.get(key)
        if recorded is not None and recorded != getattr(snap, key):
            raise IntegrityError(
                f"archive metadata {key}={recorded!r} disagrees with "
                f"{SNAPSHOT_MANIFEST_FILENAME} ({getattr(snap, key)!r})"
            )
    declared = {a.path for a in snap.artifacts}
    own = {SNAPSHOT_MANIFEST_FILENAME, SNAPSHOT_README_FILENAME}
    undeclared = tuple(sorted(set(files) - declared - own))
    checks = (
        f"sha256 and blake3 of {report.blobs_verified} blobs ({report.bytes_verified} bytes), "
        "every tar header, the end of archive and the seek table",
        f"{SNAPSHOT_MANIFEST_FILENAME}: {len(snap.artifacts)} artifacts match the archived "
        "files (path, size, sha256)",
        "base model pin: archive metadata agrees with " + SNAPSHOT_MANIFEST_FILENAME,
    )
    return SnapshotCheck(
        archive_id=report.archive_id,
        base_model_hf_id=snap.base_model_hf_id,
        base_model_revision=snap.base_model_revision,
        modality=snap.modality,
        adapter_version=snap.adapter_version,
        adapter_name=snap.adapter_name,
        artifacts_checked=len(snap.artifacts),
        undeclared=undeclared,
        checks=checks,
    )


# --- local dir -------------------------------------------------------------------


class _SnapshotTreeSink:
    """A read-only `TreeSink` that first checks the archive is an HF snapshot."""

    def __init__(self, root: Path, *, has_base: bool = False) -> None:
        self._tree = TreeSink(root, read_only=True, has_base=has_base)
        self._has_base = has_base

    def begin(self, manifest: Manifest, archive_id: str) -> None:
        _precheck(manifest, has_base=self._has_base)
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
        raw = _read_small(staging.path / SNAPSHOT_MANIFEST_FILENAME, limits)
        check = _check_snapshot(report.manifest, report, raw)
        staging.publish()
    return MaterializeResult(staging.target, check, report)


def _read_small(path: Path, limits: Limits) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read(limits.max_manifest_bytes + 1)
    except OSError as exc:
        raise os_error(exc, f"reading {path}") from None
    if len(data) > limits.max_manifest_bytes:
        raise ExportManifestError(
            f"the archived {SNAPSHOT_MANIFEST_FILENAME} is over {limits.max_manifest_bytes} bytes"
        )
    return data


# --- hub cache -------------------------------------------------------------------


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
        repo_dir = _inside(root, repo_folder_name(repo_id))
        return cls(
            root,
            repo_dir,
            _inside(repo_dir, "blobs"),
            _inside(repo_dir, "snapshots"),
            _inside(repo_dir, "refs"),
        )


class _CacheBlobSink:
    """Streams new blobs to temp files in `blobs/`; publishes them on request only."""

    def __init__(self, repo: _Repo, dirs: _Dirs, *, has_base: bool = False) -> None:
        self.repo = repo
        self.dirs = dirs
        self.has_base = has_base
        self.layout: RepoLayout | None = None
        self.reused: set[str] = set()
        self.temps: dict[str, Path] = {}
        self.published: list[Path] = []

    def begin(self, manifest: Manifest, archive_id: str) -> None:
        _check_is_snapshot(manifest)
        self.layout = plan_repo_layout(manifest.files)
        if self.repo.blobs.is_dir():
            for blob in manifest.blobs:
                if _verified_blob(self.final(blob.sha256), blob):
                    self.reused.add(blob.sha256)
        _check_thin(manifest, has_base=self.has_base, have=frozenset(self.reused))
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
        return _inside(self.repo.blobs, sha256)

    def open_blob(self, blob: BlobEntry) -> BlobWriter:
        if blob.sha256 in self.reused:
            return DISCARD  # the reader still verifies it
        name = f".{blob.sha256}{_TMP_TAG}{owner_tag()}-{secrets.token_hex(4)}"
        tmp = _inside(self.repo.blobs, name)
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
) -> CacheResult:
    """Verify the archive on `source` and publish it in a hub cache as `repo_id`.

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
    return _to_cache_dir(source, repo_id, repo, threads, limits, progress, base)


def _to_cache_dir(
    source: ArchiveInput | BinaryIO,
    repo_id: str,
    repo: _Repo,
    threads: int | None,
    limits: Limits,
    progress: Progress | None,
    base: OpenBase | None = None,
) -> CacheResult:
    for existing in (repo.repo_dir, repo.blobs, repo.snapshots, repo.refs):
        if existing.is_symlink() or (existing.exists() and not existing.is_dir()):
            raise DestinationError(f"{existing} is not a plain directory", path=str(existing))
    dirs = _Dirs()
    sink = _CacheBlobSink(repo, dirs, has_base=base is not None)
    new_snapshot: Path | None = None
    try:
        report = read_archive(source, sink, threads=threads, limits=limits, progress=progress)
        manifest = report.manifest
        report.bytes_verified += fill_from_base(sink, manifest, base)
        raw = _read_small(sink.path_of(_snapshot_blob(manifest)), limits)
        check = _check_snapshot(manifest, report, raw)
        layout = sink.layout
        assert layout is not None
        revision = revision_for(report.archive_id)
        target = _inside(repo.snapshots, revision)
        existed = target.exists()
        with StagingDir(target, force=True) as staging:
            for repo_path, entry in sorted(layout.files.items()):
                link = _inside(staging.path, repo_path)
                link.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(_blob_link(repo_path, entry.blob), link)
            sink.publish_blobs()
            staging.publish()
        if not existed:
            new_snapshot = target
        with AtomicFile(_inside(repo.refs, "main"), force=True) as ref:
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
