"""Destinations: existing targets, symlinks, stale staging, and truncation at
every frame boundary. Nothing outside the target is touched; --force replaces
atomically; a symlink is never written through."""

from __future__ import annotations

import io
import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from snaparc.api import unpack as unpack_path
from snaparc.archive.catfile import cat_file
from snaparc.archive.listing import read_listing
from snaparc.cli import main
from snaparc.errors import (
    CorruptArchiveError,
    DestinationError,
    IOFailure,
    TruncatedArchiveError,
    UnsafePathError,
)
from tests.hostile import forge as F
from tests.hostile.conftest import Arena, NonSeekable, snapshot, tree_files


def _expected_tree() -> dict[str, tuple[int, bytes | None]]:
    out: dict[str, tuple[int, bytes | None]] = {}
    for f in F.default_files():
        parts = f.path.split("/")
        for i in range(1, len(parts)):
            out["/".join(parts[:i])] = (0o755, None)
        out[f.path] = (0o755 if f.executable else 0o644, f.data)
    return out


def _elsewhere(tmp_path: Path) -> Path:
    """A directory outside the arena that a symlink points to."""
    d = tmp_path / "elsewhere"
    (d / "adapter").mkdir(parents=True)
    (d / "adapter" / "adapter_config.json").write_bytes(b"must survive\n")
    (d / "run.sh").write_bytes(b"must survive too\n")
    os.utime(d / "run.sh", ns=(10**18, 10**18))
    return d


def test_existing_nonempty_target_is_refused(arena: Arena) -> None:
    p = arena.write_archive(F.forge().data)
    old = arena.plant_old_target()
    assert main(["unpack", str(p), "-C", str(arena.target), "--quiet"]) == 5
    with pytest.raises(DestinationError):
        unpack_path(p, arena.target)
    arena.assert_untouched(target_state=old)


def test_existing_empty_target_is_filled(arena: Arena) -> None:
    p = arena.write_archive(F.forge().data)
    arena.target.mkdir()
    assert main(["unpack", str(p), "-C", str(arena.target), "--quiet"]) == 0
    assert tree_files(arena.target) == _expected_tree()
    arena.baseline_names.add("out")
    arena.assert_untouched()


def test_force_replaces_atomically(arena: Arena) -> None:
    p = arena.write_archive(F.forge().data)
    arena.plant_old_target()
    assert main(["unpack", str(p), "-C", str(arena.target), "--force", "--quiet"]) == 0
    assert tree_files(arena.target) == _expected_tree()
    arena.baseline_names.add("out")
    arena.assert_untouched()


def test_target_is_a_file(arena: Arena) -> None:
    p = arena.write_archive(F.forge().data)
    arena.target.write_bytes(b"a file\n")
    state = snapshot(arena.target)
    for force in ([], ["--force"]):
        assert main(["unpack", str(p), "-C", str(arena.target), "--quiet", *force]) == 5
    with pytest.raises(DestinationError):
        unpack_path(p, arena.target, force=True)
    assert snapshot(arena.target) == state


def test_parent_missing(arena: Arena) -> None:
    p = arena.write_archive(F.forge().data)
    target = arena.root / "missing" / "out"
    assert main(["unpack", str(p), "-C", str(target), "--quiet"]) == 5
    with pytest.raises(DestinationError):
        unpack_path(p, target)
    arena.assert_untouched()


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
@pytest.mark.parametrize("kind", ["to_dir", "to_empty_dir", "dangling"])
def test_target_is_a_symlink(arena: Arena, tmp_path: Path, force: bool, kind: str) -> None:
    p = arena.write_archive(F.forge().data)
    elsewhere = _elsewhere(tmp_path)
    if kind == "to_empty_dir":
        elsewhere = tmp_path / "empty"
        elsewhere.mkdir()
    dest = elsewhere if kind != "dangling" else tmp_path / "nowhere"
    os.symlink(dest, arena.target)
    before = snapshot(tmp_path / "elsewhere") if kind == "to_dir" else None
    flags = ["--force"] if force else []
    assert main(["unpack", str(p), "-C", str(arena.target), "--quiet", *flags]) == 5
    with pytest.raises(DestinationError):
        unpack_path(p, arena.target, force=force)
    assert os.readlink(arena.target) == str(dest)
    if kind == "to_dir":
        assert snapshot(tmp_path / "elsewhere") == before
    elif kind == "to_empty_dir":
        assert os.listdir(elsewhere) == []
    else:
        assert not dest.exists()
    os.unlink(arena.target)
    arena.assert_untouched()


def test_force_over_tree_with_planted_symlinks(arena: Arena, tmp_path: Path) -> None:
    """An earlier run (or an attacker) left symlinks inside the target; --force
    builds the new tree beside it and swaps, never following them."""
    p = arena.write_archive(F.forge().data)
    elsewhere = _elsewhere(tmp_path)
    before = snapshot(elsewhere)
    arena.target.mkdir()
    os.symlink(elsewhere / "adapter", arena.target / "adapter")
    os.symlink(elsewhere / "run.sh", arena.target / "run.sh")
    os.symlink(arena.root / "canary", arena.target / "copy")
    assert main(["unpack", str(p), "-C", str(arena.target), "--force", "--quiet"]) == 0
    assert tree_files(arena.target) == _expected_tree()
    assert not any(q.is_symlink() for q in arena.target.rglob("*"))
    assert snapshot(elsewhere) == before
    arena.baseline_names.add("out")
    arena.assert_untouched()


