"""The tensor index (format 1.1): written by pack, printed by `ls --tensors` from
the archive's head only, checked against every blob's header when read."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hf_fakes import FakeProcessor
from snaparc_testlib import run_snaparc, safetensors_file

from snaparc.archive.listing import read_listing
from snaparc.cli import main
from snaparc.format.safetensors import parse_header
from snaparc.hf.export import BASE_MODELS, Store, export_snapshot

SPEC = BASE_MODELS["qwen2-audio-7b-instruct"]
WEIGHTS = "adapter/adapter_model.safetensors"
PREFIX = "base_model.model.model.layers.0.self_attn.q_proj"
BIG = 9 * 1024 * 1024  # more than one frame


def weights(big: int = 64) -> bytes:
    return safetensors_file(
        {
            f"{PREFIX}.lora_A.weight": ("BF16", [4, 8], bytes(range(64))),
            f"{PREFIX}.lora_B.weight": ("U8", [big], random.Random(big).randbytes(big)),
        },
        metadata={"format": "pt"},
    )


def packed(store: Store, tmp_path: Path, data: bytes) -> Path:
    (store.root / "adapter/versions/v0002/adapter_model.safetensors").write_bytes(data)
    export_dir = export_snapshot(store, SPEC, processor=FakeProcessor()).export_dir
    out = tmp_path / "a.dlmsnap"
    assert main(["pack", str(export_dir), "-o", str(out), "-q"]) == 0
    return out


def ls_json(*argv: str, capsys: pytest.CaptureFixture[str]) -> Any:
    capsys.readouterr()
    assert main(["ls", *argv, "--tensors", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_pack_writes_the_index_and_format_1_1(
    fake_store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = weights()
    out = packed(fake_store, tmp_path, data)
    doc = ls_json(str(out), capsys=capsys)
    assert doc["format_version"] == "1.1"
    (entry,) = doc["files"]
    assert entry["path"] == WEIGHTS
    header = parse_header(data, len(data))
    assert entry["tensors"] == [
        {"name": t.name, "dtype": t.dtype, "shape": list(t.shape), "offsets": [t.begin, t.end]}
        for t in header.tensors
    ]
    a = entry["tensors"][0]
    assert data[a["offsets"][0] : a["offsets"][1]] == bytes(range(64))  # ranges are file offsets
    assert main(["verify", str(out), "-q"]) == 0


def test_plain_trees_stay_format_1_0_without_an_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "model.safetensors").write_bytes(weights())
    out = tmp_path / "a.dlmsnap"
    assert main(["pack", str(src), "-o", str(out), "-q"]) == 0
    doc = ls_json(str(out), capsys=capsys)
    assert doc == {"archive_id": doc["archive_id"], "format_version": "1.0", "files": []}
    capsys.readouterr()
    assert main(["ls", str(out), "--tensors"]) == 0
    assert "no tensor index" in capsys.readouterr().out


def test_ls_tensors_reads_the_head_only_also_from_a_pipe(
    fake_store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = packed(fake_store, tmp_path, weights(BIG))
    data = out.read_bytes()

    class Counting(io.RawIOBase):
        def __init__(self) -> None:
            self.inner = io.BytesIO(data)
            self.read_bytes = 0

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            n = self.inner.readinto(b)
            self.read_bytes += n
            return n

    pipe = Counting()
    listing = read_listing(pipe)  # type: ignore[arg-type]
    assert listing.manifest.tensors
    assert pipe.read_bytes < 2 * 1024 * 1024 < BIG < len(data)

    capsys.readouterr()
    assert main(["ls", str(out), "--tensors"]) == 0
    text = capsys.readouterr().out
    assert f"{WEIGHTS}: 2 tensors" in text
    assert "BF16     4x8" in text and f"{PREFIX}.lora_B.weight" in text


def test_ls_tensors_of_a_mirror_target(
    fake_store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = packed(fake_store, tmp_path, weights())
    mirror = tmp_path / "mirror"
    assert main(["push", str(out), str(mirror), "--ref", "adapter", "-q"]) == 0
    assert ls_json(f"{mirror}:adapter", capsys=capsys) == ls_json(str(out), capsys=capsys)


# --- cat --tensor --------------------------------------------------------------------


def cat_tensor(*argv: str, stdin: bytes | None = None) -> tuple[int, bytes, bytes]:
    proc = run_snaparc("cat", *argv, stdin=stdin)
    return proc.returncode, proc.stdout, proc.stderr


def test_cat_tensor_writes_exactly_its_bytes_from_a_file_a_pipe_and_a_mirror(
    fake_store: Store, tmp_path: Path
) -> None:
    data = weights()
    out = packed(fake_store, tmp_path, data)
    mirror = tmp_path / "mirror"
    assert main(["push", str(out), str(mirror), "--ref", "adapter", "-q"]) == 0
    for t in parse_header(data, len(data)).tensors:
        want = data[t.begin : t.end]
        assert cat_tensor(str(out), WEIGHTS, "--tensor", t.name) == (0, want, b"")
        assert cat_tensor("-", WEIGHTS, "--tensor", t.name, stdin=out.read_bytes())[:2] == (
            0,
            want,
        )
        assert cat_tensor(f"{mirror}:adapter", WEIGHTS, "--tensor", t.name)[:2] == (0, want)


def test_cat_tensor_of_an_unknown_tensor_or_file_without_index_is_a_usage_error(
    fake_store: Store, tmp_path: Path
) -> None:
    out = packed(fake_store, tmp_path, weights())
    code, stdout, stderr = cat_tensor(str(out), WEIGHTS, "--tensor", "no.such.tensor")
    assert (code, stdout) == (2, b"") and b"ls --tensors" in stderr
    code, stdout, stderr = cat_tensor(str(out), "snapshot_manifest.json", "--tensor", "x")
    assert (code, stdout) == (2, b"") and b"no tensor index" in stderr
