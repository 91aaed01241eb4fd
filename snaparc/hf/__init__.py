"""HF snapshot exports: store layout, base model specs, export, and inspection.

Layering: `basemodels` (pinned base specs) and `store` (adapter resolution)
feed `export` (which writes an export dir through `snaparc.publish`'s
`StagingDir` and describes it with a `manifest`); `snapshot` is what the
packer calls to verify a tree before archiving it.

Importing this package never imports torch, transformers or peft; only
`export_snapshot(..., processor_dir=...)` imports transformers, lazily.
"""

from __future__ import annotations

from snaparc.hf.basemodels import (
    BASE_MODELS,
    AudioPreprocessorPlan,
    BaseModelSpec,
    BaseSpecError,
    VlPreprocessorPlan,
    load_base_spec,
)
from snaparc.hf.export import (
    AUDIO_SNAPSHOT_SUBDIR,
    VL_SNAPSHOT_SUBDIR,
    SnapshotResult,
    export_snapshot,
)
from snaparc.hf.manifest import (
    SNAPSHOT_MANIFEST_FILENAME,
    AudioSnapshotManifest,
    ExportArtifact,
    SnapshotManifest,
    VlSnapshotManifest,
    load_snapshot_manifest,
    verify_artifacts,
)
from snaparc.hf.snapshot import SnapshotInfo, inspect_snapshot_tree
from snaparc.hf.store import AdapterResolutionError, ResolvedAdapter, Store, resolve_adapter

__all__ = [
    "AUDIO_SNAPSHOT_SUBDIR",
    "BASE_MODELS",
    "SNAPSHOT_MANIFEST_FILENAME",
    "VL_SNAPSHOT_SUBDIR",
    "AdapterResolutionError",
    "AudioPreprocessorPlan",
    "AudioSnapshotManifest",
    "BaseModelSpec",
    "BaseSpecError",
    "ExportArtifact",
    "ResolvedAdapter",
    "SnapshotInfo",
    "SnapshotManifest",
    "SnapshotResult",
    "Store",
    "VlPreprocessorPlan",
    "VlSnapshotManifest",
    "export_snapshot",
    "inspect_snapshot_tree",
    "load_base_spec",
    "load_snapshot_manifest",
    "resolve_adapter",
    "verify_artifacts",
]
