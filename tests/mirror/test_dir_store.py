"""The directory store publishes like every other snaparc output: claimed
PID@HOST temp names, stale ones cleaned, create-only by hard link, and its
own error classes (exit 10)."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import pytest
from snaparc_testlib import dead_owner_tags

from snaparc.errors import RemoteError
from snaparc.mirror.store import DirStore, ObjectExistsError, RemotePermissionError
from snaparc.publish import owner_tag, remove_owned

KEY = "archives/" + "ab" * 32 + ".json"


@pytest.fixture
def store(tmp_path: Path) -> DirStore:
    return DirStore(tmp_path / "mirror", create=True)


def _entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_interrupted_put_leaves_the_old_object_and_no_temp(
    store: DirStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C mid-put: the temp is named for its owner and claimed, so the
    CLI's cleanup (`remove_owned`) leaves only the previous object."""
    store.put("refs/main", b"old\n", mode="create")
    refs = store.root / "refs"
    seen: list[list[str]] = []
    real_fsync = os.fsync

    def interrupted(fd: int) -> None:
        real_fsync(fd)
        seen.append([n for n in _entries(refs) if n.startswith(".")])
        seen.append(sorted(p.name for p in remove_owned() if p.parent == refs))
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.put("refs/main", b"new\n", mode="overwrite")
    monkeypatch.undo()
    temps, removed = seen
    assert len(temps) == 1
    assert re.fullmatch(rf"\.main\.snaparc-tmp-{re.escape(owner_tag())}-[0-9a-f]{{8}}", temps[0])
    assert removed == temps
    assert _entries(refs) == ["main"]
    assert store.get("refs/main") == b"old\n"


def test_next_put_removes_dead_temps_of_this_host_only(store: DirStore) -> None:
    ours, foreign = dead_owner_tags()
    name = KEY.rsplit("/", 1)[1]
    archives = store.root / "archives"
    archives.mkdir()
    stale = archives / f".{name}.snaparc-tmp-{ours}-deadbeef"
    stale.write_bytes(b"half a record")
    far = archives / f".{name}.snaparc-tmp-{foreign}-deadbeef"
    far.write_bytes(b"another machine's push")
    assert [i.key for i in store.list("archives/")] == []  # temps are never listed
    store.put(KEY, b"{}", mode="create")
    assert not stale.exists()
    assert far.read_bytes() == b"another machine's push"
    assert [i.key for i in store.list("")] == [KEY]


def test_create_without_hard_links_is_still_create_only(
    store: DirStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    store.put(KEY, b"first", mode="create")
    with pytest.raises(ObjectExistsError):
        store.put(KEY, b"second", mode="create")
    assert store.get(KEY) == b"first"
    assert [n for n in _entries(store.root / "archives") if n.startswith(".")] == []


@pytest.mark.parametrize(
    ("err", "cls"),
    [(errno.EACCES, RemotePermissionError), (errno.ENOSPC, RemoteError)],
)
def test_put_errors_are_remote_errors(
    store: DirStore, monkeypatch: pytest.MonkeyPatch, err: int, cls: type[RemoteError]
) -> None:
    store.put(KEY, b"x", mode="create")  # the directory exists: the temp file fails
    real_open = os.open

    def failing_open(path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
        if ".snaparc-tmp-" in os.fspath(path):
            raise OSError(err, os.strerror(err))
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", failing_open)
    with pytest.raises(cls) as info:
        store.put("archives/" + "cd" * 32 + ".json", b"y", mode="create")
    assert info.value.exit_code == 10
    assert [n for n in _entries(store.root / "archives") if n.startswith(".")] == []
