"""Generate a realistic HF adapter snapshot export for benchmarking.

The layout follows the audio HF-snapshot export (see `shared/seed`):

    adapter/adapter_model.safetensors   bf16 LoRA weights, N GiB
    adapter/adapter_config.json         PEFT LoraConfig
    adapter/{tokenizer.json, tokenizer_config.json, special_tokens_map.json}
    processor/<the same three tokenizer files, byte-identical>
    processor/preprocessor_config.json  WhisperFeatureExtractor config
    snapshot_manifest.json              artifacts with path, sha256, size_bytes
    README.md                           load instructions

The weights have the entropy of trained LoRA weights: normal values (std 0.02
for `lora_A`, 0.01 for `lora_B`) rounded to bf16 (or, with `--dtype`, to fp16
or kept as fp32). The safetensors file is
written by hand, streaming, in fixed-size chunks, so memory stays bounded
whatever the size. The output is a pure function of `(size, seed)`.

Usage: python -m benchmarks.gen_snapshot OUT_DIR [--size GIB] [--seed N] [--dtype BF16|F16|F32]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

GIB = 1024**3
MIB = 1024**2
CHUNK_ELEMENTS = 4 * 1024 * 1024  # 16 MiB of float32 per generated chunk
MANIFEST_NAME = "snapshot_manifest.json"
README_NAME = "README.md"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
CREATED_AT = "2026-01-01T00:00:00"
BASE_HF_ID = "Qwen/Qwen2-Audio-7B-Instruct"
VOCAB_SIZE = 100_000
TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
DTYPE_SIZES = {"BF16": 2, "F16": 2, "F32": 4}


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of the safetensors file: name, shape and the std of its values."""

    name: str
    shape: tuple[int, ...]
    std: float
    dtype: str = "BF16"

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.numel * DTYPE_SIZES[self.dtype]


@dataclass(frozen=True)
class ModelDims:
    hidden: int
    intermediate: int
    kv: int
    rank: int


def dims_for_size(size_bytes: int) -> ModelDims:
    """Model dimensions that make a realistic tensor count for the requested size."""
    if size_bytes >= 128 * MIB:
        return ModelDims(hidden=4096, intermediate=11008, kv=4096, rank=64)  # 7B-class
    if size_bytes >= 8 * MIB:
        return ModelDims(hidden=1024, intermediate=2816, kv=1024, rank=16)
    return ModelDims(hidden=256, intermediate=704, kv=256, rank=8)


def _module_shapes(dims: ModelDims) -> list[tuple[str, str, int, int]]:
    """(block, module, in_features, out_features) for one decoder layer."""
    h, i, kv = dims.hidden, dims.intermediate, dims.kv
    return [
        ("self_attn", "q_proj", h, h),
        ("self_attn", "k_proj", h, kv),
        ("self_attn", "v_proj", h, kv),
        ("self_attn", "o_proj", h, h),
        ("mlp", "gate_proj", h, i),
        ("mlp", "up_proj", h, i),
        ("mlp", "down_proj", i, h),
    ]


