"""materialize straight from a mirror: the same verified reader, no local archive."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from snaparc.mirror.pull import open_mirror_archive
from snaparc.mirror.push import push_archive
from snaparc.mirror.store import open_store
from snaparc.mirror.url import parse_url

HF_TESTS = Path(__file__).resolve().parent.parent / "hf"


def _hf_archive(root: Path) -> Path:
    if str(HF_TESTS) not in sys.path:
        sys.path.insert(0, str(HF_TESTS))
    hf_fakes = pytest.importorskip("hf_fakes")
    from snaparc.hf import Store, export_snapshot, load_base_spec
    from snaparc.operations import pack_directory

    store = root / "store"
    vdir = hf_fakes.write_fake_adapter(store / "adapter/versions/v0001", payload=os.urandom(50_000))
    (store / "adapter/current.txt").write_text("adapter/versions/v0001\n")
    spec = load_base_spec("qwen2-audio-7b-instruct")
    result = export_snapshot(Store(store), spec, processor=hf_fakes.FakeProcessor())
    assert vdir.exists()
    out = root / "snap.dlmsnap"
    pack_directory(result.export_dir, out)
    return out


def _tree(root: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath, name)
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_materialize_dir_and_cache_from_mirror(mirror_url: str, tmp_path: Path) -> None:
    from snaparc.hf.materialize import materialize_hf_cache, materialize_hf_dir

    archive = _hf_archive(tmp_path / "src")
    r = push_archive(archive, open_store(parse_url(mirror_url), create=True), ref="prod")

    with open(archive, "rb") as fh:
        materialize_hf_dir(fh, tmp_path / "local")
    with open_mirror_archive(f"{mirror_url}:prod") as stream:
        res = materialize_hf_dir(stream, tmp_path / "remote")
    assert res.report.archive_id == r.archive_id
    assert _tree(tmp_path / "remote") == _tree(tmp_path / "local")

    with open_mirror_archive(f"{mirror_url}@{r.archive_id}") as stream:
        cache = materialize_hf_cache(stream, repo_id="org/adapter", cache_dir=tmp_path / "hub")
    assert (tmp_path / "hub" / "models--org--adapter" / "refs" / "main").exists()
    assert cache is not None
