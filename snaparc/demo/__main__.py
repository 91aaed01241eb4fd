"""`make demo`: the whole story on a tiny generated model, offline, in seconds.

1. build a tiny Qwen2-Audio base (random weights from a config), a tokenizer
   trained on the spot, a Whisper feature extractor, and a LoRA adapter with
   non-zero weights, saved in a training store (`adapter/current.txt`);
2. `snaparc export` the HF snapshot (adapter/, processor/, manifest, README);
3. `snaparc pack`, `ls`, `verify` (and a tampered copy that verify refuses);
4. `snaparc materialize` into a directory and into a Hugging Face hub cache;
5. load both with `PeftModel.from_pretrained` (+ `AutoProcessor`) with
   HF_HUB_OFFLINE=1 and check the logits equal the original bit for bit.

Everything is written under ./demo-out (recreated on each run).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

OUT = Path("demo-out")
REPO_ID = "snaparc-demo/tiny-qwen2-audio-lora"


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def run(*argv: str, expect: int = 0) -> None:
    from snaparc.cli import main

    print("$ snaparc " + " ".join(argv), flush=True)
    code = main(list(argv))
    sys.stdout.flush()
    if code != expect:
        raise SystemExit(f"demo: 'snaparc {' '.join(argv)}' exited {code}, expected {expect}")
    if expect:
        print(f"(exit code {code}, as expected)")


def main() -> int:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir()
    cache = (OUT / "hf-cache").resolve()
    # Read once by huggingface_hub at import: set before anything imports it.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_HUB_CACHE"] = str(cache)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

    step("1. build a tiny Qwen2-Audio base, processor and LoRA adapter (offline)")
    import torch

    from snaparc.demo.tiny import build_case, forward_logits

    case = build_case("audio", OUT / "build")
    store = case.new_store(OUT / "store")
    print(
        f"store: {store.root} (adapter/current.txt -> "
        f"{(store.root / 'adapter/current.txt').read_text().strip()})"
    )
    spec = {
        "key": "tiny-qwen2-audio-demo",
        "hf_id": "snaparc-demo/tiny-qwen2-audio",
        "revision": "0123456789abcdef0123456789abcdef01234567",
        "architecture": "Qwen2AudioForConditionalGeneration",
        "modality": "audio-language",
        "redistributable": False,
        "audio_plan": {
            "sample_rate": 16000,
            "max_length_seconds": 30.0,
            "audio_token": "<|AUDIO|>",
            "num_audio_tokens": 750,
        },
    }
    spec_path = OUT / "base-spec.json"
    spec_path.write_text(json.dumps(spec, indent=2) + "\n")

    step("2. export the HF snapshot")
    run(
        "export",
        "--store",
        str(store.root),
        "--base",
        str(spec_path),
        "--processor",
        str(case.processor_dir),
    )
    export_dir = store.root / "exports" / "hf-audio-snapshot"

    step("3. pack, list, verify")
    archive = OUT / "tiny-audio-lora.dlmsnap"
    run("pack", str(export_dir), "-o", str(archive))
    run("ls", str(archive))
    run("verify", str(archive))
    tampered = OUT / "tampered.dlmsnap"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x40
    tampered.write_bytes(bytes(data))
    print("a copy with one flipped bit:")
    run("verify", str(tampered), expect=1)

    step("4. materialize into a directory and into a hub cache")
    dest = OUT / "materialized"
    run("materialize", str(archive), str(dest))
    run("materialize", str(archive), "--hf-cache", str(cache), "--repo-id", REPO_ID)

    step("5. load with PEFT offline and compare logits bit for bit")
    from huggingface_hub import snapshot_download
    from peft import PeftModel
    from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

    def reload(adapter: str | Path) -> Any:
        base = Qwen2AudioForConditionalGeneration.from_pretrained(str(case.base_dir))
        model = PeftModel.from_pretrained(base, str(adapter)).eval()
        return forward_logits(model, case.batch)

    checks = []
    dir_logits = reload(dest / "adapter")
    checks.append(
        ("PeftModel.from_pretrained(base, DEST/'adapter')", torch.equal(dir_logits, case.logits))
    )
    cache_logits = reload(REPO_ID)
    checks.append(
        (
            f"PeftModel.from_pretrained(base, '{REPO_ID}') [HF_HUB_OFFLINE=1]",
            torch.equal(cache_logits, case.logits),
        )
    )
    processor = AutoProcessor.from_pretrained(str(dest / "processor"))
    batch = processor(**case.tiny.inputs)
    checks.append(
        (
            "AutoProcessor.from_pretrained(DEST/'processor') input_ids",
            torch.equal(batch["input_ids"], case.batch["input_ids"]),
        )
    )
    checks.append(
        ("... input_features", torch.equal(batch["input_features"], case.batch["input_features"]))
    )
    snap = snapshot_download(REPO_ID, local_files_only=True)
    cached_proc = AutoProcessor.from_pretrained(snap)
    checks.append(
        (
            "AutoProcessor.from_pretrained(snapshot_download(repo, local_files_only))",
            torch.equal(cached_proc(**case.tiny.inputs)["input_ids"], case.batch["input_ids"]),
        )
    )
    for what, ok in checks:
        print(f"  [{'ok' if ok else 'FAILED'}] {what}")
    if not all(ok for _, ok in checks):
        return 1

    import snaparc

    listing = snaparc.ls(archive).listing
    print(f"\narchive id {listing.archive_id}")
    print(
        f"checked: sha256 + blake3 of every blob ({len(listing.manifest.blobs)} blobs), "
        "manifest, tar profile, seek table, no trailing data; a tampered copy refused (exit 1); "
        "directory and hub-cache layouts load with PEFT and give bit-equal logits."
    )
    print(f"outputs are in {OUT.resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
