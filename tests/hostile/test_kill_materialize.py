"""SIGKILL during `materialize`, into a directory and into the hub cache.

Directory: the target is absent, the old tree, or the complete new tree.
Hub cache: whatever a killed run left, every `refs/main` names a complete
snapshot whose links all resolve to blobs whose bytes hash to their names;
the next run completes, and no temp file or staging directory is left
anywhere in the cache. (Verified blobs or a complete snapshot without a ref
may remain after a kill: they are correct content, and the next run reuses
them.)
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from snaparc.api import pack as pack_directory
from snaparc.hf.export import Store, export_snapshot, load_base_spec
from tests.hostile.conftest import tree_files

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "hf"))
from hf_fakes import FakeProcessor, write_fake_adapter

SNAPARC = [sys.executable, "-m", "snaparc"]
SEEDS = range(6)
REPO_DIR = "models--org--kill"


@pytest.fixture(scope="module")
def export_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, float]:
    """(export dir, archive, seconds a full materialize takes): ~32 MiB, 8 blobs."""
    root = tmp_path_factory.mktemp("killmat")
    rng = random.Random(11)
    vdir = write_fake_adapter(
        root / "store/adapter/versions/v0001", payload=rng.randbytes(24 * 1024 * 1024)
    )
    for i in range(4):
        (vdir / "extra" / f"shard{i}.bin").write_bytes(rng.randbytes(2 * 1024 * 1024 + i))
    (root / "store/adapter/current.txt").write_text("adapter/versions/v0001\n")
    result = export_snapshot(
        Store(root / "store"), load_base_spec("qwen2-audio-7b-instruct"), processor=FakeProcessor()
    )
    archive = root / "a.dlmsnap"
    pack_directory(result.export_dir, archive)
    start = time.monotonic()
    r = subprocess.run(
        [*SNAPARC, "materialize", str(archive), str(root / "probe"), "--quiet"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    return result.export_dir, archive, time.monotonic() - start


def _content(root: Path) -> dict[str, tuple[bool, bytes | None]]:
    """Path -> (executable, bytes): materialize publishes files read-only."""
    return {k: (bool(mode & 0o111), data) for k, (mode, data) in tree_files(root).items()}


def _kill_at(argv: list[str], delay: float, env: dict[str, str] | None = None) -> int:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    time.sleep(delay)
    proc.kill()
    return proc.wait(timeout=60)


def _hidden(root: Path) -> list[str]:
    """Every temp or staging entry (snaparc's `.NAME.snaparc-...`) under root."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".snaparc-" in p.name)


def test_sigkill_materialize_dir(export_archive: tuple[Path, Path, float], tmp_path: Path) -> None:
    export_dir, archive, duration = export_archive
    expected = _content(export_dir)
    target = tmp_path / "out"
    argv = [*SNAPARC, "materialize", str(archive), str(target), "--quiet"]
    outcomes = []
    for seed in SEEDS:
        code = _kill_at(argv, random.Random(seed).uniform(0.05, duration * 1.1))
        state = _content(target) if target.exists() else None
        if state is None:
            outcomes.append("absent")
        else:
            assert state == expected, f"seed {seed}: target is neither absent nor new (rc {code})"
            outcomes.append("new")
        r = subprocess.run([*argv, "--force"], capture_output=True, timeout=120, check=False)
        assert r.returncode == 0, r.stderr
        assert _content(target) == expected
        assert _hidden(tmp_path) == [], f"seed {seed}: staging left behind"
        _remove(target)
    print("kill outcomes:", outcomes)


def _remove(root: Path) -> None:
    for dirpath, dirnames, _ in os.walk(root):
        for d in dirnames:
            os.chmod(Path(dirpath, d), 0o755)
    for p in sorted(root.rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() and not p.is_symlink() else p.unlink()
    root.rmdir()


def _check_cache(repo: Path, expected_paths: int) -> str | None:
    """Assert the cache invariant; return the revision refs/main names, if any."""
    blobs = repo / "blobs"
    if blobs.exists():
        for b in blobs.iterdir():
            if b.name.startswith("."):
                continue  # a killed run's temp file: cleaned by the next run
            assert hashlib.sha256(b.read_bytes()).hexdigest() == b.name, f"bad blob {b.name}"
    ref = repo / "refs" / "main"
    if not ref.exists():
        return None
    revision = ref.read_text()
    snap = repo / "snapshots" / revision
    links = [p for p in snap.rglob("*") if p.is_symlink()]
    assert len(links) == expected_paths, "refs/main names an incomplete snapshot"
    for link in links:
        assert link.resolve().parent == blobs.resolve(), f"{link} escapes blobs/"
        assert link.exists(), f"{link} dangles"
    return revision


def test_sigkill_materialize_hf_cache(
    export_archive: tuple[Path, Path, float], tmp_path: Path
) -> None:
    _export_dir, archive, duration = export_archive
    cache = tmp_path / "cache"
    repo = cache / REPO_DIR
    argv = [
        *SNAPARC, "materialize", str(archive), "--hf-cache", str(cache),
        "--repo-id", "org/kill", "--quiet",
    ]  # fmt: skip
    r = subprocess.run([*argv, "--json"], capture_output=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    n_paths = sum(1 for p in (repo / "snapshots").rglob("*") if p.is_symlink())
    assert n_paths >= 8
    outcomes = []
    for seed in SEEDS:
        _remove(cache)
        code = _kill_at(argv, random.Random(50 + seed).uniform(0.05, duration * 1.1))
        revision = _check_cache(repo, n_paths) if repo.exists() else None
        outcomes.append("published" if revision else f"no ref (rc {code})")
        r = subprocess.run(argv, capture_output=True, timeout=120, check=False)
        assert r.returncode == 0, r.stderr
        assert _check_cache(repo, n_paths) is not None
        assert _hidden(cache) == [], f"seed {seed}: temp files or staging left in the cache"
    print("kill outcomes:", outcomes)
