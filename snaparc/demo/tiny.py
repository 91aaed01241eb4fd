"""Tiny, offline, deterministic HF models, processors and LoRA adapters.

Everything here builds in seconds on a CPU without network access:

- `build_tiny_audio()`: a 1-layer-per-tower Qwen2-Audio (hidden 32) with a BPE
  tokenizer trained on the spot (`<|AUDIO|>`, `<|audio_bos|>`, `<|audio_eos|>`
  are special tokens), `WhisperFeatureExtractor(feature_size=128)` and
  `Qwen2AudioProcessor`.
- `build_tiny_llava()`: a LLaVA with a 1-layer CLIP vision tower and a
  1-layer Llama, `CLIPImageProcessor` + `LlavaProcessor`, an `<image>` token.
- `add_lora()` wraps a base in a LoRA with non-zero weights
  (`init_lora_weights=False`); `save_adapter_to_store()` writes it as
  `adapter/versions/vNNNN/` (or a named adapter) with its `current.txt`.
- `build_case("audio" | "llava", root)` does all of it once: the base saved
  before the LoRA, the processor saved, a store template, a batch and the
  in-memory LoRA model's logits on it (`TinyCase`).

The tests and `make demo` use these builders, so their signatures are a contract.
torch, transformers, peft and tokenizers are imported inside the functions.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snaparc.hf.export import Store

SEED = 1234
AUDIO_SPECIAL_TOKENS = ("<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>")
IMAGE_TOKEN = "<image>"
_BASE_SPECIALS = ("<unk>", "<s>", "</s>", "<pad>")
_CORPUS = (
    "the quick brown fox jumps over the lazy dog",
    "transcribe the audio clip please",
    "what is in this picture and what sound does it make",
    "a cat sits on the mat while music plays",
    "snaparc packs adapter snapshot exports into archives",
)


@dataclass
class TinyModel:
    """A tiny base model, its processor, and a prompt that exercises both.

    `model` is the base (a transformers `PreTrainedModel`), `processor` the
    matching processor, `inputs` keyword arguments for `processor(**inputs)`,
    and `lora_targets` the module names a LoRA should wrap.
    """

    model: Any
    processor: Any
    inputs: dict[str, Any]
    lora_targets: list[str]


def train_bpe_tokenizer(special_tokens: tuple[str, ...], vocab_size: int = 120) -> Any:
    """Train a byte-level BPE tokenizer on a fixed corpus; return a fast tokenizer.

    Token ids are deterministic: the specials come first, in the order given
    after `<unk> <s> </s> <pad>`.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = [*_BASE_SPECIALS, *special_tokens]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(_CORPUS), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        additional_special_tokens=list(special_tokens),
    )
    return fast


def build_tiny_audio() -> TinyModel:
    """A tiny Qwen2-Audio base + `Qwen2AudioProcessor`, seeded, in eval mode."""
    import numpy as np
    import torch
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    tokenizer = train_bpe_tokenizer(AUDIO_SPECIAL_TOKENS)
    audio_token_id = tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    config = Qwen2AudioConfig(
        audio_config={
            "model_type": "qwen2_audio_encoder",
            "d_model": 32,
            "encoder_layers": 1,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 64,
            "num_mel_bins": 128,
            "max_source_positions": 1500,
        },
        text_config={
            "model_type": "qwen2",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": 2048,
        },
        audio_token_index=audio_token_id,
    )
    torch.manual_seed(SEED)
    model = Qwen2AudioForConditionalGeneration(config).eval()
    processor = Qwen2AudioProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=128),
        tokenizer=tokenizer,
    )
    rng = np.random.default_rng(SEED)
    clip = rng.standard_normal(16000).astype(np.float32) * 0.1
    inputs: dict[str, Any] = {
        "text": "<|audio_bos|><|AUDIO|><|audio_eos|>transcribe the audio clip",
        "audio": [clip],
        "sampling_rate": 16000,
        "return_tensors": "pt",
    }
    return TinyModel(model, processor, inputs, ["q_proj", "v_proj"])


