"""What the packer needs to know about an HF snapshot tree.

`inspect_snapshot_tree(root, files)` is the packer's single entry point: it
returns None for a tree without `snapshot_manifest.json`; otherwise it loads
and verifies the manifest against the files on disk and reports the files the
manifest does not declare (the packer refuses those unless told to allow
them) plus flat metadata for the archive manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from snaparc.errors import ExportManifestError
from snaparc.hf.manifest import (
    SNAPSHOT_MANIFEST_FILENAME,
    SNAPSHOT_README_FILENAME,
    AnySnapshotManifest,
    load_snapshot_manifest,
    verify_artifacts,
)

MetadataValue = str | int | bool | None
METADATA_KEYS = (
    "base_model_hf_id",
    "base_model_revision",
    "base_model_architecture",
    "modality",
    "adapter_version",
    "adapter_name",
    "export_target",
)


@dataclass(frozen=True)
class SnapshotInfo:
    """A verified HF snapshot tree.

    `undeclared`: sorted posix paths from `files` that are neither an artifact
    nor `snapshot_manifest.json` / `README.md`. `metadata`: exactly
    `METADATA_KEYS`, values str/int/bool/None (never floats).
    """

    manifest: AnySnapshotManifest
    undeclared: list[str] = field(default_factory=list)
    metadata: dict[str, MetadataValue] = field(default_factory=dict)


def snapshot_metadata(manifest: AnySnapshotManifest) -> dict[str, MetadataValue]:
    """The flat, float-free metadata the archive manifest records."""
    return {
        "base_model_hf_id": manifest.base_model_hf_id,
        "base_model_revision": manifest.base_model_revision,
        "base_model_architecture": manifest.base_model_architecture,
        "modality": manifest.modality,
        "adapter_version": manifest.adapter_version,
        "adapter_name": manifest.adapter_name,
        "export_target": manifest.export_target,
    }


def inspect_snapshot_tree(
    root: Path, files: list[str], *, digests: Mapping[str, str] | None = None
) -> SnapshotInfo | None:
    """Inspect the tree at `root` whose files (posix, relative) are `files`.

    Returns None when `root/snapshot_manifest.json` does not exist. Otherwise
    loads and verifies it (`ExportManifestError` on any problem, including a
    declared artifact that is missing from `files`, since the archive would
    then lack it) and returns the undeclared files and the metadata.
    `digests` (path -> sha256 the caller already computed) spares re-hashing.
    """
    if not (root / SNAPSHOT_MANIFEST_FILENAME).exists():
        return None
    manifest = load_snapshot_manifest(root)
    verify_artifacts(root, manifest, digests=digests)
    declared = {artifact.path for artifact in manifest.artifacts}
    listed = set(files)
    absent = sorted(declared - listed)
    if absent:
        raise ExportManifestError(
            f"{root / SNAPSHOT_MANIFEST_FILENAME} declares files that are not being "
            f"packed: {', '.join(absent)}",
            path=str(root),
        )
    own = {SNAPSHOT_MANIFEST_FILENAME, SNAPSHOT_README_FILENAME}
    undeclared = sorted(listed - declared - own)
    return SnapshotInfo(
        manifest=manifest, undeclared=undeclared, metadata=snapshot_metadata(manifest)
    )
