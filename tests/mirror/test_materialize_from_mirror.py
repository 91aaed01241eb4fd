"""materialize straight from a mirror: the same verified reader, no local archive."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from snaparc_testlib import push_file

from snaparc.mirror.connect import open_store
from snaparc.mirror.url import parse_url
from snaparc.sources.archive import open_source


def _tree(root: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath, name)
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_materialize_dir_and_cache_from_mirror(
    mirror_url: str, tmp_path: Path, hf_snapshot_archive: Path
) -> None:
    from snaparc.hf.materialize import materialize_hf_cache, materialize_hf_dir

    archive = hf_snapshot_archive
    r = push_file(archive, open_store(parse_url(mirror_url), create=True), ref="prod")

    with open(archive, "rb") as fh:
        materialize_hf_dir(fh, tmp_path / "local")
    with open_source(f"{mirror_url}:prod") as stream:
        res = materialize_hf_dir(stream, tmp_path / "remote")
    assert res.report.archive_id == r.archive_id
    assert _tree(tmp_path / "remote") == _tree(tmp_path / "local")

    with open_source(f"{mirror_url}@{r.archive_id}") as stream:
        cache = materialize_hf_cache(stream, repo_id="org/adapter", cache_dir=tmp_path / "hub")
    assert (tmp_path / "hub" / "models--org--adapter" / "refs" / "main").exists()
    assert cache is not None