def build_tiny_llava() -> TinyModel:
    """A tiny LLaVA (1-layer CLIP tower, 1-layer Llama) + `LlavaProcessor`."""
    import numpy as np
    import torch
    from PIL import Image
    from transformers import (
        CLIPImageProcessor,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tokenizer = train_bpe_tokenizer((IMAGE_TOKEN,))
    image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    image_size, patch_size = 32, 8
    config = LlavaConfig(
        vision_config={
            "model_type": "clip_vision_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": patch_size,
            "projection_dim": 32,
        },
        text_config={
            "model_type": "llama",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": 512,
        },
        image_token_index=image_token_id,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    torch.manual_seed(SEED)
    model = LlavaForConditionalGeneration(config).eval()
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    rng = np.random.default_rng(SEED)
    pixels = rng.integers(0, 256, size=(40, 48, 3), dtype=np.uint8)
    inputs: dict[str, Any] = {
        "text": f"{IMAGE_TOKEN} what is in this picture",
        "images": [Image.fromarray(pixels)],
        "return_tensors": "pt",
    }
    return TinyModel(model, processor, inputs, ["q_proj", "v_proj"])


def add_lora(model: Any, targets: list[str], *, seed: int = SEED) -> Any:
    """Wrap `model` in a LoRA with non-zero (random, seeded) A and B weights."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=targets, init_lora_weights=False)
    return get_peft_model(model, config).eval()


def save_adapter_to_store(
    peft_model: Any, store: Path, *, version: int = 1, name: str | None = None
) -> Path:
    """Save the adapter as a store version dir and point `current.txt` at it.

    Writes `adapter/versions/vNNNN/` (or `adapter/<name>/versions/vNNNN/`) and
    the matching `current.txt` holding the store-relative path. Returns the
    version dir.
    """
    adapter_root = store / "adapter" if name is None else store / "adapter" / name
    rel = adapter_root.relative_to(store) / "versions" / f"v{version:04d}"
    version_dir = store / rel
    version_dir.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(version_dir))
    (adapter_root / "current.txt").write_text(rel.as_posix() + "\n", encoding="utf-8")
    return version_dir


def forward_logits(model: Any, batch: Any) -> Any:
    """Run a no-grad forward pass and return the logits tensor."""
    import torch

    with torch.no_grad():
        return model(**batch).logits


@dataclass
class TinyCase:
    """A tiny base + LoRA, saved once per session.

    `base_dir`: the base saved before the LoRA was added; `store_template`: a
    store holding the adapter as `adapter/versions/v0001` (copy it, do not
    modify it); `peft_model`: the in-memory LoRA model; `batch`: processor
    output for `tiny.inputs`; `logits`: the in-memory model's logits on it.
    """

    tiny: Any
    peft_model: Any
    base_dir: Path
    processor_dir: Path
    store_template: Path
    batch: Any
    logits: Any

    def new_store(self, where: Path) -> Store:
        shutil.copytree(self.store_template, where)
        return Store(where)


def build_case(kind: str, root: Path) -> TinyCase:
    """Build the tiny `kind` ("audio" or "llava") model, its LoRA and saved copies under `root`."""
    tiny = build_tiny_audio() if kind == "audio" else build_tiny_llava()
    base_dir = root / "base"
    tiny.model.save_pretrained(str(base_dir))
    processor_dir = root / "processor"
    tiny.processor.save_pretrained(str(processor_dir))
    peft_model = add_lora(tiny.model, tiny.lora_targets)
    store_template = root / "store"
    save_adapter_to_store(peft_model, store_template)
    batch = tiny.processor(**tiny.inputs)
    logits = forward_logits(peft_model, batch)
    return TinyCase(tiny, peft_model, base_dir, processor_dir, store_template, batch, logits)
