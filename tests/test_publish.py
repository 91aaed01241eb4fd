"""`write_file_atomic` (keys, signatures, sums, indexes) and `AtomicFile`: exact
modes, create-only publishing, claimed temp names, stale temps cleaned by the
next write."""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from snaparc_testlib import dead_owner_tags

from snaparc.errors import DestinationError, DiskFullError
from snaparc.publish import AtomicFile, owner_tag, remove_owned, write_file_atomic


@pytest.fixture
def strict_umask() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _hidden(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


@pytest.mark.usefixtures("strict_umask")
@pytest.mark.parametrize("mode", [0o644, 0o600, 0o444])
def test_mode_is_exact_whatever_the_umask(tmp_path: Path, mode: int) -> None:
    out = write_file_atomic(tmp_path / "key.pub", b"public", mode=mode)
    assert out == tmp_path / "key.pub"
    assert _mode(out) == mode
    assert out.read_bytes() == b"public"


def test_replacing_takes_the_new_mode_and_content(tmp_path: Path) -> None:
    path = tmp_path / "a.sha256"
    path.write_bytes(b"old")
    os.chmod(path, 0o600)
    write_file_atomic(path, b"new", mode=0o644)
    assert (path.read_bytes(), _mode(path)) == (b"new", 0o644)
    assert _hidden(tmp_path) == []


def test_no_clobber_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "key.sec"
    path.write_bytes(b"the only copy of a secret key")
    with pytest.raises(DestinationError, match="already exists"):
        write_file_atomic(path, b"another key", mode=0o600, overwrite=False)
    assert path.read_bytes() == b"the only copy of a secret key"
    assert _hidden(tmp_path) == []


def test_no_clobber_refuses_a_dangling_symlink(tmp_path: Path) -> None:
    link = tmp_path / "key.sec"
    os.symlink(tmp_path / "nowhere", link)
    with pytest.raises(DestinationError):
        write_file_atomic(link, b"key", overwrite=False)
    assert os.readlink(link) == str(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


def test_no_clobber_holds_against_a_writer_that_wins_the_race(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The target appears after the up-front check: the hard link refuses it."""
    path = tmp_path / "a.dlmsnap.index.json"
    real_fsync = os.fsync

    def racing_fsync(fd: int) -> None:
        real_fsync(fd)
        if not path.exists():
            path.write_bytes(b"the other writer's")

    monkeypatch.setattr(os, "fsync", racing_fsync)
    with pytest.raises(DestinationError):
        write_file_atomic(path, b"ours", overwrite=False)
    assert path.read_bytes() == b"the other writer's"
    assert _hidden(tmp_path) == []


@pytest.mark.parametrize("err", [errno.EPERM, errno.EXDEV, errno.EOPNOTSUPP])
def test_no_clobber_without_hard_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int
) -> None:
    """FAT32 and some FUSE mounts have no hard links: check, then rename."""

    def no_links(src: object, dst: object, **kwargs: object) -> None:
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "a.minisig"
    write_file_atomic(path, b"sig", overwrite=False)
    assert path.read_bytes() == b"sig"
    with pytest.raises(DestinationError):
        write_file_atomic(path, b"other", overwrite=False)
    assert path.read_bytes() == b"sig"
    assert _hidden(tmp_path) == []


def test_disk_full_is_exit_6_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(DiskFullError) as exc:
        write_file_atomic(tmp_path / "a.b3", b"x" * 100)
    assert exc.value.path == str(tmp_path / "a.b3")
    assert list(tmp_path.iterdir()) == []


def test_temp_file_is_named_for_its_owner_and_claimed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C mid-write: the temp carries PID@HOST, and the CLI's cleanup removes it."""
    seen: list[list[str]] = []
    real_fsync = os.fsync

    def interrupted(fd: int) -> None:
        real_fsync(fd)
        seen.append(_hidden(tmp_path))
        seen.append(sorted(p.name for p in remove_owned() if p.parent == tmp_path))
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_file_atomic(tmp_path / "key.sec", b"secret", mode=0o600)
    monkeypatch.undo()
    (temps, removed) = seen
    tag = re.escape(owner_tag())
    assert len(temps) == 1
    assert re.fullmatch(rf"\.key\.sec\.snaparc-tmp-{tag}-[0-9a-f]{{8}}", temps[0])
    assert removed == temps
    assert list(tmp_path.iterdir()) == []


def test_next_write_removes_dead_temps_of_this_host_only(tmp_path: Path) -> None:
    ours, foreign = dead_owner_tags()
    stale = tmp_path / f".a.sha256.snaparc-tmp-{ours}-deadbeef"
    stale.write_bytes(b"half")
    far = tmp_path / f".a.sha256.snaparc-tmp-{foreign}-deadbeef"
    far.write_bytes(b"another machine's")
    write_file_atomic(tmp_path / "a.sha256", b"sums")
    assert not stale.exists()
    assert far.read_bytes() == b"another machine's"


def test_atomic_file_without_force_never_replaces_a_target_that_appeared(
    tmp_path: Path,
) -> None:
    target = tmp_path / "out.dlmsnap"
    with (
        pytest.raises(DestinationError, match="already exists"),
        AtomicFile(target) as out,
    ):
        out.file.write(b"ours")
        target.write_bytes(b"another writer's")  # after the up-front check
    assert target.read_bytes() == b"another writer's"
    assert _hidden(tmp_path) == []


def test_atomic_file_with_force_replaces(tmp_path: Path) -> None:
    target = tmp_path / "out.dlmsnap"
    target.write_bytes(b"old")
    with AtomicFile(target, force=True) as out:
        out.file.write(b"new")
    assert target.read_bytes() == b"new"
    assert _hidden(tmp_path) == []
