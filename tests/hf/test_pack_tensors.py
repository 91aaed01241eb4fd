"""`snaparc pack` of a snapshot export looks inside its safetensors files.

- Every `*.safetensors` file must pass the strict profile: refused with exit
  7, the path and the rule named, nothing written.
- Its tensors must be adapter parameters (or modules the adapter config
  lists in `modules_to_save`): base weights are never shipped, unless
  `--allow-base-weights`. Checked with fake stores here and, at the end,
  with a real tiny model's full state dict and its merged model (`hf`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hf_fakes import FakeProcessor
from snaparc_testlib import lora_weights, safetensors_file

from snaparc.cli import main
from snaparc.hf.export import BASE_MODELS, Store, export_snapshot
from snaparc.hf.export.adapter_tensors import is_adapter_param

CURRENT = "adapter/versions/v0002"
SPEC = BASE_MODELS["qwen2-audio-7b-instruct"]


def export_with(store: Store, weights: bytes, config: dict[str, object] | None = None) -> Path:
    """Put `weights` (and `config`) in the store's current adapter; export it."""
    vdir = store.root / CURRENT
    (vdir / "adapter_model.safetensors").write_bytes(weights)
    if config is not None:
        (vdir / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    return export_snapshot(store, SPEC, processor=FakeProcessor()).export_dir


def pack(export_dir: Path, out: Path, *extra: str) -> int:
    return main(["pack", str(export_dir), "-o", str(out), "-q", *extra])


def u8(n: int) -> tuple[str, list[int], bytes]:
    return ("U8", [n], bytes(n))


# --- the strict profile at pack --------------------------------------------------


@pytest.mark.parametrize(
    ("weights", "rule"),
    [
        (lora_weights(b"w") + b"PK\x03\x04 trailing zip", "coverage"),
        (b"lora-weights", "header-length"),
        (safetensors_file({"base_model.model.x.lora_A.weight": ("F32", [3], bytes(8))}), "span"),
        ((9).to_bytes(8, "little") + b'{"a":1,"a' + bytes(8), "header-json"),
    ],
    ids=["polyglot", "not-safetensors", "span", "json"],
)
def test_pack_refuses_weights_outside_the_profile(
    fake_store: Store,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    weights: bytes,
    rule: str,
) -> None:
    export_dir = export_with(fake_store, weights)
    out = tmp_path / "a.dlmsnap"
    assert pack(export_dir, out) == 7
    err = capsys.readouterr().err
    assert "adapter/adapter_model.safetensors" in err and f"rule {rule}" in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]  # no temp file left
    # The base-weight flag does not lift the profile.
    assert pack(export_dir, out, "--allow-base-weights") == 7


def test_pack_checks_undeclared_safetensors_too(fake_store: Store, tmp_path: Path) -> None:
    export_dir = export_with(fake_store, lora_weights(b"w"))
    (export_dir / "adapter" / "extra.safetensors").write_bytes(b"junk")
    out = tmp_path / "a.dlmsnap"
    assert pack(export_dir, out, "--allow-undeclared") == 7
    assert not out.exists()


def test_plain_trees_are_not_bound_by_the_profile(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "model.safetensors").write_bytes(b"any bytes at all")
    assert pack(src, tmp_path / "a.dlmsnap") == 0


# --- base weights are never shipped ------------------------------------------------


