"""Base weights are never shipped: the tensors of a snapshot export must be an adapter's.

An HF snapshot export pins its base model by `hf_id` + `revision`; its
safetensors files hold the adapter only. `refuse_base_weights` judges each
file's tensor names (from the header the packer already read while hashing):
a tensor is an adapter's when

- one of its dotted name components is a PEFT adapter parameter: it starts
  with a PEFT tuner's parameter prefix (`lora_` for LoRA, DoRA and AdaLoRA,
  `ia3_`, `hada_` (LoHa), `lokr_`, `oft_`, `boft_`, `vera_`, ...) or is one
  of the prompt-learning parameters (`prompt_embeddings`, ...); or
- it lies under a module the adapter's `adapter_config.json` (beside the
  file) lists in `modules_to_save` (PEFT saves those modules whole); or
- it is a `bias` and the config trains biases (`"bias": "all"` or
  `"lora_only"`).

Anything else (`model.layers.0.mlp.up_proj.weight`, a `base_layer.weight`,
a merged model's plain weights) is a base model's tensor: the pack is
refused (exit 7) naming the file and the first offending tensors, unless
the caller allows base weights explicitly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from snaparc.errors import SnaparcError, SourceError
from snaparc.sidefiles import read_regular_file

ADAPTER_CONFIG = "adapter_config.json"
MAX_CONFIG_BYTES = 16 * 1024 * 1024
SHOWN = 5

# Prefixes of the parameters PEFT's tuners add (`BaseTuner.prefix` and friends).
ADAPTER_PARAM_PREFIXES = (
    "lora_",
    "ia3_",
    "hada_",
    "lokr_",
    "oft_",
    "boft_",
    "vera_",
    "fourierft_",
    "vblora_",
    "bone_",
    "miss_",
    "hra_",
    "shira_",
    "c3a_",
    "randlora_",
    "road_",
    "waveft_",
    "adaption_",
    "trainable_tokens_",
)
ADAPTER_PARAM_NAMES = frozenset({"prompt_embeddings", "prefix_task_cols", "prefix_task_rows"})
TRAINED_BIAS = frozenset({"all", "lora_only"})


def is_adapter_param(
    name: str, modules_to_save: Sequence[str] = (), train_bias: bool = False
) -> bool:
    """Whether a saved tensor name is an adapter's (module docstring)."""
    parts = name.split(".")
    if any(p.startswith(ADAPTER_PARAM_PREFIXES) or p in ADAPTER_PARAM_NAMES for p in parts):
        return True
    if train_bias and parts[-1] == "bias":
        return True
    dotted = f".{name}."
    return any(f".{m}." in dotted for m in modules_to_save if m)


def _config(root: Path, rel: str) -> tuple[list[str], bool]:
    """`modules_to_save` and whether biases train, from the config beside `rel`."""
    path = root.joinpath(*PurePosixPath(rel).parent.parts, ADAPTER_CONFIG)
    if not path.exists():
        return [], False
    try:
        data = json.loads(read_regular_file(path, limit=MAX_CONFIG_BYTES, what="adapter config"))
    except (SnaparcError, ValueError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read {path}: {exc}", path=str(path)) from None
    if not isinstance(data, dict):
        raise SourceError(f"{path} is not a JSON object", path=str(path))
    modules = data.get("modules_to_save") or []
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        raise SourceError(f"{path}: modules_to_save must be a list of names", path=str(path))
    return modules, data.get("bias") in TRAINED_BIAS


def refuse_base_weights(root: Path, tensors: Mapping[str, Sequence[str]]) -> None:
    """Refuse (exit 7) a snapshot export whose safetensors hold non-adapter tensors.

    `tensors` maps each safetensors file (tree path) to its tensor names.
    """
    for rel, names in tensors.items():
        modules, train_bias = _config(root, rel)
        bad = [n for n in names if not is_adapter_param(n, modules, train_bias)]
        if not bad:
            continue
        shown = ", ".join(bad[:SHOWN]) + (" …" if len(bad) > SHOWN else "")
        raise SourceError(
            f"{rel} holds {len(bad)} of {len(names)} tensors that are not adapter parameters "
            f"({shown}): base model weights are never shipped in a snapshot export (the base "
            "is pinned by hf_id and revision). Save only the adapter (PEFT save_pretrained), "
            "list whole modules in modules_to_save, or pass --allow-base-weights.",
            path=str(root / rel),
        )
