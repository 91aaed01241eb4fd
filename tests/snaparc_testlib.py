"""Helpers shared by the top-level tests (imported by name: conftest names clash
across test directories)."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

SNAPARC = [sys.executable, "-m", "snaparc"]


def write_tree(
    root: Path,
    files: dict[str, bytes],
    *,
    executable: set[str] = frozenset(),
    empty_dirs: tuple[str, ...] = (),
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.chmod(p, 0o755 if rel in executable else 0o644)
    for d in empty_dirs:
        (root / d).mkdir(parents=True, exist_ok=True)
    return root


def safetensors_file(
    tensors: Mapping[str, tuple[str, Sequence[int], bytes]],
    *,
    metadata: Mapping[str, str] | None = None,
) -> bytes:
    """A safetensors file as the library lays one out: name -> (dtype, shape,
    data); the header padded with spaces to a multiple of 8, data in name order."""
    header: dict[str, object] = {}
    if metadata is not None:
        header["__metadata__"] = dict(metadata)
    at = 0
    for name in sorted(tensors):
        dtype, shape, data = tensors[name]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [at, at + len(data)]}
        at += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    body = b"".join(tensors[name][2] for name in sorted(tensors))
    return len(text).to_bytes(8, "little") + text + body


def lora_weights(payload: bytes, *, module: str = "model.layers.0.self_attn.q_proj") -> bytes:
    """A valid adapter safetensors file carrying `payload` as one U8 LoRA tensor
    (and an empty lora_B), for tests that need distinct, recognisable weights."""
    prefix = f"base_model.model.{module}"
    return safetensors_file(
        {
            f"{prefix}.lora_A.weight": ("U8", [len(payload)], payload),
            f"{prefix}.lora_B.weight": ("U8", [0], b""),
        }
    )


def sample_files() -> dict[str, bytes]:
    tok = b'{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}}}\n' * 50
    return {
        "adapter/adapter_config.json": b'{"r": 8, "lora_alpha": 16}\n',
        "adapter/adapter_model.safetensors": os.urandom(300_000),
        "adapter/tokenizer.json": tok,
        "processor/tokenizer.json": tok,
        "processor/preprocessor_config.json": b'{"feature_size": 128}\n',
        "scripts/run.sh": b"#!/bin/sh\necho hi\n",
        "empty.txt": b"",
        "caf\u00e9/\u00fcber.txt": b"unicode names\n",
    }


def run_snaparc(
    *args: str,
    stdin: bytes | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*SNAPARC, *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env=env,
        check=False,
        timeout=600,
    )


def tree_state(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every entry under root with its mode and content (for exact comparisons)."""
    out: dict[str, tuple[int, bytes | None]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = p.relative_to(root).as_posix()
            out[rel] = (st.st_mode, p.read_bytes() if p.is_file() and not p.is_symlink() else None)
    return out


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing in CI: the Makefile's 'tools' target installs it")
        pytest.skip(f"{name} not installed (run 'make test' as root to install it with apt-get)")
    return path


Runner = Callable[..., subprocess.CompletedProcess[bytes]]


def push_file(archive: Path, store: Any, **kwargs: Any) -> Any:
    """`push_archive` of a local archive file, opened the way every command opens it."""
    from snaparc.mirror.push import push_archive
    from snaparc.sources.archive import open_source

    with open_source(archive) as opened:
        return push_archive(opened, store, **kwargs)


def dead_owner_tags() -> tuple[str, str]:
    """Owner tags (PID@HOST, as in temp names) of a process that has exited:
    one as if it ran on this host, one as if on another machine."""
    from snaparc.publish import owner_tag

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    here = owner_tag().split("@", 1)[1]
    other = "0" * 8 if here != "0" * 8 else "1" * 8
    return f"{proc.pid}@{here}", f"{proc.pid}@{other}"


class CountingReader(io.RawIOBase):
    """A seekable file that counts the bytes handed out."""

    def __init__(self, path: Path) -> None:
        self._f = open(path, "rb", buffering=0)  # noqa: SIM115
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def readinto(self, b: Any) -> int:
        n = self._f.readinto(b) or 0
        self.bytes_read += n
        return n

    def close(self) -> None:
        self._f.close()
        super().close()


def kill_when_grown(
    argv: Sequence[str],
    files: Callable[[], list[Path]],
    size: int,
    *,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run `argv`; SIGKILL it once the one file `files()` finds (its temp or
    resume file) holds `size` bytes. Returns that file's size at the kill,
    after checking that the command was still running and left exactly one."""
    proc = subprocess.Popen(
        list(argv), env=None if env is None else dict(env),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = files()
            if found and found[0].stat().st_size >= size:
                break
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.005)
        assert proc.poll() is None, "the command ended before the kill point"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (left,) = files()
    return left.stat().st_size
