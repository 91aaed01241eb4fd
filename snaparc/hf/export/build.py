"""Export a trained adapter as a self-contained HF snapshot directory.

`export_snapshot` writes `exports/hf-audio-snapshot/` (audio-language bases)
or `exports/hf-snapshot/` (vision-language bases) under a store:

    adapter/                 copy of the resolved PEFT adapter dir
    processor/               processor files (when a processor is given)
    snapshot_manifest.json   AudioSnapshotManifest | VlSnapshotManifest
    README.md                load instructions

Base weights are never copied: the manifest pins them by `hf_id` + `revision`.
The export is built in a sibling staging dir and swapped into place
(`snaparc.publish.StagingDir`): a re-export replaces the old one
completely, and a failed or interrupted export leaves the old one intact and
no staging dir behind (a killed one's is removed by the next export).
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from snaparc.errors import DestinationError, DiskFullError, ExportError, IOFailure, SnaparcError
from snaparc.hf.export.basemodels import BaseModelSpec
from snaparc.hf.export.readme import render_readme
from snaparc.hf.export.store import ResolvedAdapter, Store, resolve_adapter
from snaparc.hf.manifest import (
    SNAPSHOT_MANIFEST_FILENAME,
    SNAPSHOT_README_FILENAME,
    AnySnapshotManifest,
    AudioSnapshotManifest,
    ExportArtifact,
    VlSnapshotManifest,
    build_artifact,
)
from snaparc.publish import StagingDir
from snaparc.version import __version__

AUDIO_SNAPSHOT_SUBDIR = "hf-audio-snapshot"
VL_SNAPSHOT_SUBDIR = "hf-snapshot"
DEFAULT_CREATED_BY = f"snaparc {__version__}"


@dataclass(frozen=True)
class SnapshotResult:
    """Where an export landed and what it declares."""

    export_dir: Path
    manifest_path: Path
    readme_path: Path
    adapter_dir: Path
    processor_dir: Path | None
    manifest: AnySnapshotManifest

    @property
    def artifacts(self) -> list[ExportArtifact]:
        return list(self.manifest.artifacts)


def snapshot_subdir(spec: BaseModelSpec) -> str:
    """The `exports/` subdir for `spec`'s modality; `ExportError` for other modalities."""
    if spec.modality == "audio-language":
        return AUDIO_SNAPSHOT_SUBDIR
    if spec.modality == "vision-language":
        return VL_SNAPSHOT_SUBDIR
    raise ExportError(
        f"base {spec.key!r} has modality {spec.modality!r}: HF snapshot export is for "
        "audio-language and vision-language bases; export text adapters another way"
    )


def export_snapshot(
    store: Store | Path,
    spec: BaseModelSpec,
    *,
    adapter_name: str | None = None,
    adapter_path: Path | None = None,
    processor: object | None = None,
    processor_dir: Path | None = None,
    created_by: str = DEFAULT_CREATED_BY,
) -> SnapshotResult:
    """Write the HF snapshot export for `spec` under `store/exports/` atomically.

    The adapter is resolved by `resolve_adapter` (explicit path, named
    adapter, or the current one). `processor` (an object with
    `save_pretrained`) or `processor_dir` (a local dir loaded with
    `AutoProcessor.from_pretrained` and re-saved) fills `processor/`; give at
    most one. Raises `ExportError` (or a subclass) for every refusal or
    failure; the previous export, if any, is then untouched.
    """
    store = store if isinstance(store, Store) else Store(Path(store))
    subdir = snapshot_subdir(spec)
    if processor is not None and processor_dir is not None:
        raise ExportError("pass either a processor object or a processor dir, not both")
    adapter = resolve_adapter(store, adapter_name=adapter_name, adapter_path=adapter_path)
    if processor_dir is not None:
        processor = _load_processor(processor_dir)
    target = _prepare_target(store, subdir)
    try:
        with StagingDir(target, force=True) as staging:
            manifest = _build_tree(staging.path, spec, adapter, processor, created_by)
            staging.publish(sync_files=True)
    except (DestinationError, DiskFullError, IOFailure) as exc:  # from StagingDir
        raise ExportError(f"export to {target} failed: {exc}", path=str(target)) from exc
    except SnaparcError:
        raise
    except OSError as exc:
        raise ExportError(f"export to {target} failed: {exc}", path=str(target)) from exc
    return SnapshotResult(
        export_dir=target,
        manifest_path=target / SNAPSHOT_MANIFEST_FILENAME,
        readme_path=target / SNAPSHOT_README_FILENAME,
        adapter_dir=target / "adapter",
        processor_dir=target / "processor" if processor is not None else None,
        manifest=manifest,
    )