def test_pack_refuses_base_weights_naming_them(
    fake_store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = safetensors_file(
        {
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": u8(4),
            "base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight": u8(4),
            "model.embed_tokens.weight": u8(4),
        }
    )
    export_dir = export_with(fake_store, weights)
    out = tmp_path / "a.dlmsnap"
    assert pack(export_dir, out) == 7
    err = capsys.readouterr().err
    assert "2 of 3 tensors" in err
    assert "q_proj.base_layer.weight" in err and "model.embed_tokens.weight" in err
    assert "--allow-base-weights" in err
    assert not out.exists()
    assert pack(export_dir, out, "--allow-base-weights") == 0


def test_undeclared_base_weights_need_both_flags(fake_store: Store, tmp_path: Path) -> None:
    export_dir = export_with(fake_store, lora_weights(b"w"))
    base = safetensors_file({"model.layers.0.mlp.up_proj.weight": u8(16)})
    (export_dir / "adapter" / "base_model.safetensors").write_bytes(base)
    out = tmp_path / "a.dlmsnap"
    assert pack(export_dir, out, "--allow-undeclared") == 7
    assert pack(export_dir, out, "--allow-base-weights") == 7
    assert pack(export_dir, out, "--allow-undeclared", "--allow-base-weights") == 0


def test_modules_to_save_from_the_adapter_config_are_adapter_tensors(
    fake_store: Store, tmp_path: Path
) -> None:
    weights = safetensors_file(
        {
            "base_model.model.model.layers.0.q_proj.lora_A.weight": u8(2),
            "base_model.model.score.weight": u8(2),
            "base_model.model.score.bias": u8(1),
        }
    )
    config = {"peft_type": "LORA", "modules_to_save": ["score"]}
    assert pack(export_with(fake_store, weights, config), tmp_path / "a.dlmsnap") == 0
    config = {"peft_type": "LORA", "modules_to_save": ["classifier"]}
    assert pack(export_with(fake_store, weights, config), tmp_path / "b.dlmsnap") == 7


@pytest.mark.parametrize(
    "name",
    [
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
        "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
        "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector",  # DoRA
        "base_model.model.model.embed_tokens.lora_embedding_A",
        "base_model.model.model.layers.0.self_attn.q_proj.lora_E",  # AdaLoRA
        "base_model.model.model.layers.0.mlp.down_proj.ia3_l",
        "base_model.model.model.layers.0.mlp.down_proj.hada_w1_a",  # LoHa
        "base_model.model.model.layers.0.mlp.down_proj.lokr_w1",  # LoKr
        "base_model.model.model.layers.0.mlp.down_proj.oft_r",
        "base_model.model.model.layers.0.mlp.down_proj.vera_lambda_b",
        "prompt_embeddings",
    ],
)
def test_peft_parameter_names_are_adapter_tensors(name: str) -> None:
    assert is_adapter_param(name)


@pytest.mark.parametrize(
    "name",
    [
        "model.layers.0.self_attn.q_proj.weight",
        "base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight",
        "base_model.model.lm_head.weight",
        "model.layers.0.self_attn.q_proj.bias",
        "glora_A.weight",  # a prefix inside a component is not the component's prefix
    ],
)
def test_base_model_names_are_not(name: str) -> None:
    assert not is_adapter_param(name)


def test_biases_count_only_when_the_config_trains_them() -> None:
    name = "base_model.model.model.layers.0.mlp.down_proj.bias"
    assert not is_adapter_param(name)
    assert is_adapter_param(name, train_bias=True)


# --- real models: a full state dict, a merged model -------------------------------


@pytest.mark.hf
def test_a_real_adapter_packs_and_its_base_weights_do_not(
    tiny_audio_case: Any, tmp_path: Path
) -> None:
    import copy

    from safetensors.torch import save_file

    case = tiny_audio_case
    store = case.new_store(tmp_path / "store")
    adapter = store.root / "adapter/versions/v0001/adapter_model.safetensors"
    export_dir = export_snapshot(store, SPEC, processor=FakeProcessor()).export_dir
    assert pack(export_dir, tmp_path / "ok.dlmsnap") == 0

    def contiguous(model: Any) -> dict[str, Any]:
        return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}

    cases = {
        "full": contiguous(case.peft_model),
        "merged": contiguous(copy.deepcopy(case.peft_model).merge_and_unload()),
    }
    for name, state in cases.items():
        save_file(state, str(adapter))
        export_dir = export_snapshot(store, SPEC, processor=FakeProcessor()).export_dir
        out = tmp_path / f"{name}.dlmsnap"
        assert pack(export_dir, out) == 7, name
        assert not out.exists()
        assert pack(export_dir, out, "--allow-base-weights") == 0, name
