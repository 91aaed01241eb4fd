"""Exports of real tiny models load back: bit-equal logits and identical processor output.

Needs torch, transformers and peft (the [hf] extra); no network.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tiny_models import TinyCase

from snaparc.cli import main
from snaparc.hf.export import BaseModelSpec, export_snapshot, load_base_spec
from snaparc.hf.manifest import load_snapshot_manifest, verify_artifacts

pytestmark = pytest.mark.hf

TINY_REVISION = "1234567890abcdef1234567890abcdef12345678"


def tiny_spec(key: str, hf_id: str) -> BaseModelSpec:
    """A registry spec re-pointed at a tiny repo id (the plan is kept)."""
    return BaseModelSpec.model_validate(
        {**load_base_spec(key).model_dump(), "hf_id": hf_id, "revision": TINY_REVISION}
    )


def assert_same_batch(a: Any, b: Any) -> None:
    import torch

    assert sorted(a.keys()) == sorted(b.keys())
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_audio_export_reloads_bit_equal(tiny_audio_case: TinyCase, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from tiny_models import forward_logits
    from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

    case = tiny_audio_case
    store = case.new_store(tmp_path / "store")
    spec = tiny_spec("qwen2-audio-7b-instruct", "tiny/qwen2-audio")
    result = export_snapshot(store, spec, processor=case.tiny.processor)
    out = store.root / "exports/hf-audio-snapshot"
    assert result.export_dir == out
    verify_artifacts(out, load_snapshot_manifest(out))
    assert (out / "adapter/adapter_model.safetensors").is_file()

    base = Qwen2AudioForConditionalGeneration.from_pretrained(str(case.base_dir)).eval()
    plain = forward_logits(base, case.batch)
    model = PeftModel.from_pretrained(base, str(out / "adapter")).eval()
    logits = forward_logits(model, case.batch)
    assert torch.equal(logits, case.logits)
    assert not torch.equal(plain, case.logits), "the LoRA must change the output"

    processor = AutoProcessor.from_pretrained(str(out / "processor"))
    assert type(processor).__name__ == "Qwen2AudioProcessor"
    assert_same_batch(processor(**case.tiny.inputs), case.batch)


def test_audio_export_from_processor_dir(tiny_audio_case: TinyCase, tmp_path: Path) -> None:
    from transformers import AutoProcessor

    case = tiny_audio_case
    store = case.new_store(tmp_path / "store")
    spec = tiny_spec("qwen2-audio-7b-instruct", "tiny/qwen2-audio")
    result = export_snapshot(store, spec, processor_dir=case.processor_dir)
    assert result.processor_dir is not None
    processor = AutoProcessor.from_pretrained(str(result.processor_dir))
    assert_same_batch(processor(**case.tiny.inputs), case.batch)


def test_bad_processor_dir_is_an_export_error(tiny_audio_case: TinyCase, tmp_path: Path) -> None:
    from snaparc.errors import ExportError

    store = tiny_audio_case.new_store(tmp_path / "store")
    (tmp_path / "empty").mkdir()
    spec = tiny_spec("qwen2-audio-7b-instruct", "tiny/qwen2-audio")
    with pytest.raises(ExportError, match="cannot load a processor"):
        export_snapshot(store, spec, processor_dir=tmp_path / "empty")
    assert not (store.root / "exports/hf-audio-snapshot").exists()


def test_vl_export_reloads_bit_equal(tiny_llava_case: TinyCase, tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
    from tiny_models import forward_logits
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    case = tiny_llava_case
    store = case.new_store(tmp_path / "store")
    spec = tiny_spec("llava-1.5-7b", "tiny/llava")
    result = export_snapshot(store, spec, processor=case.tiny.processor)
    out = store.root / "exports/hf-snapshot"
    assert result.export_dir == out
    verify_artifacts(out, load_snapshot_manifest(out))

    # The tiny LLaVA base does not reload bit-exactly (FACTS.md), so compare the
    # exported adapter with the in-memory one, both on the same reloaded base.
    reloaded = LlavaForConditionalGeneration.from_pretrained(str(case.base_dir)).eval()
    exported = PeftModel.from_pretrained(copy.deepcopy(reloaded), str(out / "adapter")).eval()
    config = case.peft_model.peft_config["default"]
    in_memory = get_peft_model(copy.deepcopy(reloaded), LoraConfig(**config.to_dict())).eval()
    set_peft_model_state_dict(in_memory, get_peft_model_state_dict(case.peft_model))
    got = forward_logits(exported, case.batch)
    assert torch.equal(got, forward_logits(in_memory, case.batch))
    assert not torch.equal(got, forward_logits(reloaded, case.batch))

    processor = AutoProcessor.from_pretrained(str(out / "processor"))
    assert type(processor).__name__ == "LlavaProcessor"
    assert_same_batch(processor(**case.tiny.inputs), case.batch)


def test_cli_export_with_processor_dir(
    tiny_llava_case: TinyCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tiny_llava_case.new_store(tmp_path / "store")
    argv = ["export", "--store", str(store.root), "--base", "llava-1.5-7b"]
    code = main([*argv, "--processor", str(tiny_llava_case.processor_dir)])
    assert code == 0
    out = store.root / "exports/hf-snapshot"
    assert str(out) in capsys.readouterr().out
    assert (out / "processor/tokenizer.json").is_file()


def _fake_hub_cache(cache: Path, repo_id: str, revision: str, files_from: Path) -> None:
    """A hub cache holding `files_from` as `repo_id` at commit `revision`."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(files_from, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs/main").write_text(revision)