def plan_tensors(size_bytes: int, dtype: str = "BF16") -> list[TensorSpec]:
    """LoRA tensors, layer by layer, until `size_bytes` of weights are reached.

    The last tensor is a `lora_B` with as many rows as fit, so the total is
    within one row of the requested size.
    """
    dims = dims_for_size(size_bytes)
    r = dims.rank
    tensors: list[TensorSpec] = []
    total = 0
    layer = 0
    while total < size_bytes:
        for block, module, fan_in, fan_out in _module_shapes(dims):
            prefix = f"base_model.model.model.layers.{layer}.{block}.{module}"
            for kind, shape, std in (
                ("lora_A", (r, fan_in), 0.02),
                ("lora_B", (fan_out, r), 0.01),
            ):
                left = size_bytes - total
                if left <= 0:
                    return tensors
                spec = TensorSpec(f"{prefix}.{kind}.weight", shape, std, dtype)
                if spec.nbytes > left:
                    rows = max(1, left // (shape[1] * DTYPE_SIZES[dtype]))
                    spec = TensorSpec(spec.name, (rows, shape[1]), std, dtype)
                tensors.append(spec)
                total += spec.nbytes
        layer += 1
    return tensors


def float32_to_bf16(values: np.ndarray) -> np.ndarray:
    """bf16 bit patterns (uint16) of float32 values, rounding to nearest even."""
    bits = values.astype(np.float32, copy=False).view(np.uint32)
    rounding = ((bits >> 16) & 1) + np.uint32(0x7FFF)
    return ((bits + rounding) >> 16).astype("<u2")


def safetensors_header(tensors: list[TensorSpec]) -> bytes:
    """The 8-byte length prefix plus the JSON header, padded to 8 bytes."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for t in tensors:
        header[t.name] = {
            "dtype": t.dtype,
            "shape": list(t.shape),
            "data_offsets": [offset, offset + t.nbytes],
        }
        offset += t.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw


def _tensor_chunks(rng: np.random.Generator, spec: TensorSpec) -> Iterator[bytes]:
    left = spec.numel
    while left:
        n = min(left, CHUNK_ELEMENTS)
        values = rng.standard_normal(n, dtype=np.float32)
        values *= np.float32(spec.std)
        if spec.dtype == "BF16":
            yield float32_to_bf16(values).tobytes()
        elif spec.dtype == "F16":
            yield values.astype("<f2").tobytes()
        else:
            yield values.astype("<f4").tobytes()
        left -= n


class _HashingWriter:
    """Writes to a file and keeps its sha256 and size."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._fh.write(data)
        self.sha256.update(data)
        self.size += len(data)


def write_safetensors(
    path: Path, size_bytes: int, seed: int, dtype: str = "BF16"
) -> tuple[str, int]:
    """Stream the weights file; returns (sha256 hex, size in bytes)."""
    tensors = plan_tensors(size_bytes, dtype)
    rng = np.random.default_rng(seed)
    with path.open("wb") as fh:
        out = _HashingWriter(fh)
        out.write(safetensors_header(tensors))
        for spec in tensors:
            for chunk in _tensor_chunks(rng, spec):
                out.write(chunk)
    return out.sha256.hexdigest(), out.size


# --- tokenizer ---------------------------------------------------------------

_CONSONANTS = "bcdfghjklmnprstvwz"
_VOWELS = "aeiou"
_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>")


def _byte_level_alphabet() -> list[str]:
    """GPT-2's byte-to-unicode table, as HF ByteLevel tokenizers use."""
    keep = list(range(ord("!"), ord("~") + 1))
    keep += list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = list(keep)
    extra = 0
    for b in range(256):
        if b not in keep:
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


def tokenizer_json(seed: int, vocab_size: int = VOCAB_SIZE) -> str:
    """A BPE tokenizer.json shaped like Qwen2's (vocab + merges, ~7 MB)."""
    rnd = random.Random(seed)
    vocab: dict[str, int] = {}
    for ch in _byte_level_alphabet():
        vocab[ch] = len(vocab)
    merges: list[list[str]] = []
    while len(vocab) < vocab_size:
        syllables = rnd.randint(1, 4)
        word = "".join(rnd.choice(_CONSONANTS) + rnd.choice(_VOWELS) for _ in range(syllables))
        if rnd.random() < 0.2:
            word = word[: rnd.randint(1, len(word))]
        if rnd.random() < 0.6:
            word = "Ġ" + word
        if rnd.random() < 0.1:
            word = word.capitalize()
        if len(word) < 2 or word in vocab:
            continue
        cut = rnd.randint(1, len(word) - 1)
        merges.append([word[:cut], word[cut:]])
        vocab[word] = len(vocab)
    added = [
        {
            "id": vocab_size + i,
            "content": tok,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for i, tok in enumerate(_SPECIAL_TOKENS)
    ]
    doc = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {
                    "type": "Split",
                    "pattern": {
                        "Regex": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                        r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
                    },
                    "behavior": "Isolated",
                    "invert": False,
                },
                {
                    "type": "ByteLevel",
                    "add_prefix_space": False,
                    "trim_offsets": False,
                    "use_regex": False,
                },
            ],
        },
        "post_processor": {
            "type": "ByteLevel",
            "add_prefix_space": False,
            "trim_offsets": False,
            "use_regex": False,
        },
        "decoder": {
            "type": "ByteLevel",
            "add_prefix_space": False,
            "trim_offsets": False,
            "use_regex": False,
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "",
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": merges,
        },
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def tokenizer_config_json(vocab_size: int = VOCAB_SIZE) -> str:
    decoder = {
        str(vocab_size + i): {
            "content": tok,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for i, tok in enumerate(_SPECIAL_TOKENS)
    }
    doc = {
        "add_prefix_space": False,
        "added_tokens_decoder": decoder,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>", "<|AUDIO|>"],
        "bos_token": None,
        "chat_template": (
            "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
            "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
            "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
        ),
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 32768,
        "pad_token": "<|endoftext|>",
        "processor_class": "Qwen2AudioProcessor",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }
    return json.dumps(doc, indent=2) + "\n"


def special_tokens_map_json() -> str:
    doc = {
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>", "<|AUDIO|>"],
        "eos_token": {
            "content": "<|im_end|>",
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
        },
        "pad_token": {
            "content": "<|endoftext|>",
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
        },
    }
    return json.dumps(doc, indent=2) + "\n"


def adapter_config_json(rank: int) -> str:
    doc = {
        "alpha_pattern": {},
        "auto_mapping": None,
        "base_model_name_or_path": BASE_HF_ID,
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "layers_pattern": None,
        "layers_to_transform": None,
        "lora_alpha": rank * 2,
        "lora_dropout": 0.05,
        "modules_to_save": None,
        "peft_type": "LORA",
        "r": rank,
        "rank_pattern": {},
        "revision": None,
        "target_modules": sorted(TARGET_MODULES),
        "task_type": "CAUSAL_LM",
        "use_dora": False,
        "use_rslora": False,
    }
    return json.dumps(doc, indent=2) + "\n"


def preprocessor_config_json() -> str:
    doc = {
        "chunk_length": 30,
        "feature_extractor_type": "WhisperFeatureExtractor",
        "feature_size": 128,
        "hop_length": 160,
        "n_fft": 400,
        "n_samples": 480000,
        "nb_max_frames": 3000,
        "padding_side": "right",
        "padding_value": 0.0,
        "processor_class": "Qwen2AudioProcessor",
        "return_attention_mask": True,
        "sampling_rate": 16000,
    }
    return json.dumps(doc, indent=2) + "\n"


def readme_md(rank: int) -> str:
    return (
        "# HF-audio-snapshot export\n\n"
        f"Target: **qwen2-audio-7b-instruct** ({BASE_HF_ID} @ 0123456789ab…)\n"
        f"Adapter version: v0001 (LoRA r={rank})\n\n"
        "## Load this snapshot\n\n"
        "```python\n"
        "from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration\n"
        "from peft import PeftModel\n\n"
        "base = Qwen2AudioForConditionalGeneration.from_pretrained(\n"
        f'    "{BASE_HF_ID}", revision="0123456789abcdef0123456789abcdef01234567",\n'
        ")\n"
        'model = PeftModel.from_pretrained(base, "./adapter")\n'
        'processor = AutoProcessor.from_pretrained("./processor")\n'
        "```\n\n"
        "## Audio input shape\n\n"
        "- Sample rate: 16000 Hz (required; mismatches refused)\n"
        "- Max length: 30.0 s (longer clips truncated)\n"
        "- Placeholder token: `<|AUDIO|>` (expands to 750 tokens per clip)\n"
    )


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(4 * MIB):
            h.update(block)
    return h.hexdigest()


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))


