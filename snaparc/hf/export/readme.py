"""The README.md of an HF snapshot export: load instructions that work as written.

The first Python block loads the pinned base by `hf_id` + `revision`, the
adapter from `./adapter` and the processor from `./processor` (or from the
base repo when no processor was exported); it is meant to be run from the
export dir. The second loads the same snapshot after `snaparc materialize
--hf-cache --repo-id ORG/NAME` put it into the hub cache (adapter and
processor files at the repo root), offline. Tests execute both.
"""

from __future__ import annotations

from snaparc.hf.export.basemodels import BaseModelSpec
from snaparc.hf.manifest import AnySnapshotManifest, AudioSnapshotManifest


def render_readme(
    spec: BaseModelSpec, manifest: AnySnapshotManifest, *, has_processor: bool
) -> str:
    """The README text for an export of `spec` described by `manifest`."""
    version = f"v{manifest.adapter_version:04d}"
    if manifest.adapter_name:
        version += f" ({manifest.adapter_name})"
    base_processor = (
        f'processor = AutoProcessor.from_pretrained("{spec.hf_id}", revision="{spec.revision}")'
    )
    if has_processor:
        processor_line = 'processor = AutoProcessor.from_pretrained("./processor")'
        cached_processor_line = (
            "processor = AutoProcessor.from_pretrained("
            "snapshot_download(REPO_ID, local_files_only=True))"
        )
    else:
        processor_line = cached_processor_line = base_processor
    load_base = [
        f"base = {spec.architecture}.from_pretrained(",
        f'    "{spec.hf_id}",',
        f'    revision="{spec.revision}",',
        ")",
    ]
    lines = [
        "# HF snapshot export",
        "",
        f"Base model: **{spec.hf_id}** at revision `{spec.revision}`",
        f"({spec.architecture}, {spec.modality}). The base weights are not included.",
        f"Adapter version: {version}",
        "",
        "## Load this snapshot",
        "",
        "Run from this directory (the paths are relative):",
        "",
        "```python",
        "from peft import PeftModel",
        f"from transformers import AutoProcessor, {spec.architecture}",
        "",
        *load_base,
        'model = PeftModel.from_pretrained(base, "./adapter")',
        processor_line,
        "```",
        "",
        "## Load it from the Hugging Face cache",
        "",
        "`snaparc materialize SNAPSHOT.dlmsnap --hf-cache --repo-id ORG/NAME` puts this",
        "snapshot into the hub cache as repo `ORG/NAME`, with the adapter and processor",
        "files at the repo root. It then loads from anywhere, also offline",
        "(`HF_HUB_OFFLINE=1`):",
        "",
        "```python",
        "from huggingface_hub import snapshot_download",
        "from peft import PeftModel",
        f"from transformers import AutoProcessor, {spec.architecture}",
        "",
        'REPO_ID = "ORG/NAME"  # the --repo-id given to snaparc materialize',
        "",
        *load_base,
        "model = PeftModel.from_pretrained(base, REPO_ID)",
        cached_processor_line,
        "```",
        "",
        *_input_section(manifest),
        "## Integrity",
        "",
        "`snapshot_manifest.json` lists every file under `adapter/` and `processor/`",
        "with its sha256 and size.",
        "",
    ]
    return "\n".join(lines)


def _input_section(manifest: AnySnapshotManifest) -> list[str]:
    if isinstance(manifest, AudioSnapshotManifest):
        return [
            "## Audio input",
            "",
            f"- Sample rate: {manifest.sample_rate} Hz",
            f"- Max length: {manifest.max_length_seconds} s (longer clips are truncated)",
            f"- Placeholder token: `{manifest.audio_token}` "
            f"(a full clip expands to {manifest.num_audio_tokens} tokens)",
            "",
        ]
    return [
        "## Image input",
        "",
        f"- Target size: {manifest.target_size} px ({manifest.resize_policy} resize)",
        f"- Placeholder token: `{manifest.image_token}` "
        f"(an image expands to {manifest.num_image_tokens} tokens)",
        "",
    ]
