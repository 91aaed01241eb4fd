"""Real tiny models through store -> export -> pack -> materialize -> load, offline.

The directory form is loaded in this process. The hub-cache form is loaded in a
subprocess with `HF_HUB_CACHE` and `HF_HUB_OFFLINE=1` set before
huggingface_hub is imported (it reads them once, at import), exactly as a user
would: `PeftModel.from_pretrained(base, "ORG/NAME")` and
`AutoProcessor.from_pretrained(snapshot_download("ORG/NAME", local_files_only=True))`.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from tiny_models import TinyCase, add_lora, forward_logits, save_adapter_to_store  # noqa: E402

from snaparc import api  # noqa: E402
from snaparc.api import pack as pack_directory  # noqa: E402
from snaparc.cli import main  # noqa: E402
from snaparc.hf.export import BaseModelSpec, export_snapshot, load_base_spec  # noqa: E402
from snaparc.hf.materialize import CacheResult  # noqa: E402

pytestmark = pytest.mark.hf

TINY_REVISION = "1234567890abcdef1234567890abcdef12345678"
AUDIO_REPO = "tiny-org/qwen2-audio-lora"
VL_REPO = "tiny-org/llava-lora"

_LOADER = r"""
import copy, json, pickle, sys
import torch
import transformers
from huggingface_hub import snapshot_download
from peft import PeftModel
from transformers import AutoProcessor

args = json.loads(sys.argv[1])
batch = torch.load(args["batch"])
with open(args["inputs"], "rb") as fh:
    inputs = pickle.load(fh)
base = getattr(transformers, args["arch"]).from_pretrained(args["base_dir"]).eval()

def logits(model):
    with torch.no_grad():
        return model(**batch).logits

out = {"plain": logits(base)}
for rev in args["revisions"]:
    kw = {} if rev is None else {"revision": rev}
    model = PeftModel.from_pretrained(copy.deepcopy(base), args["repo_id"], **kw).eval()
    out[f"logits:{rev}"] = logits(model)
    path = snapshot_download(args["repo_id"], local_files_only=True, **kw)
    processor = AutoProcessor.from_pretrained(path)
    out[f"processor:{rev}"] = type(processor).__name__
    out[f"batch:{rev}"] = dict(processor(**inputs))
for i, adapter in enumerate(args["references"]):
    out[f"reference:{i}"] = logits(PeftModel.from_pretrained(copy.deepcopy(base), adapter).eval())
