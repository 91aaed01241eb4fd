"""The checked-in test vectors of spec/vectors keep verifying, forever.

Every vector is verified through the CLI (`snaparc verify`) and must exit
with its recorded code; valid ones must list the recorded archive id, files
and digests, and snaparc must still write them byte for byte (when the
installed libzstd is the one that wrote them).
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import shutil
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import zstandard

from snaparc import errors
from snaparc.archive.reader import read_archive
from snaparc.cli import main

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "spec" / "vectors"
if str(ROOT) not in sys.path:  # `spec` is a directory of the repository, not installed
    sys.path.insert(0, str(ROOT))
generate = importlib.import_module("spec.vectors.generate")

EXPECTED: dict[str, Any] = json.loads((VECTORS / "expected.json").read_text(encoding="utf-8"))
ALL = EXPECTED["vectors"]
VALID = [v for v in ALL if v["verify_exit"] == 0]
INVALID = [v for v in ALL if v["verify_exit"] != 0]


def _ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [v["file"] for v in vectors]


def _run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


def test_vectors_are_small_and_all_listed() -> None:
    on_disk = {p.name for p in VECTORS.glob("*.dlmsnap")}
    assert on_disk == {v["file"] for v in ALL}
    assert sum(v["size"] for v in ALL) < 100 * 1024
    assert {"empty-tree.dlmsnap", "basic.dlmsnap", "snapshot-safetensors.dlmsnap"} <= set(
        _ids(VALID)
    )


@pytest.mark.parametrize("vector", ALL, ids=_ids(ALL))
def test_vector_file_is_unchanged(vector: dict[str, Any]) -> None:
    data = (VECTORS / vector["file"]).read_bytes()
    assert len(data) == vector["size"]
    assert hashlib.sha256(data).hexdigest() == vector["sha256"]


@pytest.mark.parametrize("vector", ALL, ids=_ids(ALL))
def test_verify_exit_code(vector: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["verify", "-q", "--threads", "2", str(VECTORS / vector["file"])])
    assert code == vector["verify_exit"], capsys.readouterr().err


@pytest.mark.parametrize("vector", INVALID, ids=_ids(INVALID))
@pytest.mark.parametrize("threads", [1, 3])
def test_invalid_vector_error_class(vector: dict[str, Any], threads: int) -> None:
    cls = getattr(errors, vector["error"])
    assert cls.exit_code == vector["verify_exit"]
    with open(VECTORS / vector["file"], "rb", buffering=0) as f, pytest.raises(cls):
        read_archive(f, None, threads=threads)


@pytest.mark.parametrize("vector", VALID, ids=_ids(VALID))
def test_valid_vector_id_files_and_digests(vector: dict[str, Any]) -> None:
    path = str(VECTORS / vector["file"])
    code, out = _run(["verify", "--json", "-q", path])
    assert code == 0
    report = json.loads(out)
    assert report["archive_id"] == vector["archive_id"]
    assert report["format_version"] == vector["format_version"]
    assert report["metadata"] == vector["metadata"]

    code, out = _run(["ls", "--json", path])
    assert code == 0
    listing = json.loads(out)
    assert listing["archive_id"] == vector["archive_id"]
    assert listing["dirs"] == vector["dirs"]
    assert listing["metadata"] == vector["metadata"]
    got = [
        {k: f[k] for k in ("path", "size", "executable", "sha256", "blake3")}
        for f in listing["files"]
    ]
    assert got == vector["files"]


@pytest.mark.parametrize("vector", VALID, ids=_ids(VALID))
def test_archive_id_is_sha256_of_the_manifest_member(vector: dict[str, Any]) -> None:
    members = generate.split_members((VECTORS / vector["file"]).read_bytes())
    name, manifest = members[0]
    assert name == "dlmsnap/manifest.json"
    assert hashlib.sha256(manifest).hexdigest() == vector["archive_id"]
    # blob members in ascending sha256 order (the name's last component), coded or not
    digests = [n.rsplit("/", 1)[1] for n, _ in members[1:]]
    assert digests == sorted(digests)


def test_unpacked_tree_matches_expected(tmp_path: Path) -> None:
    vector = next(v for v in VALID if v["file"] == "basic.dlmsnap")
    dest = tmp_path / "out"
    code, _ = _run(["unpack", "-q", str(VECTORS / vector["file"]), "-C", str(dest)])
    assert code == 0
    for f in vector["files"]:
        data = (dest / f["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"]
        assert bool((dest / f["path"]).stat().st_mode & 0o100) == f["executable"]
    for d in vector["dirs"]:
        assert (dest / d).is_dir() and not any((dest / d).iterdir())


def _same_zstd() -> bool:
    return ".".join(map(str, zstandard.ZSTD_VERSION)) == EXPECTED["libzstd_version"]


_SKIP_ZSTD = pytest.mark.skipif(
    not _same_zstd(),
    reason=(
        f"installed libzstd {'.'.join(map(str, zstandard.ZSTD_VERSION))} is not "
        f"{EXPECTED['libzstd_version']}, which wrote the vectors: compressed bytes may "
        "legitimately differ (FORMAT.md, Determinism)"
    ),
)


@_SKIP_ZSTD
@pytest.mark.parametrize(
    "vector", generate.VALID, ids=[f"{v.name}.dlmsnap" for v in generate.VALID]
)
def test_valid_vectors_are_rewritten_byte_identically(vector: Any, tmp_path: Path) -> None:
    checked_in = (VECTORS / f"{vector.name}.dlmsnap").read_bytes()
    fresh = generate.pack_vector(vector, tmp_path, created_by=EXPECTED["created_by"])
    assert fresh == checked_in


@_SKIP_ZSTD
@pytest.mark.parametrize("vector", generate.VALID, ids=[v.name for v in generate.VALID])
def test_independent_assembler_reproduces_valid_vectors(vector: Any) -> None:
    checked_in = (VECTORS / f"{vector.name}.dlmsnap").read_bytes()
    assert generate.assemble(generate.split_members(checked_in)) == checked_in


@_SKIP_ZSTD
@pytest.mark.parametrize("bad", generate.CORRUPT, ids=[b.name for b in generate.CORRUPT])
def test_corrupt_vectors_are_rederived_byte_identically(bad: Any) -> None:
    source = (VECTORS / f"{bad.derived_from}.dlmsnap").read_bytes()
    assert bad.make(source) == (VECTORS / f"{bad.name}.dlmsnap").read_bytes()


def test_generator_covers_every_recorded_vector() -> None:
    refused = (*generate.CORRUPT, *generate.REFUSED_TREES, *generate.RETIRED)
    names = {f"{v.name}.dlmsnap" for v in generate.VALID} | {f"{b.name}.dlmsnap" for b in refused}
    assert names == {v["file"] for v in ALL}
    for bad in refused:
        entry = next(v for v in ALL if v["file"] == f"{bad.name}.dlmsnap")
        assert (entry["verify_exit"], entry["error"]) == (bad.exit_code, bad.error)


@_SKIP_ZSTD
@pytest.mark.parametrize(
    "refused", generate.REFUSED_TREES, ids=[r.name for r in generate.REFUSED_TREES]
)
def test_refused_trees_are_repacked_byte_identically(refused: Any, tmp_path: Path) -> None:
    fresh = generate.pack_vector(refused, tmp_path, created_by=EXPECTED["created_by"])
    assert fresh == (VECTORS / f"{refused.name}.dlmsnap").read_bytes()


def test_the_writer_refuses_the_refused_trees(tmp_path: Path) -> None:
    from snaparc.archive.pack import plan_pack
    from snaparc.errors import SourceError

    for tree in (generate.tree_snapshot_like, generate.tree_polyglot_safetensors):
        src = tmp_path / tree.__name__
        tree(src)
        with pytest.raises(SourceError, match="not a strict safetensors file"):
            plan_pack(src, threads=2, metadata=dict(generate.SNAPSHOT_METADATA))


def test_snapshot_metadata_is_what_pack_records(tmp_path: Path) -> None:
    """`snaparc pack` (with the HF inspection) records the vector's metadata."""
    snapshot = pytest.importorskip("snaparc.hf.export.tree")
    src = tmp_path / "snap"
    generate.tree_snapshot_safetensors(src)
    files = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
    info = snapshot.inspect_snapshot_tree(src, files)
    assert info is not None
    assert info.undeclared == []
    vector = next(v for v in VALID if v["file"] == "snapshot-safetensors.dlmsnap")
    assert info.metadata == vector["metadata"]
    assert set(vector["metadata"]) == set(snapshot.METADATA_KEYS)