def _prepare_target(store: Store, subdir: str) -> Path:
    root = store.root.resolve()
    exports = store.exports
    try:
        exports.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create {exports}: {exc}", path=str(exports)) from exc
    if not exports.resolve().is_relative_to(root):
        raise ExportError(
            f"{exports} resolves outside the store root {root}; make it a plain directory",
            path=str(exports),
        )
    target = exports / subdir
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise ExportError(
            f"{target} exists and is not a plain directory; remove it and export again",
            path=str(target),
        )
    return target


def _load_processor(processor_dir: Path) -> object:
    if not processor_dir.is_dir():
        raise ExportError(
            f"processor dir {processor_dir} does not exist or is not a directory",
            path=str(processor_dir),
        )
    try:
        from transformers import AutoProcessor
    except ImportError as exc:
        raise ExportError("loading a processor needs transformers: install snaparc[hf]") from exc
    try:
        auto: Any = AutoProcessor
        loaded: object = auto.from_pretrained(str(processor_dir))
    except Exception as exc:
        raise ExportError(
            f"cannot load a processor from {processor_dir}: {exc}", path=str(processor_dir)
        ) from exc
    return loaded


def _build_tree(
    staging: Path,
    spec: BaseModelSpec,
    adapter: ResolvedAdapter,
    processor: object | None,
    created_by: str,
) -> AnySnapshotManifest:
    _copy_adapter(adapter.path, staging / "adapter")
    if processor is not None:
        _save_processor(processor, staging / "processor")
    artifacts = [
        build_artifact(staging, path)
        for path in sorted(staging.rglob("*"), key=lambda p: p.relative_to(staging).as_posix())
        if path.is_file()
    ]
    manifest = _make_manifest(spec, adapter, artifacts, created_by)
    _write_text(staging / SNAPSHOT_MANIFEST_FILENAME, manifest.to_json())
    readme = render_readme(spec, manifest, has_processor=processor is not None)
    _write_text(staging / SNAPSHOT_README_FILENAME, readme)
    return manifest


def _copy_adapter(src: Path, dst: Path) -> None:
    """Copy regular files and dirs only; a symlink or special file is refused."""
    for dirpath, dirnames, filenames in os.walk(src):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            mode = path.lstat().st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise ExportError(
                    f"adapter dir {src} contains {path.relative_to(src)}, which is not a "
                    "regular file or directory; copy the adapter without links and retry",
                    path=str(path),
                )
    shutil.copytree(src, dst, symlinks=False)


def _save_processor(processor: object, dst: Path) -> None:
    save = getattr(processor, "save_pretrained", None)
    if not callable(save):
        raise ExportError(
            f"processor {type(processor).__name__} has no save_pretrained(); pass a "
            "transformers processor"
        )
    dst.mkdir()
    try:
        save(str(dst))
    except Exception as exc:
        raise ExportError(f"saving the processor failed: {exc}") from exc
    if not any(dst.iterdir()):
        raise ExportError("the processor's save_pretrained() wrote no files")


def _make_manifest(
    spec: BaseModelSpec,
    adapter: ResolvedAdapter,
    artifacts: list[ExportArtifact],
    created_by: str,
) -> AnySnapshotManifest:
    common = {
        "created_at": datetime.now(UTC).replace(microsecond=0),
        "created_by": created_by,
        "base_model_hf_id": spec.hf_id,
        "base_model_revision": spec.revision,
        "base_model_architecture": spec.architecture,
        "adapter_version": adapter.version,
        "adapter_name": adapter.name,
        "artifacts": artifacts,
    }
    if spec.audio_plan is not None:
        return AudioSnapshotManifest.model_validate({**common, **spec.audio_plan.model_dump()})
    if spec.vl_plan is not None:
        return VlSnapshotManifest.model_validate({**common, **spec.vl_plan.model_dump()})
    raise ExportError(f"base {spec.key!r} carries no preprocessor plan")  # pragma: no cover


def _write_text(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
