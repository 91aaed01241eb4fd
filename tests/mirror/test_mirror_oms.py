"""Push and pull carry the OMS bundles travelling with an archive.

The mirror keeps them at `signatures/<ID>/oms.json` (and `hub.oms.json`);
pull writes them beside the rebuilt file, materialize from a mirror target
beside its tree. A bundle that does not list the archive's tree is refused
(exit 11) by push before anything is uploaded, and by pull before anything
is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import snaparc.api as api
from snaparc.cli import main

model_signing = pytest.importorskip("model_signing")


def _keys(root: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    sec, pub = root / "k.pem", root / "pub.pem"
    sec.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return sec, pub


def _archive(root: Path, tag: bytes) -> Path:
    src = root / f"src-{tag.decode()}"
    (src / "adapter").mkdir(parents=True)
    (src / "adapter/adapter_model.safetensors").write_bytes(tag * 10_000 + os.urandom(1000))
    (src / "adapter/adapter_config.json").write_bytes(b'{"r": 8}\n')
    out = root / f"{tag.decode()}.dlmsnap"
    api.pack(src, out)
    return out


def _ms_verify(tree: Path, sig: Path, pub: Path) -> None:
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=pub).set_hashing_config(
        model_signing.hashing.Config()
    ).verify(tree, sig)


def test_push_and_pull_carry_the_bundle(mirror_url: str, tmp_path: Path) -> None:
    sec, pub = _keys(tmp_path)
    archive = _archive(tmp_path, b"a")
    bundle = api.sign(archive, sec, oms=True).signature
    pushed = api.push(archive, mirror_url, ref="main")
    assert pushed.signatures == ("oms.json",)
    assert pushed.to_json()["signatures"] == ["oms.json"]
    pulled = api.pull(f"{mirror_url}:main", tmp_path / "back.dlmsnap")
    assert pulled.signatures == (tmp_path / "back.dlmsnap.oms.json",)
    assert (tmp_path / "back.dlmsnap.oms.json").read_bytes() == bundle.read_bytes()
    api.unpack(tmp_path / "back.dlmsnap", tmp_path / "tree")
    _ms_verify(tmp_path / "tree", tmp_path / "back.dlmsnap.oms.json", pub)
    # materialize straight from the mirror needs an HF snapshot; unpack has no
    # bundle to carry, so the mirror's bundle is checked with verify instead.
    assert api.verify(
        f"{mirror_url}:main", oms_signature=tmp_path / "back.dlmsnap.oms.json", public_key=pub
    ).oms


def test_a_mirror_without_bundles_pulls_as_before(tmp_path: Path) -> None:
    archive = _archive(tmp_path, b"b")
    mirror = tmp_path / "mirror"
    assert api.push(archive, str(mirror), ref="r").signatures == ()
    assert not (mirror / "signatures").exists()
    assert api.pull(f"{mirror}:r", tmp_path / "out.dlmsnap").signatures == ()
    assert sorted(p.name for p in tmp_path.glob("out.dlmsnap*")) == ["out.dlmsnap"]


def test_push_refuses_a_bundle_of_another_archive_before_uploading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sec, _ = _keys(tmp_path)
    a, b = _archive(tmp_path, b"a"), _archive(tmp_path, b"b")
    api.sign(a, sec, oms=True)
    b.with_name("b.dlmsnap.oms.json").write_bytes(a.with_name("a.dlmsnap.oms.json").read_bytes())
    mirror = tmp_path / "mirror"
    assert main(["push", str(b), str(mirror), "--ref", "r", "-q"]) == 11
    assert "travelling with the archive" in capsys.readouterr().err
    assert not mirror.exists() or not any(p.is_file() for p in mirror.rglob("*"))


def test_pull_refuses_a_mirror_bundle_that_does_not_fit_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sec, _ = _keys(tmp_path)
    a, b = _archive(tmp_path, b"a"), _archive(tmp_path, b"b")
    api.sign(a, sec, oms=True)
    mirror = tmp_path / "mirror"
    api.push(b, str(mirror), ref="r")
    bid = api.ls(b).archive_id
    (mirror / "signatures" / bid).mkdir(parents=True)
    (mirror / "signatures" / bid / "oms.json").write_bytes(
        a.with_name("a.dlmsnap.oms.json").read_bytes()
    )
    out = tmp_path / "out.dlmsnap"
    assert main(["pull", f"{mirror}:r", "-o", str(out), "-q"]) == 11
    assert "signatures" in capsys.readouterr().err
    assert not out.exists() and not out.with_name("out.dlmsnap.oms.json").exists()
    (mirror / "signatures" / bid / "oms.json").write_text(json.dumps({"mediaType": "x"}))
    assert main(["pull", f"{mirror}:r", "-o", str(out), "-q"]) == 11
    assert not out.exists()


def test_an_existing_bundle_beside_the_output_needs_force(tmp_path: Path) -> None:
    sec, _ = _keys(tmp_path)
    a = _archive(tmp_path, b"a")
    api.sign(a, sec, oms=True)
    mirror = tmp_path / "mirror"
    api.push(a, str(mirror), ref="r")
    out = tmp_path / "out.dlmsnap"
    out.with_name("out.dlmsnap.oms.json").write_text("mine")
    assert main(["pull", f"{mirror}:r", "-o", str(out), "-q"]) == 5
    assert not out.exists()
    assert main(["pull", f"{mirror}:r", "-o", str(out), "-q", "--force"]) == 0
    assert out.with_name("out.dlmsnap.oms.json").read_text() != "mine"


def test_signatures_live_while_their_record_does(mirror_url: str, tmp_path: Path) -> None:
    """check knows signature keys (not 'unexpected'); gc keeps those of live
    archives and takes those of removed ones."""
    sec, _pub = _keys(tmp_path)
    keep, drop = _archive(tmp_path, b"k"), _archive(tmp_path, b"d")
    for archive, ref in ((keep, "keep"), (drop, "drop")):
        api.sign(archive, sec, oms=True)
        api.push(archive, mirror_url, ref=ref)
    checked = api.mirror_check(mirror_url, read_data=True)
    assert checked.ok and checked.report.unexpected == [] and checked.report.orphans == 0
    drop_id = api.verify(drop).archive_id
    keep_id = api.verify(keep).archive_id
    api.mirror_rm(f"{mirror_url}@{drop_id}", force=True)
    assert api.mirror_check(mirror_url).report.orphans > 0
    collected = api.mirror_gc(mirror_url)
    assert f"signatures/{drop_id}/oms.json" in collected.report.deleted
    assert not any(k.startswith(f"signatures/{keep_id}/") for k in collected.report.deleted)
    after = api.mirror_check(mirror_url, read_data=True)
    assert after.ok and after.report.orphans == 0 and after.report.unexpected == []
    pulled = api.pull(f"{mirror_url}:keep", tmp_path / "kept.dlmsnap")
    assert pulled.signatures == (tmp_path / "kept.dlmsnap.oms.json",)
