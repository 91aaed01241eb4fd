"""Is this archive an HF snapshot export, and does it describe itself truly?

Checked before any byte is written (`precheck`: a top-level
`snapshot_manifest.json` and `adapter/adapter_config.json`, and a thin
archive's base) and after every blob verified (`check_snapshot`: the archived
snapshot manifest declares exactly the files, digests and sizes the archive
holds). Shared by both destinations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import Field, TypeAdapter, ValidationError

from snaparc.archive.reader import ReadReport
from snaparc.errors import (
    ExportManifestError,
    IntegrityError,
    MissingBlobError,
    UsageError,
)
from snaparc.format.limits import Limits
from snaparc.format.manifest import Manifest
from snaparc.hf.manifest import (
    SNAPSHOT_MANIFEST_FILENAME,
    SNAPSHOT_README_FILENAME,
    AnySnapshotManifest,
    AudioSnapshotManifest,
    VlSnapshotManifest,
)
from snaparc.hf.materialize.layout import ADAPTER_CONFIG
from snaparc.publish import (
    os_error,
)

_SNAPSHOT_ADAPTER: TypeAdapter[AnySnapshotManifest] = TypeAdapter(
    Annotated[AudioSnapshotManifest | VlSnapshotManifest, Field(discriminator="modality")]
)


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


class PublishedSnapshot:
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


def precheck(manifest: Manifest, *, has_base: bool = False) -> None:
    """Before any byte is written: is this an archived HF snapshot export?"""
    check_is_snapshot(manifest)
    check_thin(manifest, has_base=has_base)


def check_is_snapshot(manifest: Manifest) -> None:
    paths = {f.path for f in manifest.files}
    target = manifest.metadata.get("export_target")
    if SNAPSHOT_MANIFEST_FILENAME not in paths or target not in (None, "hf_snapshot"):
        raise UsageError(
            "not an HF snapshot archive: it has no top-level snapshot_manifest.json "
            "(pack the export dir written by `snaparc export`, or use `snaparc unpack`)"
        )
    if ADAPTER_CONFIG not in paths:
        raise ExportManifestError(f"the archived snapshot has no {ADAPTER_CONFIG}")


def check_thin(manifest: Manifest, *, has_base: bool, have: frozenset[str] = frozenset()) -> None:
    """A thin archive needs its base, unless `have` (blobs already verified at
    the destination) holds every blob it leaves to the base."""
    external = [b for b in manifest.blobs if b.external and b.sha256 not in have]
    if external and not has_base:
        raise MissingBlobError(
            f"thin archive: {len(external)} blobs live in base archive {manifest.base}; "
            "pass --base BASE.dlmsnap"
        )


def check_snapshot(manifest: Manifest, report: ReadReport, raw: bytes) -> SnapshotCheck:
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


def read_small(path: Path, limits: Limits) -> bytes:
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
