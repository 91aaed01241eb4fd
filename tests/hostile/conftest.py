"""Fixtures for the hostile-archive suite: an arena with a canary, and one
helper that runs every reading command on an archive and checks the contract.

The arena is a directory holding the unpack target (`out`, absent at first)
beside a canary directory and a canary file. The staging directory of an
unpack is a sibling of the target, so a `..` that escaped it would land in
the arena and touch the canary. After each rejected run the arena must hold
exactly the canary (no target, no staging, no partial file), with every
byte, mode and mtime unchanged.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from snaparc.api import unpack as unpack_path
from snaparc.archive.catfile import cat_file
from snaparc.archive.listing import read_listing
from snaparc.cli import main
from snaparc.errors import SnaparcError
from snaparc.format.limits import DEFAULT_LIMITS, Limits

CANARY_MTIME_NS = 1_234_567_890_123_456_789


def make_canary(root: Path) -> None:
    """A small tree with fixed modes and mtimes beside the target."""
    (root / "canary" / "sub").mkdir(parents=True)
    (root / "canary" / "keep.txt").write_bytes(b"keep me\n")
    (root / "canary" / "sub" / "deep.bin").write_bytes(bytes(range(256)))
    (root / "canary.txt").write_bytes(b"sibling file\n")
    for p in (
        root / "canary" / "sub" / "deep.bin",
        root / "canary" / "keep.txt",
        root / "canary.txt",
    ):
        os.chmod(p, 0o640)
        os.utime(p, ns=(CANARY_MTIME_NS, CANARY_MTIME_NS))
    for p in (root / "canary" / "sub", root / "canary"):
        os.chmod(p, 0o750)
        os.utime(p, ns=(CANARY_MTIME_NS, CANARY_MTIME_NS))


Snapshot = dict[str, tuple[int, int, int, bytes | str | None]]


def snapshot(root: Path) -> Snapshot:
    """Every entry under root (root included): mode, mtime_ns, size, content."""
    out: Snapshot = {}

    def add(p: Path) -> None:
        st = p.lstat()
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            content: bytes | str | None = os.readlink(p)
        elif p.is_file():
            content = p.read_bytes()
        else:
            content = None
        out[rel] = (st.st_mode, st.st_mtime_ns, st.st_size if content is not None else 0, content)

    add(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            add(Path(dirpath) / name)
    return out


def tree_files(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """Relative path -> (permission bits, bytes or None for dirs), root excluded."""
    out: dict[str, tuple[int, bytes | None]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = p.relative_to(root).as_posix()
            out[rel] = (st.st_mode & 0o7777, p.read_bytes() if p.is_file() else None)
    return out


@dataclass
class Arena:
    root: Path
    archive_dir: Path
    canary_state: Snapshot = field(default_factory=dict)
    baseline_names: set[str] = field(default_factory=set)

    @property
    def target(self) -> Path:
        return self.root / "out"

    def write_archive(self, data: bytes, name: str = "a.dlmsnap") -> Path:
        p = self.archive_dir / name
        p.write_bytes(data)
        return p

    def assert_untouched(self, *, target_state: Snapshot | None = None) -> None:
        """Canary unchanged; the arena holds nothing new (the old target if given)."""
        names = set(os.listdir(self.root))
        expected = set(self.baseline_names)
        if target_state is not None:
            expected.add("out")
        assert names == expected, f"arena changed: {sorted(names ^ expected)}"
        assert snapshot(self.root / "canary") == self.canary_state["canary"]
        assert snapshot(self.root / "canary.txt") == self.canary_state["canary.txt"]
        if target_state is not None:
            assert snapshot(self.target) == target_state, "the previous target changed"

    def plant_old_target(self) -> Snapshot:
        """An existing tree at the target, for `--force` runs."""
        (self.target / "old").mkdir(parents=True)
        (self.target / "old" / "model.bin").write_bytes(b"old weights\n")
        (self.target / "README").write_bytes(b"previous version\n")
        os.utime(self.target / "README", ns=(CANARY_MTIME_NS, CANARY_MTIME_NS))
        return snapshot(self.target)


@pytest.fixture
def arena(tmp_path: Path) -> Arena:
    root = tmp_path / "arena"
    root.mkdir()
    make_canary(root)
    archive_dir = tmp_path / "in"
    archive_dir.mkdir()
    a = Arena(root, archive_dir)
    a.canary_state = {
        "canary": snapshot(root / "canary"),
        "canary.txt": snapshot(root / "canary.txt"),
    }
    a.baseline_names = set(os.listdir(root))
    return a


class NonSeekable(io.RawIOBase):
    """A pipe-like stream over bytes: readinto only, not seekable."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b: Any) -> int:
        return self._buf.readinto(b)


