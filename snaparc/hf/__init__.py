"""Hugging Face snapshot exports, in both directions.

- `snaparc.hf.export`: a training store's adapter -> an HF snapshot export
  dir (base model specs, store layout, the export itself, and the tree checks
  `pack` runs on an export dir);
- `snaparc.hf.materialize`: an archived export -> a loadable directory or a
  hub cache repo;
- `snaparc.hf.manifest`: the snapshot manifest model both directions share;
  `snaparc.hf.constants`: the hub cache location, read once.

This package's face re-exports the export side and the manifest model.
Importing it never imports torch, transformers or peft; only
`export_snapshot(..., processor_dir=...)` imports transformers, lazily.
"""

from __future__ import annotations

from snaparc.hf.export.basemodels import (
    BASE_MODELS,
    AudioPreprocessorPlan,
    BaseModelSpec,
    BaseSpecError,
    VlPreprocessorPlan,
    load_base_spec,
)
from snaparc.hf.export.build import (
    AUDIO_SNAPSHOT_SUBDIR,
    VL_SNAPSHOT_SUBDIR,
    SnapshotResult,
    export_snapshot,
)
from snaparc.hf.export.store import AdapterResolutionError, ResolvedAdapter, Store, resolve_adapter
from snaparc.hf.export.tree import SnapshotInfo, inspect_snapshot_tree
from snaparc.hf.manifest import (
    SNAPSHOT_MANIFEST_FILENAME,
    AudioSnapshotManifest,
    ExportArtifact,
    SnapshotManifest,
    VlSnapshotManifest,
    load_snapshot_manifest,
    verify_artifacts,
)

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
