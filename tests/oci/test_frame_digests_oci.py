"""An archive with frame digests (format 1.2) through an OCI registry: pushed,
pulled byte for byte, and `cat --tensor` from the target (a stream: the whole
blob is read, every frame checked against its digest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save
from snaparc_testlib import run_snaparc

import snaparc
from snaparc.archive.index import open_index

WEIGHTS = "model.safetensors"


@pytest.mark.parametrize("codec", ["none", "bytegroup"])
def test_frame_digests_survive_push_pull_and_cat_tensor(
    repo: str, tmp_path: Path, codec: str
) -> None:
    rng = np.random.default_rng(3)
    tensors = {
        "a": rng.standard_normal(3 * 1024 * 1024, dtype=np.float32).astype(np.float16),
        "b_straddle": rng.standard_normal(1024 * 1024, dtype=np.float32).astype(np.float16),
        "c": rng.standard_normal(512 * 1024, dtype=np.float32).astype(np.float16),
    }
    src = tmp_path / "src"
    src.mkdir()
    (src / WEIGHTS).write_bytes(save(tensors))
    archive = tmp_path / "a.dlmsnap"
    snaparc.pack(
        src,
        archive,
        level=1,
        codec=codec,
        metadata={"export_target": "hf_snapshot"},
        allow_base_weights=True,
    )
    with open(archive, "rb") as f:
        (blob,) = open_index(f).manifest.blobs
    assert len(blob.frame_blake3) == 2
    snaparc.push(archive, f"{repo}:v1")
    out = tmp_path / "pulled.dlmsnap"
    snaparc.pull(f"{repo}:v1", out)
    assert out.read_bytes() == archive.read_bytes()
    proc = run_snaparc("cat", f"{repo}:v1", WEIGHTS, "--tensor", "b_straddle")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == tensors["b_straddle"].tobytes()
