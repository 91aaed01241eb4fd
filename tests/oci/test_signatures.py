"""OMS bundles travel through an OCI registry as referrers of the artifact
(spec/OCI.md, section 4, "Signatures"), as the directory and S3 mirrors carry
them (`signatures/<ID>/<KIND>`, spec/MIRROR.md).

Against the real registry (CNCF distribution 2.8, which has no referrers API:
the referrers tag `sha256-<hex>` is used): push attaches the bundle beside a
local archive; pull writes it beside the rebuilt file, where `model_signing`
and `snaparc verify --oms-signature` accept it; a bundle the registry damaged,
or one of another tree, is refused (exit 11) before anything is written; an
artifact without referrers pulls as before.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

import snaparc.api as api
from snaparc.cli import main
from snaparc.errors import SignatureError
from snaparc.mirror.oci.client import RegistryClient
from snaparc.mirror.oci.layout import OCI_MANIFEST
from snaparc.mirror.oci.signatures import (
    OCI_INDEX,
    SIGNATURE_TYPE,
    push_signatures,
    referrers_tag,
)
from snaparc.mirror.oci.url import parse_oci_target
from tests.mirror import conftest as mirror_conftest
from tests.mirror.test_mirror_oms import _archive, _keys, _ms_verify

from .conftest import Registry

pytest.importorskip("model_signing")
hf_snapshot_archive = mirror_conftest.hf_snapshot_archive  # the fixture


def _index(registry: Registry, repo: str, digest: str) -> dict[str, object]:
    name = repo.split("/", 3)[3]
    req = urllib.request.Request(
        f"http://{registry.host}/v2/{name}/manifests/{referrers_tag(digest)}",
        headers={"Accept": OCI_INDEX},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def test_push_attaches_the_bundle_and_pull_writes_it(
    registry: Registry, repo: str, tmp_path: Path
) -> None:
    sec, pub = _keys(tmp_path)
    archive = _archive(tmp_path, b"a")
    bundle = api.sign(archive, sec, oms=True).signature
    pushed = api.push(archive, f"{repo}:v1")
    assert pushed.signatures == ("oms.json",)
    assert pushed.to_json()["signatures"] == ["oms.json"]
    index = _index(registry, repo, pushed.report.manifest_digest)
    (entry,) = index["manifests"]  # type: ignore[misc]
    assert entry["artifactType"] == SIGNATURE_TYPE
    assert entry["mediaType"] == OCI_MANIFEST

    out = tmp_path / "back.dlmsnap"
    pulled = api.pull(f"{repo}:v1", out)
    assert out.read_bytes() == archive.read_bytes()
    assert pulled.signatures == (tmp_path / "back.dlmsnap.oms.json",)
    assert (tmp_path / "back.dlmsnap.oms.json").read_bytes() == bundle.read_bytes()
    api.unpack(out, tmp_path / "tree")
    _ms_verify(tmp_path / "tree", tmp_path / "back.dlmsnap.oms.json", pub)
    assert api.verify(
        f"{repo}:v1", oms_signature=tmp_path / "back.dlmsnap.oms.json", public_key=pub
    ).oms
    # by digest too
    pulled = api.pull(f"{repo}@{pushed.report.manifest_digest}", tmp_path / "d.dlmsnap")
    assert pulled.signatures == (tmp_path / "d.dlmsnap.oms.json",)


def test_the_latest_bundle_of_a_kind_travels(repo: str, registry: Registry, tmp_path: Path) -> None:
    sec, _ = _keys(tmp_path)
    archive = _archive(tmp_path, b"a")
    api.sign(archive, sec, oms=True)
    first = api.push(archive, f"{repo}:v1")
    (tmp_path / "k2").mkdir()
    sec2, pub2 = _keys(tmp_path / "k2")
    archive.with_name("a.dlmsnap.oms.json").unlink()
    bundle = api.sign(archive, sec2, oms=True).signature
    api.push(archive, f"{repo}:v1")
    # one referrer of the kind in the referrers tag: the new one replaced it
    (entry,) = _index(registry, repo, first.report.manifest_digest)["manifests"]  # type: ignore[misc]
    assert entry["annotations"]["org.snaparc.signature.kind"] == "oms.json"
    out = tmp_path / "out.dlmsnap"
    api.pull(f"{repo}:v1", out)
    assert out.with_name("out.dlmsnap.oms.json").read_bytes() == bundle.read_bytes()
    assert api.verify(
        f"{repo}:v1", oms_signature=out.with_name("out.dlmsnap.oms.json"), public_key=pub2
    ).oms


def test_an_artifact_without_signatures_pulls_as_before(repo: str, tmp_path: Path) -> None:
    archive = _archive(tmp_path, b"b")
    assert api.push(archive, f"{repo}:v1").signatures == ()
    out = tmp_path / "out.dlmsnap"
    assert api.pull(f"{repo}:v1", out).signatures == ()
    assert sorted(p.name for p in tmp_path.glob("out.dlmsnap*")) == ["out.dlmsnap"]


def test_a_bundle_damaged_in_the_registry_is_refused_and_nothing_is_written(
    registry: Registry, repo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sec, _ = _keys(tmp_path)
    archive = _archive(tmp_path, b"a")
    bundle = api.sign(archive, sec, oms=True).signature
    api.push(archive, f"{repo}:v1")
    import hashlib

    blob = registry.blob_file("sha256:" + hashlib.sha256(bundle.read_bytes()).hexdigest())
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    out = tmp_path / "out.dlmsnap"
    assert main(["pull", f"{repo}:v1", "-o", str(out), "-q"]) == 11
    assert "damaged or tampered with" in capsys.readouterr().err
    assert not out.exists() and not out.with_name("out.dlmsnap.oms.json").exists()


def test_a_registry_bundle_of_another_tree_is_refused(
    repo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sec, _ = _keys(tmp_path)
    a, b = _archive(tmp_path, b"a"), _archive(tmp_path, b"b")
    bundle = api.sign(a, sec, oms=True).signature
    pushed = api.push(b, f"{repo}:v1")
    digest = pushed.report.manifest_digest
    client = RegistryClient(parse_oci_target(f"{repo}:v1"))
    data, _ = client.get_manifest(digest, 1 << 22)
    subject = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(data)}
    push_signatures(client, subject, pushed.report.archive_id, {"oms.json": bundle.read_bytes()})
    out = tmp_path / "out.dlmsnap"
    assert main(["pull", f"{repo}:v1", "-o", str(out), "-q"]) == 11
    assert "travelling with the archive" in capsys.readouterr().err
    assert not out.exists() and not out.with_name("out.dlmsnap.oms.json").exists()


def test_push_refuses_a_bundle_of_another_archive_before_uploading(
    repo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sec, _ = _keys(tmp_path)
    a, b = _archive(tmp_path, b"a"), _archive(tmp_path, b"b")
    api.sign(a, sec, oms=True)
    b.with_name("b.dlmsnap.oms.json").write_bytes(a.with_name("a.dlmsnap.oms.json").read_bytes())
    assert main(["push", str(b), f"{repo}:v1", "-q"]) == 11
    assert "travelling with the archive" in capsys.readouterr().err
    assert main(["pull", f"{repo}:v1", "-o", str(tmp_path / "o.dlmsnap"), "-q"]) == 10


def test_materialize_from_oci_writes_the_bundle_beside_its_tree(
    repo: str, tmp_path: Path, hf_snapshot_archive: Path
) -> None:
    sec, _ = _keys(tmp_path)
    archive = hf_snapshot_archive
    bundle = api.sign(archive, sec, oms=True).signature
    api.push(archive, f"{repo}:v1")
    done = api.materialize(f"{repo}:v1", tmp_path / "tree")
    assert done.oms_signature == tmp_path / "tree.oms.json"
    assert done.oms_signature.read_bytes() == bundle.read_bytes()
    # the hub-cache form carries the hub snapshot's bundle (sign writes both
    # for an HF snapshot archive); its resume file beside the repos is gone after
    hub = archive.with_name(archive.name + ".hub.oms.json")
    cached = api.materialize_cache(f"{repo}:v1", repo_id="org/adapter", cache_dir=tmp_path / "hub")
    assert cached.oms_signature is not None
    assert cached.oms_signature.read_bytes() == hub.read_bytes()
    assert not [p for p in (tmp_path / "hub").iterdir() if ".snaparc-" in p.name]


def test_a_referrer_of_another_artifact_or_too_large_is_refused(
    repo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sec, _ = _keys(tmp_path)
    a = _archive(tmp_path, b"a")
    bundle = api.sign(a, sec, oms=True).signature.read_bytes()
    pushed = api.push(a, f"{repo}:v1")
    digest = pushed.report.manifest_digest
    client = RegistryClient(parse_oci_target(f"{repo}:v1"))
    data, _ = client.get_manifest(digest, 1 << 22)
    from snaparc.mirror.oci import signatures as sigs

    # a signature manifest whose subject is another manifest, listed under this one
    other = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "0" * 64, "size": len(data)}
    forged = sigs.signature_manifest(other, pushed.report.archive_id, "oms.json", bundle, "9")
    _, _ = client.put_manifest_with_headers(sigs.sha256_digest(forged), forged, OCI_MANIFEST)
    entry = {
        "mediaType": OCI_MANIFEST,
        "digest": sigs.sha256_digest(forged),
        "size": len(forged),
        "artifactType": SIGNATURE_TYPE,
        "annotations": {sigs.KIND_ANNOTATION: "oms.json", sigs.CREATED: "9"},
    }
    index = sigs.canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]})
    client.put_manifest_with_headers(referrers_tag(digest), index, OCI_INDEX)
    out = tmp_path / "out.dlmsnap"
    assert main(["pull", f"{repo}:v1", "-o", str(out), "-q"]) == 11
    assert "is not attached to" in capsys.readouterr().err
    assert not out.exists()


def test_mirror_ls_leaves_the_referrers_tag_out(repo: str, tmp_path: Path) -> None:
    sec, _ = _keys(tmp_path)
    archive = _archive(tmp_path, b"a")
    api.sign(archive, sec, oms=True)
    pushed = api.push(archive, f"{repo}:v1")
    listed = api.mirror_ls(repo)
    assert [t.tag for t in listed.listing.tags] == ["v1"]  # type: ignore[union-attr]
    assert listed.listing.refs == {"v1": pushed.report.archive_id}  # type: ignore[union-attr]


class _ReferrersRegistry:
    """A registry with the referrers API (distribution spec 1.1), in memory:
    the PUT of a manifest with a subject answers `OCI-Subject`, and
    `referrers/<digest>` lists it. Just what `signatures` uses."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, bytes] = {}
        self.tags_put: list[str] = []

    def describe(self, what: str = "") -> str:
        return f"fake{what}"

    def head_blob(self, digest: str) -> int | None:
        return len(self.blobs[digest]) if digest in self.blobs else None

    def upload_small_blob(self, digest: str, data: bytes) -> None:
        self.blobs[digest] = data

    def get_small_blob(self, digest: str, limit: int) -> bytes:
        return self.blobs[digest]

    def put_manifest_with_headers(
        self, reference: str, data: bytes, content_type: str
    ) -> tuple[str | None, dict[str, str]]:
        from snaparc.mirror.oci.layout import sha256_digest

        self.manifests[reference] = data
        if not reference.startswith("sha256:"):
            self.tags_put.append(reference)
        subject = json.loads(data).get("subject")
        return sha256_digest(data), ({"OCI-Subject": subject["digest"]} if subject else {})

    def get_manifest(self, reference: str, limit: int) -> tuple[bytes, str]:
        return self.manifests[reference], OCI_MANIFEST

    def get_referrers(self, digest: str, limit: int) -> bytes:
        from snaparc.mirror.oci.layout import canonical_json, sha256_digest

        entries = []
        for ref, data in self.manifests.items():
            obj = json.loads(data)
            if ref.startswith("sha256:") and (obj.get("subject") or {}).get("digest") == digest:
                entries.append(
                    {
                        "mediaType": OCI_MANIFEST,
                        "digest": sha256_digest(data),
                        "size": len(data),
                        "artifactType": obj.get("artifactType"),
                        "annotations": obj.get("annotations"),
                    }
                )
        return canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})


def test_a_registry_with_the_referrers_api_lists_them_itself_and_the_latest_travels() -> None:
    from typing import cast

    from snaparc.mirror.oci.signatures import fetch_signatures

    fake = _ReferrersRegistry()
    client = cast(RegistryClient, fake)
    subject = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "a" * 64, "size": 1234}
    push_signatures(client, subject, "b" * 64, {"oms.json": b"first"})
    push_signatures(client, subject, "b" * 64, {"oms.json": b"second", "hub.oms.json": b"hub"})
    assert fake.tags_put == []  # no referrers tag: the registry keeps the list
    found = fetch_signatures(client, subject["digest"], 1234)  # type: ignore[arg-type]
    assert {k: v[1] for k, v in found.items()} == {"oms.json": b"second", "hub.oms.json": b"hub"}
    # attached to another manifest (or another size): nothing of ours
    assert fetch_signatures(client, "sha256:" + "c" * 64, 1234) == {}
    with pytest.raises(SignatureError, match="not attached"):
        fetch_signatures(client, subject["digest"], 999)  # type: ignore[arg-type]