def test_stale_staging_of_dead_process_is_removed(arena: Arena, tmp_path: Path) -> None:
    p = arena.write_archive(F.forge().data)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    stale = arena.root / f".out.snaparc-staging-{pid}-deadbeef"
    (stale / "half").mkdir(parents=True)
    (stale / "half" / "part.bin").write_bytes(b"partial")
    os.chmod(stale / "half", 0o500)
    # A stale name that is a symlink to the canary: removed as a link, never followed.
    link = arena.root / f".out.snaparc-staging-{pid}-cafecafe"
    os.symlink(arena.root / "canary", link)
    elsewhere = _elsewhere(tmp_path)
    before = snapshot(elsewhere)
    link2 = arena.root / f".out.snaparc-tmp-{pid}-0badf00d"
    os.symlink(elsewhere, link2)
    assert main(["unpack", str(p), "-C", str(arena.target), "--quiet"]) == 0
    assert not stale.exists() and not link.is_symlink() and not link2.is_symlink()
    assert snapshot(elsewhere) == before
    arena.baseline_names.add("out")
    arena.assert_untouched()


def test_staging_of_live_process_is_kept(arena: Arena) -> None:
    p = arena.write_archive(F.forge().data)
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as proc:
        try:
            live = arena.root / f".out.snaparc-staging-{proc.pid}-12345678"
            live.mkdir()
            (live / "busy").write_bytes(b"another unpack is writing this")
            assert main(["unpack", str(p), "-C", str(arena.target), "--quiet"]) == 0
            assert (live / "busy").read_bytes() == b"another unpack is writing this"
        finally:
            proc.kill()


def test_staging_of_another_host_is_kept_and_ours_is_removed(arena: Arena) -> None:
    """On a shared filesystem a PID from another machine says nothing about its
    owner: such staging is left alone; a dead PID of this host is cleaned up."""
    from snaparc.publish import owner_tag

    p = arena.write_archive(F.forge().data)
    pid = int(subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True, text=True, check=True,
    ).stdout)  # fmt: skip
    here = owner_tag().split("@", 1)[1]
    other = "0" * 8 if here != "0" * 8 else "1" * 8
    foreign = arena.root / f".out.snaparc-staging-{pid}@{other}-12345678"
    (foreign / "busy").mkdir(parents=True)
    local = arena.root / f".out.snaparc-staging-{pid}@{here}-87654321"
    (local / "half").mkdir(parents=True)
    assert main(["unpack", str(p), "-C", str(arena.target), "--quiet"]) == 0
    assert (foreign / "busy").is_dir(), "another host's staging was removed"
    assert not local.exists(), "this host's dead staging was kept"


def test_path_too_long_for_destination(arena: Arena) -> None:
    """A 4000-byte path is legal in the manifest, but not under a destination
    whose own path pushes it past PATH_MAX: a clean I/O error, not a crash."""
    path = "/".join(["d" * 199] * 20) + "/f"
    assert 4000 < len(path) <= 4096
    files = [F.FileSpec(path, b"x"), F.FileSpec("run.sh", b"#!/bin/sh\n", True)]
    p = arena.write_archive(F.forge(files).data)
    assert main(["unpack", str(p), "-C", str(arena.target), "--quiet"]) == IOFailure.exit_code
    arena.assert_untouched()
    with pytest.raises(IOFailure):
        unpack_path(p, arena.target)
    arena.assert_untouched()


def test_unpack_from_stdin_refuses_hostile(arena: Arena) -> None:
    """The pipe path goes through the same reader: refused, nothing left."""

    def hook(o: dict[str, Any], _: dict[str, bytes]) -> None:
        o["files"][0]["path"] = "../canary/keep.txt"
        o["files"].sort(key=lambda f: f["path"])

    data = F.forge(manifest_hook=hook).data
    r = subprocess.run(
        [sys.executable, "-m", "snaparc", "unpack", "-", "-C", str(arena.target), "--quiet"],
        input=data,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == UnsafePathError.exit_code, r.stderr
    arena.assert_untouched()


# --- truncation at every frame boundary and inside frames ---------------------


def _cut_points() -> list[int]:
    f = F.forge()
    offs = f.frame_offsets()
    n = len(f.data)
    points = {0, 1, 3, 4, 5, 7, n - 1, n - 9, n - 10, offs[-1] + 4, offs[-1] + 8}
    for a, b in itertools.pairwise(offs):
        points |= {a, a + 1, a + 4, a + 6, (a + b) // 2, b - 4, b - 1}
    return sorted(p for p in points if 0 <= p < n)


@pytest.mark.parametrize("cut", _cut_points())
def test_truncated_archive(arena: Arena, cut: int) -> None:
    data = F.forge().data[:cut]
    p = arena.write_archive(data)
    assert main(["verify", str(p), "--quiet"]) == 1
    with pytest.raises(TruncatedArchiveError):
        unpack_path(p, arena.target, threads=2)
    arena.assert_untouched()
    out = io.BytesIO()
    with pytest.raises(TruncatedArchiveError):
        cat_file(NonSeekable(data), "run.sh", out)  # type: ignore[arg-type]
    assert out.getvalue() == b""
    # Seekable readers find the seek table missing or damaged at the end.
    assert main(["ls", str(p)]) == 1
    with pytest.raises(CorruptArchiveError), open(p, "rb") as fh:
        read_listing(fh)
    out = io.BytesIO()
    with pytest.raises(CorruptArchiveError), open(p, "rb") as fh:
        cat_file(fh, "run.sh", out)
    assert out.getvalue() == b""
    arena.assert_untouched()


def test_truncated_force_keeps_old_tree(arena: Arena) -> None:
    full = F.forge().data
    old = arena.plant_old_target()
    for cut in (len(full) // 2, len(full) - 1):
        p = arena.write_archive(full[:cut])
        assert main(["unpack", str(p), "-C", str(arena.target), "--force", "--quiet"]) == 1
        arena.assert_untouched(target_state=old)
