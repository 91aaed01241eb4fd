"""The registry is not trusted: tampered blobs, lying manifests, moved tags.

Each is refused with exit 1 (integrity) or 10 (not found / not permitted),
and nothing is published: no output file, no unpacked tree, no temp file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import snaparc
from snaparc.errors import IdentityMismatchError, SnaparcError
from snaparc.mirror.oci.client import RegistryClient
from snaparc.mirror.oci.layout import FILEPATH, OCIArtifactError, canonical_json
from snaparc.mirror.oci.url import parse_oci_target

from .conftest import Registry, pack, write_tree


def _client(url: str) -> RegistryClient:
    return RegistryClient(parse_oci_target(url))


def _manifest(url: str) -> dict[str, Any]:
    t = parse_oci_target(url)
    assert t.reference is not None
    data, _ = _client(url).get_manifest(t.reference, 1 << 22)
    return json.loads(data)  # type: ignore[no-any-return]


def _put(repo: str, tag: str, manifest: dict[str, Any]) -> None:
    _client(f"{repo}:{tag}").put_manifest(tag, canonical_json(manifest))


def _refused(target: str, tmp_path: Path, code: int) -> SnaparcError:
    out = tmp_path / "out.dlmsnap"
    with pytest.raises(SnaparcError) as info:
        snaparc.pull(target, out)
    assert info.value.exit_code == code, info.value
    dest = tmp_path / "tree"
    with pytest.raises(SnaparcError) as again:
        snaparc.unpack(target, dest)
    assert again.value.exit_code == code
    assert not out.exists() and not dest.exists()
    assert [p.name for p in tmp_path.iterdir() if "snaparc-tmp" in p.name] == []
    return info.value


@pytest.fixture
def pushed(repo: str, archive_v1: Path) -> str:
    snaparc.push(archive_v1, f"{repo}:v1")
    return f"{repo}:v1"


@pytest.mark.parametrize(
    "path", ["adapter/adapter_model.safetensors", "adapter/adapter_config.json", "empty.txt"]
)
def test_tampered_blob_in_registry_storage(
    registry: Registry, repo: str, archive_big: Path, path: str, tmp_path: Path
) -> None:
    """The weights are a blob of two frames: the byte flipped is in the second."""
    snaparc.push(archive_big, f"{repo}:v1")
    pushed = f"{repo}:v1"
    layers = _manifest(pushed)["layers"]
    layer = next(x for x in layers if x["annotations"].get(FILEPATH) == path)
    blob = registry.blob_file(layer["digest"])
    original = blob.read_bytes()
    tampered = bytearray(original)
    if tampered:
        tampered[-7] ^= 0x01  # in the weights, inside their second frame
    else:
        tampered = bytearray(b"x")  # an empty file that grew
    blob.write_bytes(bytes(tampered))
    try:
        err = _refused(pushed, tmp_path, 1)
        assert layer["digest"][7:] in str(err)
        with pytest.raises(SnaparcError) as info:
            snaparc.verify(pushed)
        assert info.value.exit_code == 1
    finally:
        blob.write_bytes(original)
    snaparc.verify(pushed)  # and restored, it verifies again


@pytest.mark.parametrize("which", [-2, -1])  # the archive manifest, the record
def test_tampered_snaparc_layer(
    registry: Registry, pushed: str, which: int, tmp_path: Path
) -> None:
    layer = _manifest(pushed)["layers"][which]
    blob = registry.blob_file(layer["digest"])
    original = blob.read_bytes()
    blob.write_bytes(original.replace(b'"', b"'", 1))
    try:
        _refused(pushed, tmp_path, 1)
    finally:
        blob.write_bytes(original)


def _lie(m: dict[str, Any], field: str) -> None:
    layers = m["layers"]
    weight = next(x for x in layers if x["mediaType"].endswith("weight.v1.raw"))
    other = next(x for x in layers if x is not weight and x["size"] > 0)
    if field == "size":
        weight["size"] += 1
    elif field == "digest":
        weight["digest"] = other["digest"]  # another blob the repository holds
    elif field == "mediaType":
        weight["mediaType"] = "application/vnd.cncf.model.doc.v1.raw"
    elif field == "filepath":
        weight["annotations"]["org.cncf.model.filepath"] = "../../etc/passwd"
    elif field == "extra-layer":
        layers.insert(0, dict(other))
    elif field == "artifactType":
        m["artifactType"] = "application/vnd.oci.image.config.v1+json"


@pytest.mark.parametrize(
    "field", ["size", "digest", "mediaType", "filepath", "extra-layer", "artifactType"]
)
def test_manifest_whose_layer_lies(repo: str, pushed: str, field: str, tmp_path: Path) -> None:
    m = _manifest(pushed)
    _lie(m, field)
    try:
        _put(repo, "liar", m)
    except SnaparcError as exc:  # the registry itself refused it: nothing to pull
        pytest.skip(f"the registry refuses such a manifest itself: {exc}")
    err = _refused(f"{repo}:liar", tmp_path, 1)
    assert isinstance(err, OCIArtifactError)


def test_tag_moved_to_a_foreign_artifact(
    registry: Registry, repo: str, pushed: str, tmp_path: Path
) -> None:
    oras_client = pytest.importorskip("oras.client")
    src = tmp_path / "other.txt"
    src.write_bytes(b"not a snaparc archive\n")
    client = oras_client.OrasClient(hostname=registry.host, insecure=True)
    client.push(
        target=f"{pushed.removeprefix('oci://')}", files=[str(src)], disable_path_validation=True
    )
    err = _refused(pushed, tmp_path, 1)
    assert "not an artifact snaparc pushed" in str(err)


def test_tag_moved_to_a_forged_artifact(
    repo: str, pushed: str, files_v1: dict[str, bytes], tmp_path: Path
) -> None:
    """The record and archive manifest of B under the file layers of A."""
    v2 = dict(files_v1, **{"adapter/adapter_config.json": b'{"r": 64}\n'})
    b = pack(write_tree(tmp_path / "src_b", v2), tmp_path / "b.dlmsnap")
    snaparc.push(b, f"{repo}:b")
    forged = _manifest(pushed)
    forged["layers"][-2:] = _manifest(f"{repo}:b")["layers"][-2:]
    forged["annotations"] = _manifest(f"{repo}:b")["annotations"]
    _put(repo, "v1", forged)
    err = _refused(pushed, tmp_path, 1)
    assert isinstance(err, OCIArtifactError)


def test_a_pinned_digest_survives_a_moved_tag(
    repo: str, archive_v1: Path, files_v1: dict[str, bytes], tmp_path: Path
) -> None:
    digest = snaparc.push(archive_v1, f"{repo}:v1").to_json()["manifest_digest"]
    v2 = dict(files_v1, **{"README.md": b"# moved\n"})
    b = pack(write_tree(tmp_path / "src_b", v2), tmp_path / "b.dlmsnap")
    snaparc.push(b, f"{repo}:v1")  # the tag moves to another valid archive
    out = tmp_path / "pinned.dlmsnap"
    snaparc.pull(f"{repo}@{digest}", out)
    assert out.read_bytes() == archive_v1.read_bytes()


def test_registry_sending_another_manifest_for_a_digest(
    pushed: str, repo: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    digest = "sha256:" + "0" * 64
    real = RegistryClient.get_manifest

    def lying(self: RegistryClient, reference: str, limit: int) -> tuple[bytes, str]:
        return real(self, "v1", limit)

    monkeypatch.setattr(RegistryClient, "get_manifest", lying)
    err = _refused(f"{repo}@{digest}", tmp_path, 1)
    assert isinstance(err, IdentityMismatchError)


def test_not_found_is_exit_10(repo: str, tmp_path: Path) -> None:
    _refused(f"{repo}:missing", tmp_path, 10)
    _refused(f"{repo}@sha256:{'1' * 64}", tmp_path, 10)


def test_no_registry_is_exit_10(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from snaparc.mirror.oci import client as client_mod

    monkeypatch.setattr(client_mod, "_sleep", lambda s: None)  # refused, retried, given up

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _refused(f"oci://127.0.0.1:{port}/team/x:v1", tmp_path, 10)


def test_transient_failures_are_retried_then_given_up(
    pushed: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from snaparc.mirror.oci import client as client_mod
    from snaparc.mirror.oci.client import RegistryTransientError
    from snaparc.mirror.url import transfer_settings

    real = RegistryClient._send
    calls: list[str] = []
    fail = {"n": 2}

    def flaky(self: RegistryClient, method: str, url: str, headers: Any, body: Any) -> Any:
        calls.append(method)
        if method == "GET" and "/manifests/" in url and fail["n"] > 0:
            fail["n"] -= 1
            raise RegistryTransientError("connection reset (test)")
        return real(self, method, url, headers, body)

    sleeps: list[float] = []
    monkeypatch.setattr(client_mod, "_sleep", sleeps.append)
    monkeypatch.setattr(RegistryClient, "_send", flaky)
    assert snaparc.verify(pushed).archive_id  # two resets, then it works
    assert len(sleeps) == 2
    fail["n"] = 100
    with pytest.raises(SnaparcError) as info:
        snaparc.verify(pushed)
    assert info.value.exit_code == 10
    assert len(sleeps) == 2 + transfer_settings().retries
