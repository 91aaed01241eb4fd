"""Round trips: pack then unpack recreates the tree exactly (paths, bytes, modes)."""

from __future__ import annotations

import io
import os
import stat
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from snaparc_testlib import sample_files, write_tree

from snaparc.api import pack as pack_directory
from snaparc.api import unpack as unpack_path
from snaparc.archive.pack import plan_pack, write_archive
from snaparc.archive.unpack import unpack_archive
from snaparc.cli import main
from snaparc.format.paths import fold_key


def snapshot_of(root: Path) -> dict[str, tuple[bool, bytes] | None]:
    """path -> (executable, bytes) for files, None for (empty) dirs."""
    out: dict[str, tuple[bool, bytes] | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            p = Path(dirpath) / d
            if not any(p.iterdir()):
                out[p.relative_to(root).as_posix()] = None
        for f in filenames:
            p = Path(dirpath) / f
            out[p.relative_to(root).as_posix()] = (
                bool(p.stat().st_mode & stat.S_IXUSR),
                p.read_bytes(),
            )
    return out


def test_cli_round_trip_recreates_tree_exactly(
    sample_tree: Path, packed: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "out"
    assert main(["unpack", str(packed), "-C", str(dest), "--quiet"]) == 0
    assert snapshot_of(dest) == snapshot_of(sample_tree)
    assert (dest / "logs" / "empty").is_dir()
    assert os.stat(dest / "scripts/run.sh").st_mode & 0o777 == 0o755
    assert os.stat(dest / "adapter/tokenizer.json").st_mode & 0o777 == 0o644


def test_identical_contents_are_stored_once(sample_tree: Path, tmp_path: Path) -> None:
    plan = plan_pack(sample_tree, threads=2)
    m = plan.manifest
    tok = [f for f in m.files if f.path.endswith("tokenizer.json")]
    assert len(tok) == 2 and tok[0].blob == tok[1].blob
    assert len(m.blobs) == len({f.blob for f in m.files}) == len(m.files) - 1


def test_archive_smaller_than_duplicated_content(tmp_path: Path) -> None:
    blob = os.urandom(2_000_000)
    src = write_tree(tmp_path / "s", {"a/x.bin": blob, "b/x.bin": blob, "c/x.bin": blob})
    out = pack_directory(src, tmp_path / "x.dlmsnap").written
    assert out.compressed_bytes < len(blob) * 1.01


names = (
    st.text(
        alphabet=st.characters(
            blacklist_categories=("Cs", "Cc", "Cf", "Zl", "Zp"),
            blacklist_characters="/\\\x00",
        ),
        min_size=1,
        max_size=12,
    )
    .map(lambda s: unicodedata.normalize("NFC", s))
    .filter(
        lambda s: (
            s not in (".", "..") and len(s.encode()) <= 255 and not (len(s) >= 2 and s[1] == ":")
        )
    )
)


@st.composite
def trees(draw: st.DrawFn) -> tuple[dict[str, bytes], set[str], list[str]]:
    contents = draw(st.lists(st.binary(max_size=3000), min_size=1, max_size=4))
    n = draw(st.integers(1, 8))
    files: dict[str, bytes] = {}
    keys: set[str] = set()
    for _ in range(n):
        depth = draw(st.integers(1, 6))
        parts = [draw(names) for _ in range(depth)]
        path = "/".join(parts)
        key = fold_key(path)
        # avoid collisions and file/dir clashes: the packer refuses those (tested elsewhere)
        prefixes = {"/".join(fold_key(path).split("/")[:i]) for i in range(1, depth)}
        if key in keys or prefixes & keys or any(k.startswith(key + "/") for k in keys):
            continue
        keys.add(key)
        files[path] = draw(st.sampled_from(contents))
    execs = {p for p in files if draw(st.booleans())}
    empty = [f"empty{i}" for i in range(draw(st.integers(0, 2)))]
    return files, execs, empty


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(trees())
def test_hypothesis_round_trip(
    tmp_path_factory: pytest.TempPathFactory, tree: tuple[dict[str, bytes], set[str], list[str]]
) -> None:
    files, execs, empty = tree
    base = tmp_path_factory.mktemp("rt")
    try:
        src = write_tree(base / "src", files, executable=execs, empty_dirs=tuple(empty))
    except OSError:
        return  # the local filesystem refused a drawn name; not what we test
    buf = io.BytesIO()
    write_archive(plan_pack(src, threads=2), buf, level=1, threads=2)
    buf.seek(0)
    unpack_archive(buf, base / "dst", threads=2)
    assert snapshot_of(base / "dst") == snapshot_of(src)


def test_unpack_from_python_api_returns_report(packed: Path, tmp_path: Path) -> None:
    result = unpack_path(packed, tmp_path / "o")
    assert result.report.blobs_verified == len(result.report.manifest.blobs)
    assert result.report.bytes_verified == result.report.manifest.blob_bytes


def test_sample_files_cover_edge_cases() -> None:
    files = sample_files()
    assert b"" in files.values()
    assert any(not p.isascii() for p in files)
