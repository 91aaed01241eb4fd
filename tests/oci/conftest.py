"""Fixtures: a real OCI registry (CNCF distribution, Debian's `docker-registry`)
on 127.0.0.1, started once per session with its storage in a temp dir, and a
second instance behind htpasswd basic auth. A missing binary skips the tests,
except in CI (env CI=true), where it fails them: the Makefile's `tools`
target installs it.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from snaparc.archive.pack import plan_pack, write_archive
from tests.mirror.faultproxy import FaultProxy

USER, PASSWORD = "snaparc", "s3cret-pass"
_repo_ids = itertools.count()


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is missing in CI: the Makefile's 'tools' target installs it")
        pytest.skip(f"{tool} not installed (apt-get install docker-registry apache2-utils)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Registry:
    host: str  # 127.0.0.1:PORT
    root: Path  # the storage directory

    def url(self, repo: str) -> str:
        return f"oci://{self.host}/{repo}"

    def blob_file(self, digest: str) -> Path:
        hexd = digest.removeprefix("sha256:")
        return self.root / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"


def _start(tmp: Path, auth: Path | None) -> Iterator[Registry]:
    binary = _need("docker-registry")
    port = _free_port()
    root = tmp / "storage"
    lines = [
        "version: 0.1",
        "log:",
        "  level: error",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {root}",
        "http:",
        f"  addr: 127.0.0.1:{port}",
    ]
    if auth is not None:
        lines += ["auth:", "  htpasswd:", "    realm: snaparc-test", f"    path: {auth}"]
    config = tmp / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    with open(tmp / "registry.log", "wb") as log:
        proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1).close()
                break
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    break
                raise
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"registry did not start: {(tmp / 'registry.log').read_text()}"
                    ) from None
                time.sleep(0.05)
        yield Registry(f"127.0.0.1:{port}", root)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    yield from _start(tmp_path_factory.mktemp("registry"), None)


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    htpasswd = _need("htpasswd")
    tmp = tmp_path_factory.mktemp("auth-registry")
    secrets = tmp / "htpasswd"
    subprocess.run(
        [htpasswd, "-Bbc", str(secrets), USER, PASSWORD], check=True, capture_output=True
    )
    yield from _start(tmp, secrets)


@pytest.fixture
def proxy(registry: Registry) -> Iterator[FaultProxy]:
    """The fault-injecting proxy (tests/mirror/faultproxy.py) in front of the registry."""
    host, port = registry.host.split(":")
    p = FaultProxy((host, int(port)))
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def repo(registry: Registry) -> str:
    """A fresh repository URL (without tag) in the session registry."""
    return registry.url(f"team/adapter{next(_repo_ids)}")


@pytest.fixture(autouse=True)
def _no_ambient_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("SNAPARC_OCI_USERNAME", "SNAPARC_OCI_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def pack(src: Path, out: Path, *, level: int = 3) -> Path:
    plan = plan_pack(src, threads=2)
    with open(out, "xb") as f:
        write_archive(plan, f, level=level, threads=2)
    return out


def adapter_files(seed: int = 1, weights: int = 300_000) -> dict[str, bytes]:
    import random

    rng = random.Random(seed)
    tok = b'{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}}}\n' * 40
    return {
        "adapter/adapter_config.json": b'{"r": 8, "lora_alpha": 16}\n',
        "adapter/adapter_model.safetensors": rng.randbytes(weights),
        "adapter/tokenizer.json": tok,
        "processor/tokenizer.json": tok,  # same content: one registry blob, two layers
        "processor/preprocessor_config.json": b'{"feature_size": 128}\n',
        "README.md": b"# adapter\n",
        "scripts/run.sh": b"#!/bin/sh\necho hi\n",
        "empty.txt": b"",
    }


@pytest.fixture
def files_v1() -> dict[str, bytes]:
    return adapter_files()


@pytest.fixture
def archive_v1(tmp_path: Path, files_v1: dict[str, bytes]) -> Path:
    return pack(write_tree(tmp_path / "src_v1", files_v1), tmp_path / "v1.dlmsnap")


BIG = 9 * 1024 * 1024 + 123  # two frames: the second starts mid-file


@pytest.fixture
def big_files() -> dict[str, bytes]:
    return adapter_files(weights=BIG)


@pytest.fixture
def archive_big(tmp_path: Path, big_files: dict[str, bytes]) -> Path:
    return pack(write_tree(tmp_path / "src_big", big_files), tmp_path / "big.dlmsnap")