def generate_snapshot(
    out_dir: Path,
    size_gib: float = 1.0,
    seed: int = 0,
    *,
    rationale: bool = True,
    dtype: str = "BF16",
) -> Path:
    """Write the snapshot export under `out_dir` (created; must not hold files).

    `rationale=False` leaves out the seed manifest's `rationale` field, for
    readers that do not accept it. `dtype` (BF16, F16, F32) is the weights'.

    Returns the path of `snapshot_manifest.json`.
    """
    size_bytes = int(size_gib * GIB)
    if size_bytes <= 0:
        raise ValueError(f"size must be positive, got {size_gib} GiB")
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty")
    dims = dims_for_size(size_bytes)
    adapter = out_dir / "adapter"
    processor = out_dir / "processor"
    adapter.mkdir()
    processor.mkdir()

    weights_sha, weights_size = write_safetensors(
        adapter / "adapter_model.safetensors", size_bytes, seed, dtype
    )
    _write_text(adapter / "adapter_config.json", adapter_config_json(dims.rank))
    tokenizer_texts = {
        "tokenizer.json": tokenizer_json(seed),
        "tokenizer_config.json": tokenizer_config_json(),
        "special_tokens_map.json": special_tokens_map_json(),
    }
    for name, text in tokenizer_texts.items():
        _write_text(adapter / name, text)
        _write_text(processor / name, text)
    _write_text(processor / "preprocessor_config.json", preprocessor_config_json())

    artifacts = []
    for path in sorted(p for p in out_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(out_dir).as_posix()
        if rel == "adapter/adapter_model.safetensors":
            sha, size = weights_sha, weights_size
        else:
            sha, size = _sha256_file(path), path.stat().st_size
        artifacts.append({"path": rel, "sha256": sha, "size_bytes": size})
    manifest = {
        "export_target": "hf_snapshot",
        "created_at": CREATED_AT,
        "created_by": "dlm-0.9.0",
        "base_model_hf_id": BASE_HF_ID,
        "base_model_revision": "0123456789abcdef0123456789abcdef01234567",
        "base_model_architecture": "Qwen2AudioForConditionalGeneration",
        "modality": "audio-language",
        "audio_token": "<|AUDIO|>",
        "num_audio_tokens": 750,
        "sample_rate": 16000,
        "max_length_seconds": 30.0,
        "adapter_version": 1,
        "adapter_name": None,
        "rationale": (
            "Audio-language architectures are not on the llama.cpp roadmap; this build "
            "emits an HF-snapshot fallback so users can share trained adapters without "
            "waiting for upstream GGUF support."
        ),
        "artifacts": artifacts,
    }
    if not rationale:
        del manifest["rationale"]
    manifest_path = out_dir / MANIFEST_NAME
    _write_text(manifest_path, json.dumps(manifest, sort_keys=True, indent=2) + "\n")
    _write_text(out_dir / README_NAME, readme_md(dims.rank))
    return manifest_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--size", type=float, default=1.0, help="weights size in GiB (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=sorted(DTYPE_SIZES), default="BF16")
    parser.add_argument(
        "--no-rationale", action="store_true", help="omit the manifest's `rationale` field"
    )
    args = parser.parse_args(argv)
    generate_snapshot(
        args.out_dir, args.size, args.seed, rationale=not args.no_rationale, dtype=args.dtype
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
