"""The public API: one function per command, re-exported from `snaparc`, one result shape."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import snaparc
import snaparc.api as api
from snaparc.errors import InputNotFoundError, UsageError


def test_the_package_face_is_the_api() -> None:
    assert set(snaparc._API_NAMES) == set(api.__all__)
    assert set(api._HOMES) | {"remove_claimed"} == set(api.__all__)
    for name in api.__all__:
        assert getattr(snaparc, name) is getattr(api, name)
    with pytest.raises(AttributeError):
        _ = snaparc.no_such_name  # type: ignore[attr-defined]


def test_importing_snaparc_loads_no_api_and_nothing_heavy() -> None:
    code = (
        "import sys, snaparc\n"
        "from snaparc import errors\n"
        "assert 'snaparc.api' not in sys.modules, 'snaparc.api loaded eagerly'\n"
        "snaparc.verify\n"
        "assert 'snaparc.api' in sys.modules\n"
        "assert 'snaparc.api.mirror' not in sys.modules, 'verify loaded the mirror API'\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'obstore') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_command_of_the_story_returns_a_result(sample_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "a.dlmsnap"
    packed = snaparc.pack(sample_tree, out, threads=2)
    verified = snaparc.verify(out)
    listed = snaparc.ls(out)
    buf = io.BytesIO()
    catted = snaparc.cat(out, "scripts/run.sh", buf)
    unpacked = snaparc.unpack(out, tmp_path / "tree")
    mirror = tmp_path / "mirror"
    pushed = snaparc.push(out, str(mirror), ref="v1")
    pulled = snaparc.pull(f"{mirror}:v1", tmp_path / "pulled.dlmsnap")
    listed_mirror = snaparc.mirror_ls(str(mirror))
    summed = snaparc.sums(out)
    results = [packed, verified, listed, catted, unpacked, pushed, pulled, listed_mirror, summed]
    for result in results:
        assert isinstance(result, snaparc.Result)
        json.dumps(result.to_json())  # the --json document is plain JSON
    ids = {r.archive_id for r in (packed, verified, listed, unpacked, pushed, pulled)}
    assert ids == {packed.archive_id}
    assert buf.getvalue() == (sample_tree / "scripts/run.sh").read_bytes()
    assert catted.size == len(buf.getvalue())
    assert (tmp_path / "pulled.dlmsnap").read_bytes() == out.read_bytes()
    assert listed_mirror.listing.refs == {"v1": packed.archive_id}
    assert [p.name for p in summed.paths] == ["a.dlmsnap.sha256", "a.dlmsnap.b3"]


def test_the_api_validates_before_it_touches_anything(packed: Path, tmp_path: Path) -> None:
    before = sorted(p.name for p in tmp_path.iterdir())
    bad_calls = [
        lambda: snaparc.verify(packed, threads=-1),
        lambda: snaparc.unpack(packed, tmp_path / "t", threads=-2),
        lambda: snaparc.unpack(packed, ""),
        lambda: snaparc.push(packed, str(tmp_path / "m"), jobs=0),
        lambda: snaparc.push(packed, str(tmp_path / "m"), ref=""),
        lambda: snaparc.pull(str(tmp_path / "m"), tmp_path / "o"),
        lambda: snaparc.verify(packed, limits=snaparc.Limits(max_files=0)),
        lambda: snaparc.materialize_cache(packed, repo_id="noslash"),
        lambda: snaparc.ls(""),
    ]
    for call in bad_calls:
        with pytest.raises(UsageError):
            call()
    with pytest.raises(InputNotFoundError):
        snaparc.verify(tmp_path / "missing.dlmsnap")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_level_is_checked_before_the_tree_is_scanned(tmp_path: Path) -> None:
    """No tree at all: the level is refused first, not the missing source."""
    with pytest.raises(UsageError, match="--level"):
        snaparc.pack(tmp_path / "missing", tmp_path / "o.dlmsnap", level=20)
