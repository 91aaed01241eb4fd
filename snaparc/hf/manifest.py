"""`snapshot_manifest.json`: the self-description of one HF-snapshot export.

`SnapshotManifest` holds what every HF snapshot shares; `AudioSnapshotManifest`
and `VlSnapshotManifest` add their modality's preprocessor fields. A reader
discriminates on `modality`. The file is JSON with sorted keys, indent 2 and a
trailing newline. `artifacts` lists every file of the export except the
manifest and `README.md`, by relative posix path, sha256 and size.

`load_snapshot_manifest` and `verify_artifacts` raise `ExportManifestError`
for a missing, unparsable or ill-shaped manifest, a missing artifact, or a
size or digest mismatch.
"""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from snaparc.errors import ExportManifestError

SNAPSHOT_MANIFEST_FILENAME = "snapshot_manifest.json"
SNAPSHOT_README_FILENAME = "README.md"
_CHUNK = 1 << 20


class ExportArtifact(BaseModel):
    """One exported file: relative posix path, sha256 (64 lowercase hex), size."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    sha256: str = Field(..., pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(..., ge=0)

    @field_validator("path")
    @classmethod
    def _relative_posix(cls, value: str) -> str:
        parts = value.split("/")
        if (
            not value
            or value.startswith("/")
            or "\\" in value
            or "\x00" in value
            or any(part in ("", ".", "..") for part in parts)
        ):
            raise ValueError(f"artifact path {value!r} is not a plain relative posix path")
        return value


class SnapshotManifest(BaseModel):
    """Fields shared by every HF-snapshot manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    export_target: Literal["hf_snapshot"] = "hf_snapshot"
    created_at: datetime
    created_by: str = Field(..., min_length=1, description="Tool and version that wrote it.")
    base_model_hf_id: str = Field(..., min_length=1)
    base_model_revision: str = Field(..., pattern=r"^[0-9a-f]{40}$")
    base_model_architecture: str = Field(..., min_length=1)
    modality: str
    adapter_version: int = Field(..., ge=1)
    adapter_name: str | None = None
    artifacts: list[ExportArtifact] = Field(default_factory=list)

    @field_validator("artifacts")
    @classmethod
    def _unique_paths(cls, value: list[ExportArtifact]) -> list[ExportArtifact]:
        seen: set[str] = set()
        for artifact in value:
            if artifact.path in seen:
                raise ValueError(f"artifact {artifact.path!r} is listed twice")
            if artifact.path in (SNAPSHOT_MANIFEST_FILENAME, SNAPSHOT_README_FILENAME):
                raise ValueError(f"{artifact.path!r} cannot be an artifact")
            seen.add(artifact.path)
        return value

    def to_json(self) -> str:
        """The canonical file text: sorted keys, indent 2, trailing newline."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, indent=2) + "\n"


class AudioSnapshotManifest(SnapshotManifest):
    """An audio-language snapshot: adds the audio preprocessor plan."""

    modality: Literal["audio-language"] = "audio-language"
    audio_token: str = Field(..., min_length=1)
    num_audio_tokens: int = Field(..., ge=1)
    sample_rate: int = Field(..., gt=0)
    max_length_seconds: float = Field(..., gt=0)
    rationale: str = Field(
        default=(
            "Audio-language architectures are not on the llama.cpp roadmap; this build "
            "emits an HF-snapshot fallback so users can share trained adapters without "
            "waiting for upstream GGUF support."
        ),
        description="Why an HF snapshot rather than GGUF (kept from the exporter this "
        "format comes from, so its manifests load unchanged).",
    )


class VlSnapshotManifest(SnapshotManifest):
    """A vision-language snapshot: adds the image preprocessor plan."""

    modality: Literal["vision-language"] = "vision-language"
    image_token: str = Field(..., min_length=1)
    num_image_tokens: int = Field(..., ge=1)
    target_size: int = Field(..., gt=0)
    resize_policy: Literal["fixed", "dynamic"]
    rationale: str = Field(
        default=(
            "Vision-language architectures are exported as an HF snapshot so users can "
            "share trained adapters without waiting for upstream GGUF support."
        ),
        description="Why an HF snapshot rather than GGUF.",
    )


AnySnapshotManifest = AudioSnapshotManifest | VlSnapshotManifest
_MANIFEST_ADAPTER: TypeAdapter[AnySnapshotManifest] = TypeAdapter(
    Annotated[AnySnapshotManifest, Field(discriminator="modality")]
)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def build_artifact(root: Path, path: Path) -> ExportArtifact:
    """The artifact record of `path`, named relative to `root`."""
    return ExportArtifact(
        path=path.relative_to(root).as_posix(),
        sha256=sha256_file(path),
        size_bytes=path.stat().st_size,
    )


def load_snapshot_manifest(export_dir: Path) -> AnySnapshotManifest:
    """Read and validate `<export_dir>/snapshot_manifest.json`.

    Returns an `AudioSnapshotManifest` or `VlSnapshotManifest` chosen by the
    `modality` field. Raises `ExportManifestError` when the file is missing,
    unreadable, not JSON, or not a valid manifest.
    """
    path = export_dir / SNAPSHOT_MANIFEST_FILENAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ExportManifestError(
            f"missing {path}: not an HF snapshot export (run `snaparc export`)", path=str(path)
        ) from exc
    except OSError as exc:
        raise ExportManifestError(f"cannot read {path}: {exc}", path=str(path)) from exc
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportManifestError(f"cannot parse {path}: {exc}", path=str(path)) from exc
    try:
        return _MANIFEST_ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise ExportManifestError(
            f"{path} is not a valid snapshot manifest: {_summarize(exc)}", path=str(path)
        ) from exc


def verify_artifacts(
    export_dir: Path, manifest: SnapshotManifest, *, digests: Mapping[str, str] | None = None
) -> None:
    """Check every declared artifact is a regular file of the declared size and sha256.

    Paths are resolved and must stay inside `export_dir`; symlinks are refused.
    `digests` maps artifact paths to sha256 values the caller computed from
    the same files (the packer's hashing pass); others are hashed here.
    Raises `ExportManifestError` on the first problem.
    """
    root = export_dir.resolve()
    for entry in manifest.artifacts:
        on_disk = root.joinpath(*PurePosixPath(entry.path).parts)
        try:
            info = on_disk.lstat()
        except FileNotFoundError as exc:
            raise ExportManifestError(
                f"missing declared artifact {entry.path} in {export_dir}", path=str(on_disk)
            ) from exc
        if not stat.S_ISREG(info.st_mode) or not on_disk.resolve().is_relative_to(root):
            raise ExportManifestError(
                f"declared artifact {entry.path} is not a regular file inside {export_dir}",
                path=str(on_disk),
            )
        if info.st_size != entry.size_bytes:
            raise ExportManifestError(
                f"size mismatch for {entry.path}: manifest={entry.size_bytes} disk={info.st_size}",
                path=str(on_disk),
            )
        known = digests.get(entry.path) if digests is not None else None
        actual = known if known is not None else sha256_file(on_disk)
        if actual != entry.sha256:
            raise ExportManifestError(
                f"sha256 mismatch for {entry.path}: manifest={entry.sha256[:12]}… "
                f"disk={actual[:12]}…",
                path=str(on_disk),
            )


def _summarize(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(manifest)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