@pytest.mark.interop
@pytest.mark.parametrize("vector", VALID, ids=_ids(VALID))
@pytest.mark.parametrize(
    "argv",
    [["tar", "--zstd", "-xf"], ["tar", "-xf"], ["bsdtar", "-xf"]],
    ids=["gnu-tar-zstd", "gnu-tar-autodetect", "bsdtar"],
)
def test_stock_tools_extract_valid_vectors(
    vector: dict[str, Any], argv: list[str], tmp_path: Path
) -> None:
    for tool in (argv[0], "zstd"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    path = VECTORS / vector["file"]
    assert subprocess.run(["zstd", "-tq", str(path)], check=False).returncode == 0
    out = tmp_path / "x"
    out.mkdir()
    proc = subprocess.run([*argv, str(path), "-C", str(out)], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr
    manifest = (out / "dlmsnap" / "manifest.json").read_bytes()
    assert hashlib.sha256(manifest).hexdigest() == vector["archive_id"]
    coded = vector.get("coded_blobs", {})
    blob_dir = out / "blobs" / "sha256"
    blobs = sorted(blob_dir.iterdir()) if blob_dir.exists() else []
    assert [p.name for p in blobs] == sorted({f["sha256"] for f in vector["files"]} - set(coded))
    for p in blobs:
        assert hashlib.sha256(p.read_bytes()).hexdigest() == p.name
    # a coded blob: its stored planes under blobs/<codec>/, the content's size, other bytes
    by_sha = {f["sha256"]: f for f in vector["files"]}
    for sha, codec in coded.items():
        planes = (out / "blobs" / codec / sha).read_bytes()
        assert len(planes) == by_sha[sha]["size"]
        assert hashlib.sha256(planes).hexdigest() != sha
