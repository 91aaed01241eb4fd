"""Exporting a snapshot: a training store's adapter -> an HF snapshot export dir.

- `basemodels`: pinned base model specs (registry keys or JSON files);
- `store`: the training store's layout and which adapter version to export;
- `build`: `export_snapshot`, which writes the export dir atomically;
- `readme`: the export's README with load instructions;
- `tree`: what `pack` checks of an export dir before archiving it.

The other direction, an archive back into a loadable tree or hub cache, is
`snaparc.hf.materialize`; both share the snapshot manifest model
(`snaparc.hf.manifest`).
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
    snapshot_subdir,
)
from snaparc.hf.export.store import (
    AdapterResolutionError,
    ResolvedAdapter,
    Store,
    check_adapter_name,
    resolve_adapter,
)
from snaparc.hf.export.tree import SnapshotInfo, inspect_snapshot_tree

__all__ = [
    "AUDIO_SNAPSHOT_SUBDIR",
    "BASE_MODELS",
    "VL_SNAPSHOT_SUBDIR",
    "AdapterResolutionError",
    "AudioPreprocessorPlan",
    "BaseModelSpec",
    "BaseSpecError",
    "ResolvedAdapter",
    "SnapshotInfo",
    "SnapshotResult",
    "Store",
    "VlPreprocessorPlan",
    "check_adapter_name",
    "export_snapshot",
    "inspect_snapshot_tree",
    "load_base_spec",
    "resolve_adapter",
    "snapshot_subdir",
]