@pytest.mark.slow
def test_readme_instructions_run_as_written(tiny_audio_case: TinyCase, tmp_path: Path) -> None:
    """Run the README's two code blocks offline: the first from the export dir, the
    second (hub cache) after `materialize --hf-cache` put the snapshot there."""
    import torch

    case = tiny_audio_case
    store = case.new_store(tmp_path / "store")
    spec = tiny_spec("qwen2-audio-7b-instruct", "tiny/qwen2-audio")
    result = export_snapshot(store, spec, processor=case.tiny.processor)
    readme = result.readme_path.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert len(blocks) == 2
    _fake_hub_cache(tmp_path / "hub", spec.hf_id, spec.revision, case.base_dir)
    torch.save(dict(case.batch), tmp_path / "batch.pt")
    check = (
        "\nimport torch\n"
        f"batch = torch.load({str(tmp_path / 'batch.pt')!r})\n"
        "model.eval()\n"
        "with torch.no_grad():\n"
        "    logits = model(**batch).logits\n"
        f"torch.save(logits, {str(tmp_path / 'logits.pt')!r})\n"
        "assert type(processor).__name__ == 'Qwen2AudioProcessor'\n"
    )
    env = {
        **os.environ,
        "HF_HUB_CACHE": str(tmp_path / "hub"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }

    def run_block(code: str, cwd: Path) -> None:
        (tmp_path / "logits.pt").unlink(missing_ok=True)
        proc = subprocess.run(
            [sys.executable, "-c", code + check],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert torch.equal(torch.load(tmp_path / "logits.pt"), case.logits)

    run_block(blocks[0], result.export_dir)

    # The hub-cache block, run elsewhere with only the repo id filled in.
    archive = tmp_path / "readme.dlmsnap"
    assert main(["pack", str(result.export_dir), "-o", str(archive), "-q"]) == 0
    materialize = ["materialize", str(archive), "--hf-cache", str(tmp_path / "hub")]
    assert main([*materialize, "--repo-id", "tiny-org/readme", "-q"]) == 0
    cached = blocks[1].replace('REPO_ID = "ORG/NAME"', 'REPO_ID = "tiny-org/readme"')
    assert cached != blocks[1]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_block(cached, elsewhere)
