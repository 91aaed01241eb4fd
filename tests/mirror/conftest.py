"""Fixtures: a real moto S3 server on 127.0.0.1, and stores of every backend.

The moto server is started once per session and torn down at the end; every
test gets a fresh bucket, so tests do not see each other's objects.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from snaparc.mirror.store import DirStore, MemoryStore, Store
from snaparc.mirror.url import S3Settings, s3_settings
from tests.mirror.faultproxy import FaultProxy

_bucket_ids = itertools.count()
_CREDS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server_mod = pytest.importorskip("moto.server")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _fault_proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    from urllib.parse import urlsplit

    parts = urlsplit(moto_endpoint)
    assert parts.hostname is not None and parts.port is not None
    proxy = FaultProxy((parts.hostname, parts.port))
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def fault_proxy(_fault_proxy: FaultProxy) -> Iterator[FaultProxy]:
    """The fault-injecting proxy in front of the moto server, with no faults
    and an empty request log (tests/mirror/faultproxy.py)."""
    _fault_proxy.reset()
    yield _fault_proxy
    _fault_proxy.reset()


@pytest.fixture
def s3_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """AWS env vars pointing at the moto server (as a user would set them)."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    env = dict(_CREDS, AWS_ENDPOINT_URL=moto_endpoint)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def s3_bucket(s3_env: dict[str, str]) -> str:
    """A fresh, empty bucket on the moto server."""
    import boto3  # type: ignore[import-untyped]

    name = f"snaparc-test-{next(_bucket_ids)}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_settings_for_test(s3_env: dict[str, str]) -> S3Settings:
    return s3_settings(env=s3_env)


@pytest.fixture(params=["dir", "s3"])
def mirror_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A mirror URL of each backend (directory path, s3://bucket/prefix)."""
    if request.param == "dir":
        return str(tmp_path / "mirror")
    bucket = request.getfixturevalue("s3_bucket")
    return f"s3://{bucket}/mirrors/team"


@pytest.fixture(params=["memory", "dir", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A raw store of each backend, for the conformance suite."""
    if request.param == "memory":
        return MemoryStore()
    if request.param == "dir":
        return DirStore(tmp_path / "store", create=True)
    from snaparc.mirror.s3 import S3Store

    bucket = request.getfixturevalue("s3_bucket")
    settings = request.getfixturevalue("s3_settings_for_test")
    return S3Store(
        bucket, "pre/fix", settings, chunk_size=5 * 1024 * 1024, multipart_threshold=6 * 1024 * 1024
    )


# --- archives --------------------------------------------------------------------


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def pack(src: Path, out: Path, *, level: int = 3) -> Path:
    """Pack `src` into `out` with the core packer."""
    from snaparc.archive.pack import plan_pack, write_archive

    plan = plan_pack(src, threads=2)
    with open(out, "xb") as f:
        write_archive(plan, f, level=level, threads=2)
    return out


def random_files(seed: int, n: int = 5, size: int = 40_000) -> dict[str, bytes]:
    import random

    rng = random.Random(seed)
    return {f"dir{i % 2}/file{i}.bin": rng.randbytes(rng.randrange(1, size)) for i in range(n)}


@pytest.fixture
def v1_files() -> dict[str, bytes]:
    files = random_files(1)
    files["adapter_config.json"] = b'{"r": 8}\n'
    files["empty.txt"] = b""
    return files


@pytest.fixture
def archive_v1(tmp_path: Path, v1_files: dict[str, bytes]) -> Path:
    src = write_tree(tmp_path / "src_v1", v1_files)
    return pack(src, tmp_path / "v1.dlmsnap")


HF_TESTS = Path(__file__).resolve().parent.parent / "hf"


@pytest.fixture
def hf_snapshot_archive(tmp_path: Path) -> Path:
    """A packed HF snapshot export (fake adapter and processor: no torch)."""
    import os
    import sys

    if str(HF_TESTS) not in sys.path:
        sys.path.insert(0, str(HF_TESTS))
    hf_fakes = pytest.importorskip("hf_fakes")
    from snaparc.api import pack as pack_directory
    from snaparc.hf.export import Store, export_snapshot, load_base_spec

    store = tmp_path / "hf-src" / "store"
    vdir = hf_fakes.write_fake_adapter(store / "adapter/versions/v0001", payload=os.urandom(50_000))
    (store / "adapter/current.txt").write_text("adapter/versions/v0001\n")
    spec = load_base_spec("qwen2-audio-7b-instruct")
    result = export_snapshot(Store(store), spec, processor=hf_fakes.FakeProcessor())
    assert vdir.exists()
    out = tmp_path / "hf-src" / "snap.dlmsnap"
    pack_directory(result.export_dir, out)
    return out