torch.save(out, args["out"])
"""


def tiny_spec(key: str, hf_id: str) -> BaseModelSpec:
    return BaseModelSpec.model_validate(
        {**load_base_spec(key).model_dump(), "hf_id": hf_id, "revision": TINY_REVISION}
    )


def pack_export(case: TinyCase, store_root: Path, spec: BaseModelSpec, out: Path) -> Path:
    """Export the store's current adapter with the case's processor and pack it."""
    from snaparc.hf.export import Store

    result = export_snapshot(Store(store_root), spec, processor=case.tiny.processor)
    pack_directory(result.export_dir, out)
    return out


def pretrained(cls: Any, path: Path) -> Any:
    """`cls.from_pretrained(path)`, in eval mode when it is a model (untyped libraries)."""
    loaded = cls.from_pretrained(str(path))
    return loaded.eval() if hasattr(loaded, "eval") else loaded


def assert_same_batch(a: Any, b: Any) -> None:
    import torch

    assert sorted(a.keys()) == sorted(b.keys())
    for key in a:
        assert torch.equal(a[key], b[key]), key


def load_from_cache(
    tmp_path: Path,
    case: TinyCase,
    *,
    arch: str,
    cache: Path,
    repo_id: str,
    revisions: list[str | None],
    references: tuple[Path, ...] = (),
) -> dict[str, Any]:
    """Run `_LOADER` offline against `cache`; return what it saved."""
    import torch

    work = tmp_path / "loader"
    work.mkdir(exist_ok=True)
    torch.save(dict(case.batch), work / "batch.pt")
    with open(work / "inputs.pkl", "wb") as fh:
        pickle.dump(case.tiny.inputs, fh)
    args = {
        "arch": arch,
        "base_dir": str(case.base_dir),
        "repo_id": repo_id,
        "revisions": revisions,
        "references": [str(r) for r in references],
        "batch": str(work / "batch.pt"),
        "inputs": str(work / "inputs.pkl"),
        "out": str(work / "out.pt"),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(
        HF_HUB_CACHE=str(cache),
        HF_HOME=str(tmp_path / "hf-home"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
    )
    proc = subprocess.run(
        [sys.executable, "-c", _LOADER, json.dumps(args)],
        cwd=work,  # so "ORG/NAME" cannot resolve to a local directory
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    loaded: dict[str, Any] = torch.load(work / "out.pt")
    return loaded


def check_scan(cache: Path, result: CacheResult, *, revisions: int = 1) -> None:
    from huggingface_hub import scan_cache_dir

    info = scan_cache_dir(cache)
    assert info.warnings == []
    (repo,) = info.repos
    assert repo.repo_id == result.repo_id
    assert len(repo.revisions) == revisions
    by_hash = {r.commit_hash: r for r in repo.revisions}
    assert by_hash[result.revision].refs == frozenset({"main"})
    assert by_hash[result.revision].nb_files == len(result.files)


def test_audio_dir_round_trip_bit_equal(
    tiny_audio_case: TinyCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

    case = tiny_audio_case
    store = case.new_store(tmp_path / "store")
    spec = tiny_spec("qwen2-audio-7b-instruct", "tiny/qwen2-audio")
    archive = pack_export(case, store.root, spec, tmp_path / "audio.dlmsnap")
    dest = tmp_path / "out"
    assert main(["materialize", str(archive), str(dest)]) == 0
    out = capsys.readouterr().out
    assert f"base model tiny/qwen2-audio @ {TINY_REVISION}" in out

    for path in (dest / "adapter").rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o777 == 0o444
    base = pretrained(Qwen2AudioForConditionalGeneration, case.base_dir)
    model = PeftModel.from_pretrained(base, str(dest / "adapter")).eval()
    assert torch.equal(forward_logits(model, case.batch), case.logits)
    processor = pretrained(AutoProcessor, dest / "processor")
    assert type(processor).__name__ == "Qwen2AudioProcessor"
    assert_same_batch(processor(**case.tiny.inputs), case.batch)


def test_audio_hf_cache_two_versions_offline(tiny_audio_case: TinyCase, tmp_path: Path) -> None:
    import torch
    from transformers import Qwen2AudioForConditionalGeneration

    case = tiny_audio_case
    store = case.new_store(tmp_path / "store")
    spec = tiny_spec("qwen2-audio-7b-instruct", "tiny/qwen2-audio")
    cache = tmp_path / "hub"
    v1 = pack_export(case, store.root, spec, tmp_path / "v1.dlmsnap")
    first = api.materialize_cache(v1, repo_id=AUDIO_REPO, cache_dir=cache).result

    # Version 2: another LoRA on a freshly loaded base, exported and materialized.
    fresh = pretrained(Qwen2AudioForConditionalGeneration, case.base_dir)
    peft2 = add_lora(fresh, case.tiny.lora_targets, seed=4321)
    expected2 = forward_logits(peft2, case.batch)
    assert not torch.equal(expected2, case.logits)
    save_adapter_to_store(peft2, store.root, version=2)
    v2 = pack_export(case, store.root, spec, tmp_path / "v2.dlmsnap")
    blobs = cache / f"models--{AUDIO_REPO.replace('/', '--')}" / "blobs"
    before = {p.name: p.stat().st_ino for p in blobs.iterdir()}
    second = api.materialize_cache(v2, repo_id=AUDIO_REPO, cache_dir=cache).result

    assert second.revision != first.revision
    assert (second.repo_dir / "refs/main").read_text() == second.revision
    shared = set(before) & {b.sha256 for b in second.report.manifest.blobs}
    assert shared and second.blobs_reused == len(shared)
    assert all((blobs / name).stat().st_ino == before[name] for name in shared)
    all_blobs = {b.sha256 for r in (first, second) for b in r.report.manifest.blobs}
    assert {p.name for p in blobs.iterdir()} == all_blobs
    assert (second.snapshot_dir / "adapter_config.json").is_symlink()
    check_scan(cache, second, revisions=2)

    got = load_from_cache(
        tmp_path,
        case,
        arch="Qwen2AudioForConditionalGeneration",
        cache=cache,
        repo_id=AUDIO_REPO,
        revisions=[None, first.revision],
    )
    assert torch.equal(got["logits:None"], expected2)  # refs/main -> version 2
    assert torch.equal(got[f"logits:{first.revision}"], case.logits)  # old snapshot loads
    assert not torch.equal(got["plain"], case.logits)
    for rev in (None, first.revision):
        assert got[f"processor:{rev}"] == "Qwen2AudioProcessor"
        assert_same_batch(got[f"batch:{rev}"], case.batch)


def test_llava_dir_and_hf_cache_offline(
    tiny_llava_case: TinyCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    case = tiny_llava_case
    store = case.new_store(tmp_path / "store")
    spec = tiny_spec("llava-1.5-7b", "tiny/llava")
    archive = pack_export(case, store.root, spec, tmp_path / "vl.dlmsnap")

    dest = tmp_path / "out"
    assert main(["materialize", str(archive), str(dest), "-q"]) == 0
    # The tiny LLaVA base does not reload bit-exactly (FACTS.md): compare the
    # materialized adapter with the in-memory one on the same reloaded base.
    reloaded = pretrained(LlavaForConditionalGeneration, case.base_dir)
    loaded = PeftModel.from_pretrained(copy.deepcopy(reloaded), str(dest / "adapter")).eval()
    config = case.peft_model.peft_config["default"]
    in_memory = get_peft_model(copy.deepcopy(reloaded), LoraConfig(**config.to_dict())).eval()
    set_peft_model_state_dict(in_memory, get_peft_model_state_dict(case.peft_model))
    got = forward_logits(loaded, case.batch)
    assert torch.equal(got, forward_logits(in_memory, case.batch))
    assert not torch.equal(got, forward_logits(reloaded, case.batch))
    processor = pretrained(AutoProcessor, dest / "processor")
    assert type(processor).__name__ == "LlavaProcessor"
    assert_same_batch(processor(**case.tiny.inputs), case.batch)

    cache = tmp_path / "hub"
    argv = ["materialize", str(archive), "--hf-cache", str(cache), "--repo-id", VL_REPO]
    assert main([*argv, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    result = api.materialize_cache(archive, repo_id=VL_REPO, cache_dir=cache).result
    assert payload["revision"] == result.revision and result.blobs_written == 0
    check_scan(cache, result)
    got_cache = load_from_cache(
        tmp_path,
        case,
        arch="LlavaForConditionalGeneration",
        cache=cache,
        repo_id=VL_REPO,
        revisions=[None],
        references=(dest / "adapter",),
    )
    # In the subprocess, the cache adapter and the (already checked) directory
    # adapter sit on the same reloaded base.
    assert torch.equal(got_cache["logits:None"], got_cache["reference:0"])
    assert not torch.equal(got_cache["logits:None"], got_cache["plain"])
    assert got_cache["processor:None"] == "LlavaProcessor"
    assert_same_batch(got_cache["batch:None"], case.batch)
