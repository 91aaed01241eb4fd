"""Side files (signatures, keys, indexes, specs, pointers, password files,
mirror objects) must be regular files: anything else is refused at once.

A FIFO opened for reading blocks until a writer appears, so every test here
runs under a timeout: before `snaparc.sources.regular`, each FIFO case hung.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
from snaparc_testlib import SNAPARC

from snaparc.airgap import minisign as ms
from snaparc.errors import InputNotFoundError, IOFailure, NotRegularFileError
from snaparc.sources.regular import open_regular_file, read_regular_file

pytestmark = pytest.mark.timeout(20)

KINDS = ("fifo", "directory")


def _make(path: Path, kind: str) -> Path:
    """Put a FIFO or a directory at `path`, replacing a file there."""
    if path.is_file():
        path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    return path


def _named(kind: str) -> str:
    return "FIFO" if kind == "fifo" else "directory"


def _refused(exc: BaseException, path: Path, kind: str) -> None:
    assert isinstance(exc, NotRegularFileError), repr(exc)
    assert exc.exit_code == 2
    assert exc.path == str(path)
    assert str(path) in str(exc) and _named(kind) in str(exc), str(exc)


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess, killed if it blocks."""
    return subprocess.run(
        [*SNAPARC, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        timeout=15,
        check=False,
    )


def _cli_refused(proc: subprocess.CompletedProcess[str], path: Path, kind: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert f"{path} is a {_named(kind)}, not a regular file" in proc.stderr, proc.stderr


# --- the mechanism -----------------------------------------------------------


def test_regular_file_is_read_and_opened(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"hello")
    assert read_regular_file(p, limit=5, what="test file") == b"hello"
    with open_regular_file(p, what="test file") as f:
        assert f.read() == b"hello"
    link = tmp_path / "link"
    link.symlink_to(p)
    assert read_regular_file(link, limit=5, what="test file") == b"hello"


@pytest.mark.parametrize("kind", KINDS)
def test_fifo_and_directory_are_refused(tmp_path: Path, kind: str) -> None:
    p = _make(tmp_path / "side", kind)
    with pytest.raises(NotRegularFileError) as info:
        read_regular_file(p, limit=100, what="side file")
    _refused(info.value, p, kind)
    assert "side file" in str(info.value)
    assert info.value.kind == _named(kind)
    with pytest.raises(NotRegularFileError):
        open_regular_file(p, what="side file")


def test_symlink_to_a_fifo_is_refused(tmp_path: Path) -> None:
    fifo = _make(tmp_path / "pipe", "fifo")
    link = tmp_path / "link"
    link.symlink_to(fifo)
    with pytest.raises(NotRegularFileError, match="FIFO"):
        read_regular_file(link, limit=100, what="side file")


def test_socket_and_device_are_refused(tmp_path: Path) -> None:
    sock_path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(sock_path))
        with pytest.raises(NotRegularFileError, match="socket") as info:
            read_regular_file(sock_path, limit=100, what="side file")
        assert str(sock_path) in str(info.value)
    with pytest.raises(NotRegularFileError, match="character device"):
        read_regular_file("/dev/null", limit=100, what="side file")


def test_missing_file_default_and_custom_error(tmp_path: Path) -> None:
    p = tmp_path / "absent"
    with pytest.raises(InputNotFoundError, match="absent") as info:
        read_regular_file(p, limit=100, what="side file")
    assert info.value.exit_code == 2
    with pytest.raises(InputNotFoundError):
        open_regular_file(tmp_path / "absent" / "below", what="side file")
    with pytest.raises(ms.MissingSignatureError, match="side file"):
        read_regular_file(p, limit=100, what="side file", missing=ms.MissingSignatureError)


def test_too_large_is_refused_with_the_callers_error(tmp_path: Path) -> None:
    p = tmp_path / "big"
    p.write_bytes(b"x" * 101)
    assert read_regular_file(p, limit=101, what="side file") == b"x" * 101
    with pytest.raises(ms.MalformedKeyError, match="larger than 100 bytes"):
        read_regular_file(p, limit=100, what="side file", too_large=ms.MalformedKeyError)


def test_unreadable_file_is_an_io_failure(tmp_path: Path) -> None:
    p = tmp_path / "loop"
    p.symlink_to(p)  # ELOOP: refused by open, whoever runs the test
    with pytest.raises(IOFailure, match="loop"):
        read_regular_file(p, limit=100, what="side file")


def test_not_regular_file_error_is_documented() -> None:
    from snaparc.errors import ALL_ERROR_CLASSES

    assert NotRegularFileError in ALL_ERROR_CLASSES
    spec = (Path(__file__).parent.parent / "spec" / "FORMAT.md").read_text(encoding="utf-8")
    assert "`NotRegularFileError`" in spec
