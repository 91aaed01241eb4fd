"""Test-side name for the tiny model builders, which live in `snaparc.demo.tiny`
(`make demo` uses them too)."""

from snaparc.demo.tiny import *  # noqa: F403
from snaparc.demo.tiny import (  # noqa: F401
    AUDIO_SPECIAL_TOKENS,
    IMAGE_TOKEN,
    SEED,
    TinyCase,
    TinyModel,
    add_lora,
    build_case,
    build_tiny_audio,
    build_tiny_llava,
    forward_logits,
    save_adapter_to_store,
    train_bpe_tokenizer,
)