def limits_args(limits: Limits) -> list[str]:
    out = []
    if limits.max_manifest_bytes != DEFAULT_LIMITS.max_manifest_bytes:
        out += ["--max-manifest-bytes", str(limits.max_manifest_bytes)]
    if limits.max_files != DEFAULT_LIMITS.max_files:
        out += ["--max-files", str(limits.max_files)]
    if limits.max_total_bytes != DEFAULT_LIMITS.max_total_bytes:
        out += ["--max-total-bytes", str(limits.max_total_bytes)]
    return out


# Which operation each expectation key runs:
#   stream:  verify, unpack (fresh and --force over an old tree), cat from a pipe
#   ls:      ls of a seekable file (reads the head and the seek table)
#   ls_pipe: ls from a pipe (reads the head only)
#   cat:     cat of a seekable file (reads the head, the seek table and one blob)
OPS = ("stream", "ls", "ls_pipe", "cat")


def _check_exc(exc: BaseException, cls: type[SnaparcError], what: str) -> None:
    assert type(exc) is cls, f"{what}: raised {type(exc).__name__}: {exc} (want {cls.__name__})"


@dataclass
class Rejecter:
    arena: Arena
    capsys: pytest.CaptureFixture[bytes]

    def _cli(self, argv: list[str], cls: type[SnaparcError], what: str) -> bytes:
        self.capsys.readouterr()
        code = main(argv)
        out = self.capsys.readouterr()
        assert code == cls.exit_code, (
            f"{what}: exit {code}, want {cls.exit_code} ({cls.__name__}); "
            f"stderr: {out.err.decode(errors='replace')[-2000:]}"
        )
        return out.out

    def reject(
        self,
        data: bytes,
        expect: dict[str, type[SnaparcError] | None],
        *,
        cat_path: str = "run.sh",
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        """Every command in `expect` must refuse `data` with that exact class and
        exit code and leave the arena (and an old target under --force) intact."""
        a = self.arena
        archive = a.write_archive(data)
        lim = limits_args(limits)
        for key in expect:
            assert key in OPS, key
        stream = expect.get("stream")
        if stream is not None:
            # The CLI gives the exit code, the API the class; together the four
            # runs cover verify, unpack fresh, unpack --force and cat from a pipe.
            self._cli(["verify", str(archive), "--quiet", "--threads", "2", *lim], stream, "verify")

            with pytest.raises(SnaparcError) as ei:
                unpack_path(archive, a.target, threads=2, limits=limits)
            _check_exc(ei.value, stream, "unpack_path")
            a.assert_untouched()

            old = a.plant_old_target()
            self._cli(
                ["unpack", str(archive), "-C", str(a.target), "--force", "--quiet", *lim],
                stream,
                "unpack --force",
            )
            a.assert_untouched(target_state=old)
            _rmtree(a.target)

            out = io.BytesIO()
            with pytest.raises(SnaparcError) as ei:
                cat_file(NonSeekable(data), cat_path, out, limits=limits, threads=2)  # type: ignore[arg-type]
            _check_exc(ei.value, stream, "cat_file(pipe)")
            assert out.getvalue() == b"", "cat wrote bytes before the archive verified"
        ls = expect.get("ls")
        if ls is not None:
            self._cli(["ls", str(archive), *lim], ls, "ls")
            with pytest.raises(SnaparcError) as ei, open(archive, "rb") as f:
                read_listing(f, limits=limits)
            _check_exc(ei.value, ls, "read_listing")
        ls_pipe = expect.get("ls_pipe")
        if ls_pipe is not None:
            with pytest.raises(SnaparcError) as ei:
                read_listing(NonSeekable(data), limits=limits)  # type: ignore[arg-type]
            _check_exc(ei.value, ls_pipe, "read_listing(pipe)")
        cat = expect.get("cat")
        if cat is not None:
            got = self._cli(["cat", str(archive), cat_path, "--threads", "2", *lim], cat, "cat")
            assert got == b"", "cat printed bytes of a rejected archive"
            out = io.BytesIO()
            with pytest.raises(SnaparcError) as ei, open(archive, "rb") as f:
                cat_file(f, cat_path, out, limits=limits, threads=2)
            _check_exc(ei.value, cat, "cat_file")
            assert out.getvalue() == b""
        a.assert_untouched()


def _rmtree(p: Path) -> None:
    import shutil

    if p.exists():
        for dirpath, dirnames, _ in os.walk(p):
            for d in dirnames:
                os.chmod(os.path.join(dirpath, d), 0o700)
        shutil.rmtree(p)


@pytest.fixture
def rejecter(arena: Arena, capsysbinary: pytest.CaptureFixture[bytes]) -> Iterator[Rejecter]:
    yield Rejecter(arena, capsysbinary)
