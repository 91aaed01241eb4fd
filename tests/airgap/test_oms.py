"""OpenSSF model signing (OMS) interop with the real `model_signing` package.

snaparc signs from the manifest alone and `model_signing verify key` accepts
the bundle on the unpacked tree; `model_signing sign key` signs the snapshot
directory and `snaparc verify --oms-signature` accepts it on the archive.
Every tamper is refused by both tools; snaparc exits 11 naming the file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from snaparc_testlib import tree_state, write_tree

import snaparc.api as api
from snaparc.airgap.oms import envelope
from snaparc.airgap.oms.errors import (
    MalformedBundleError,
    OmsBadSignatureError,
    OmsKeyError,
    OmsKeyMismatchError,
    OmsMismatchError,
)
from snaparc.cli import main
from snaparc.errors import SignatureError, UsageError

model_signing = pytest.importorskip("model_signing")
pytest.importorskip("OpenSSL")  # model_signing's CLI needs pyopenssl beside it

FILES = {
    "adapter/adapter_config.json": b'{"r": 8}\n',
    "adapter/adapter_model.safetensors": os.urandom(200_000),
    "processor/tokenizer.json": b"{}\n",
    "a.b": b"sorts after a/ by path components, before it as a string\n",
    "a/b": b"nested\n",
    "caf\u00e9/\u00fcber.txt": b"unicode\n",
    "empty.txt": b"",
    ".gitattributes": b"*.safetensors filter=lfs\n",
    "sub/.gitignore": b"only the top-level git paths are ignored\n",
}


def _ms_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "model_signing", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _ms_verify(tree: Path, sig: Path, pub: Path, ignore_git: bool = True) -> None:
    """model_signing's `verify key`, in-process (the CLI is this plus click)."""
    hashing = model_signing.hashing.Config().set_ignored_paths(
        paths=[], ignore_git_paths=ignore_git
    )
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=pub).set_hashing_config(
        hashing
    ).verify(tree, sig)


def _ms_refuses(tree: Path, sig: Path, pub: Path) -> None:
    with pytest.raises(ValueError):
        _ms_verify(tree, sig, pub)


def _keypair(root: Path, curve: ec.EllipticCurve, name: str = "k") -> tuple[Path, Path]:
    key = ec.generate_private_key(curve)
    sec, pub = root / f"{name}.pem", root / f"{name}.pub.pem"
    sec.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,  # as `openssl ecparam -genkey`
            serialization.NoEncryption(),
        )
    )
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return sec, pub


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return _keypair(tmp_path, ec.SECP256R1())


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "snapshot", FILES)


def _pack(tree: Path, out: Path) -> Path:
    api.pack(tree, out)
    return out


@pytest.fixture
def archive(tree: Path, tmp_path: Path) -> Path:
    return _pack(tree, tmp_path / "snap.dlmsnap")


def _verify(archive: Path, sig: Path, pub: Path, *extra: str) -> int:
    argv = ["verify", str(archive), "--oms-signature", str(sig), "--public-key", str(pub)]
    return main([*argv, "-q", *extra])


def _payload(bundle: Path) -> dict:  # type: ignore[type-arg]
    doc = json.loads(bundle.read_bytes())
    return json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))  # type: ignore[no-any-return]


def _resign(payload: dict, sec: Path, out: Path) -> Path:  # type: ignore[type-arg]
    """A bundle over an edited statement, validly signed by `sec`."""
    key = serialization.load_pem_private_key(sec.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    out.write_bytes(envelope.seal(json.dumps(payload, indent=2).encode(), key))
    return out


def _subject(resources: list[dict]) -> str:  # type: ignore[type-arg]
    h = hashlib.sha256()
    for r in resources:
        h.update(bytes.fromhex(r["digest"]))
    return h.hexdigest()


# --- snaparc signs, model_signing verifies ----------------------------------------------


def test_snaparc_bundle_verifies_with_the_model_signing_cli_on_the_unpacked_tree(
    archive: Path, keys: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sec, pub = keys
    assert main(["sign", str(archive), "--oms", "-s", str(sec)]) == 0
    bundle = archive.with_name("snap.dlmsnap.oms.json")
    assert bundle.is_file()
    assert str(bundle) in capsys.readouterr().out
    api.unpack(archive, tmp_path / "out")
    done = _ms_cli("verify", "key", tmp_path / "out", "--public_key", pub, "--signature", bundle)
    assert done.returncode == 0, done.stderr
    assert "Verification succeeded" in done.stdout
    assert _verify(archive, bundle, pub) == 0


def test_the_payload_is_byte_for_byte_what_model_signing_signs(
    archive: Path, tree: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """Same statement bytes as model_signing's own signer over the directory,
    up to the order of JSON keys and of `ignore_paths`, which model_signing
    leaves to a hash-seeded set and protobuf's map (it varies between its own
    runs); snaparc writes them in one fixed order. Only the informative
    model name differs: model_signing takes the directory's name."""
    sec, _ = keys
    api.sign(archive, sec, oms=True)
    ours = base64.b64decode(
        json.loads(archive.with_name("snap.dlmsnap.oms.json").read_bytes())["dsseEnvelope"][
            "payload"
        ]
    )
    theirs_sig = tmp_path / "theirs.sig"
    model_signing.signing.Config().use_elliptic_key_signer(private_key=sec).set_hashing_config(
        model_signing.hashing.Config().set_ignored_paths(paths=[], ignore_git_paths=True)
    ).sign(tree, theirs_sig)
    theirs = base64.b64decode(json.loads(theirs_sig.read_bytes())["dsseEnvelope"]["payload"])
    ours = ours.replace(b'"name": "snap"', b'"name": "snapshot"', 1)
    theirs_doc = json.loads(theirs)
    serialization = theirs_doc["predicate"]["serialization"]
    serialization["ignore_paths"] = sorted(serialization["ignore_paths"])
    assert json.dumps(_ordered_like(theirs_doc, json.loads(ours)), indent=2).encode() == ours


def _ordered_like(value: object, like: object) -> object:
    """`value` with every object's keys in the order they have in `like`."""
    if isinstance(value, dict) and isinstance(like, dict):
        assert value.keys() == like.keys()
        return {k: _ordered_like(value[k], like[k]) for k in like}
    if isinstance(value, list) and isinstance(like, list):
        assert len(value) == len(like)
        return [_ordered_like(v, w) for v, w in zip(value, like, strict=True)]
    return value


@pytest.mark.parametrize(
    "curve", [ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()], ids=lambda c: c.name
)
def test_every_curve_model_signing_takes(
    curve: ec.EllipticCurve, archive: Path, tmp_path: Path
) -> None:
    sec, pub = _keypair(tmp_path, curve, curve.name)
    done = api.sign(archive, sec, oms=True)
    assert done.kind == "oms" and done.files == len(FILES) - 1  # .gitattributes left out
    api.unpack(archive, tmp_path / "out")
    _ms_verify(tmp_path / "out", done.signature, pub)
    assert api.verify(archive, oms_signature=done.signature, public_key=pub).oms is not None


def test_an_encrypted_key_with_a_password_file(archive: Path, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    sec = tmp_path / "enc.pem"
    sec.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
    )
    (tmp_path / "pw").write_text("s3cret\n")
    with pytest.raises(OmsKeyError, match="encrypted"):
        api.sign(archive, sec, oms=True)
    assert not archive.with_name("snap.dlmsnap.oms.json").exists()
    assert api.sign(archive, sec, oms=True, password_file=tmp_path / "pw").kind == "oms"


def test_keys_model_signing_does_not_take_are_refused(archive: Path, tmp_path: Path) -> None:
    sec = tmp_path / "ed.pem"
    sec.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    assert main(["sign", str(archive), "--oms", "-s", str(sec)]) == 11
    (tmp_path / "junk.pem").write_text("not a key\n")
    assert main(["sign", str(archive), "--oms", "-s", str(tmp_path / "junk.pem")]) == 11
    assert not archive.with_name("snap.dlmsnap.oms.json").exists()


def test_ignore_rules_follow_model_signing(
    archive: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """Git paths at the top are left out by default; --oms-include-git-paths
    signs them; --oms-ignore DIR leaves out all below DIR; model_signing
    verifies each bundle with the matching options."""
    sec, pub = keys
    api.unpack(archive, tmp_path / "out")
    out = tmp_path / "out"
    bundle = archive.with_name("snap.dlmsnap.oms.json")

    api.sign(archive, sec, oms=True, oms_ignore_git_paths=False)
    names = {r["name"] for r in _payload(bundle)["predicate"]["resources"]}
    assert ".gitattributes" in names and "sub/.gitignore" in names
    _ms_verify(out, bundle, pub, ignore_git=False)
    _ms_refuses(out, bundle, pub)  # model_signing's default leaves .gitattributes out

    api.sign(archive, sec, oms=True, oms_ignore=["adapter"])
    names = {r["name"] for r in _payload(bundle)["predicate"]["resources"]}
    assert not any(n.startswith("adapter/") for n in names)
    assert ".gitattributes" not in names and "sub/.gitignore" in names
    _ms_verify(out, bundle, pub)  # the bundle's ignore_paths carry "adapter"
    assert api.verify(archive, oms_signature=bundle, public_key=pub).oms is not None


# --- model_signing signs, snaparc verifies -----------------------------------------------


def test_model_signing_cli_bundle_verifies_against_the_archive(
    archive: Path, tree: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    sec, pub = keys
    sig = tmp_path / "model.sig"
    done = _ms_cli("sign", "key", tree, "--private_key", sec, "--signature", sig)
    assert done.returncode == 0, done.stderr
    assert _verify(archive, sig, pub) == 0
    result = api.verify(archive, oms_signature=sig, public_key=pub)
    assert result.oms is not None and result.oms["files"] == len(FILES) - 1
    assert result.to_json()["oms_signature"]["model_name"] == "snapshot"


def test_a_blake3_bundle_checks_against_the_manifest_blake3(
    archive: Path, tree: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    sec, pub = keys
    sig = tmp_path / "b3.sig"
    model_signing.signing.Config().use_elliptic_key_signer(private_key=sec).set_hashing_config(
        model_signing.hashing.Config().use_file_serialization(hashing_algorithm="blake3")
    ).sign(tree, sig)
    result = api.verify(archive, oms_signature=sig, public_key=pub)
    assert result.oms is not None and result.oms["hash_type"] == "blake3"


# --- tampering: both tools refuse ------------------------------------------------------


@pytest.fixture
def signed(archive: Path, tree: Path, keys: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """(snaparc's bundle of the archive, model_signing's bundle of the tree)."""
    sec, _ = keys
    ours = api.sign(archive, sec, oms=True).signature
    theirs = tmp_path / "theirs.sig"
    model_signing.signing.Config().use_elliptic_key_signer(private_key=sec).sign(tree, theirs)
    return ours, theirs


def _edited_archive(tree: Path, tmp_path: Path, edit: str) -> Path:
    changed = tmp_path / f"changed-{edit}"
    shutil.copytree(tree, changed)
    if edit == "edited":
        (changed / "adapter/adapter_config.json").write_bytes(b'{"r": 16}\n')
    elif edit == "extra":
        (changed / "adapter/extra.bin").write_bytes(b"extra\n")
    else:
        (changed / "processor/tokenizer.json").unlink()
    return _pack(changed, tmp_path / f"{edit}.dlmsnap")


@pytest.mark.parametrize(
    ("edit", "named", "said"),
    [
        ("edited", "adapter/adapter_config.json", "sha256 differs"),
        ("extra", "adapter/extra.bin", "in the archive but not in the bundle"),
        ("missing", "processor/tokenizer.json", "in the bundle but not in the archive"),
    ],
)
def test_a_changed_tree_is_refused_by_both_tools(
    edit: str,
    named: str,
    said: str,
    tree: Path,
    signed: tuple[Path, Path],
    keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ours, theirs = signed
    _, pub = keys
    changed = _edited_archive(tree, tmp_path, edit)
    capsys.readouterr()
    assert _verify(changed, theirs, pub) == 11
    err = capsys.readouterr().err
    assert said in err and json.dumps(named) in err, err
    with pytest.raises(OmsMismatchError) as info:
        api.verify(changed, oms_signature=theirs, public_key=pub)
    assert info.value.files == (named,)
    # model_signing refuses the same change on a directory against snaparc's bundle.
    _ms_refuses(tmp_path / f"changed-{edit}", ours, pub)


def test_a_changed_resource_digest_is_refused_by_both_tools(
    archive: Path, tree: Path, signed: tuple[Path, Path], keys: tuple[Path, Path], tmp_path: Path
) -> None:
    ours, _ = signed
    sec, pub = keys
    payload = _payload(ours)
    resources = payload["predicate"]["resources"]
    target = next(r for r in resources if r["name"] == "a.b")
    target["digest"] = "0" * 64
    payload["subject"][0]["digest"]["sha256"] = _subject(resources)
    forged = _resign(payload, sec, tmp_path / "forged.sig")
    with pytest.raises(OmsMismatchError, match=r'"a\.b"'):
        api.verify(archive, oms_signature=forged, public_key=pub)
    _ms_refuses(tree, forged, pub)
    # The digest changed without re-signing: the signature no longer verifies.
    doc = json.loads(ours.read_bytes())
    doc["dsseEnvelope"]["payload"] = base64.b64encode(
        json.dumps(payload, indent=2).encode()
    ).decode()
    unsigned = tmp_path / "unsigned.sig"
    unsigned.write_text(json.dumps(doc))
    with pytest.raises(OmsBadSignatureError):
        api.verify(archive, oms_signature=unsigned, public_key=pub)
    with pytest.raises(Exception):  # noqa: B017 - model_signing raises cryptography's error
        _ms_verify(tree, unsigned, pub)


def test_a_subject_that_is_not_the_digest_of_the_resources_is_refused(
    archive: Path, signed: tuple[Path, Path], keys: tuple[Path, Path], tmp_path: Path
) -> None:
    ours, _ = signed
    sec, pub = keys
    payload = _payload(ours)
    payload["predicate"]["resources"][0]["digest"] = "1" * 64
    forged = _resign(payload, sec, tmp_path / "forged.sig")
    with pytest.raises(MalformedBundleError, match="subject digest"):
        api.verify(archive, oms_signature=forged, public_key=pub)
    with pytest.raises(ValueError, match="inconsistent"):
        _ms_verify(archive.parent / "snapshot", forged, pub)


def test_a_signature_by_another_key_is_refused_by_both_tools(
    archive: Path, tree: Path, signed: tuple[Path, Path], tmp_path: Path
) -> None:
    ours, theirs = signed
    _, other_pub = _keypair(tmp_path, ec.SECP256R1(), "other")
    for bundle in (ours, theirs):
        assert _verify(archive, bundle, other_pub) == 11
        with pytest.raises(OmsKeyMismatchError, match="another key"):
            api.verify(archive, oms_signature=bundle, public_key=other_pub)
        _ms_refuses(tree, bundle, other_pub)
    # Without the hint, the signature itself fails (model_signing accepts a missing hint).
    doc = json.loads(ours.read_bytes())
    del doc["verificationMaterial"]["publicKey"]["hint"]
    hintless = tmp_path / "hintless.sig"
    hintless.write_text(json.dumps(doc))
    with pytest.raises(OmsBadSignatureError):
        api.verify(archive, oms_signature=hintless, public_key=other_pub)


# --- the bundle is hostile input -----------------------------------------------------


def _mutate(bundle: Path, tmp_path: Path, how: str) -> Path:
    doc = json.loads(bundle.read_bytes())
    out = tmp_path / f"{how}.sig"
    if how == "not-json":
        out.write_bytes(b'{"mediaType": ')
        return out
    if how == "duplicate-key":
        out.write_bytes(b'{"mediaType": "x", ' + bundle.read_bytes()[1:])
        return out
    if how == "media-type":
        doc["mediaType"] = "application/vnd.dev.sigstore.bundle.v0.2+json"
    elif how == "certificate":
        doc["verificationMaterial"] = {"x509CertificateChain": {"certificates": []}}
    elif how == "payload-type":
        doc["dsseEnvelope"]["payloadType"] = "text/plain"
    elif how == "two-signatures":
        doc["dsseEnvelope"]["signatures"] *= 2
    elif how == "bad-base64":
        doc["dsseEnvelope"]["payload"] = "***"
    elif how == "message-signature":
        doc["messageSignature"] = {}
    elif how == "array":
        doc = [doc]
    out.write_text(json.dumps(doc))
    return out


@pytest.mark.parametrize(
    ("how", "said"),
    [
        ("not-json", "not valid JSON"),
        ("duplicate-key", "duplicate key"),
        ("media-type", "media type"),
        ("certificate", "certificate-based"),
        ("payload-type", "payload type"),
        ("two-signatures", "exactly one signature"),
        ("bad-base64", "not valid base64"),
        ("message-signature", "message signature"),
        ("array", "not a JSON object"),
    ],
)
def test_a_malformed_bundle_exits_11_with_a_clear_message(
    how: str,
    said: str,
    archive: Path,
    signed: tuple[Path, Path],
    keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, pub = keys
    bad = _mutate(signed[0], tmp_path, how)
    before = tree_state(tmp_path)
    capsys.readouterr()
    assert _verify(archive, bad, pub) == 11
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err, err
    assert tree_state(tmp_path) == before


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        ({"predicateType": "https://model_signing/Digests/v0.1"}, "unknown predicate type"),
        ({"predicateType": "https://example.com/other"}, "unknown predicate type"),
        ({"_type": "https://in-toto.io/Statement/v0.1"}, "_type"),
        ({"subject": []}, "exactly one model"),
        ({"serialization": {"method": "shards"}}, "cannot be checked"),
        ({"serialization": {"hash_type": "blake2"}}, "sha256 and blake3"),
        ({"serialization": {"ignore_paths": [".."]}}, "not a path inside"),
        ({"resources": "dup"}, "listed twice"),
        ({"resources": "algorithm"}, "is not the hash_type"),
        ({"resources": "upper"}, "hex digits"),
    ],
    ids=[
        "compat-predicate",
        "other-predicate",
        "statement-v0.1",
        "no-subject",
        "shards",
        "blake2",
        "ignore-dotdot",
        "duplicate-resource",
        "algorithm",
        "upper-hex",
    ],
)
def test_a_signed_but_unacceptable_statement_exits_11(
    edit: dict,  # type: ignore[type-arg]
    said: str,
    archive: Path,
    signed: tuple[Path, Path],
    keys: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    sec, pub = keys
    payload = _payload(signed[0])
    pred = payload["predicate"]
    for key, value in edit.items():
        if key == "serialization":
            pred["serialization"].update(value)
        elif key == "resources":
            res = pred["resources"]
            if value == "dup":
                res.append(dict(res[0]))
            elif value == "algorithm":
                res[0]["algorithm"] = "blake3"
            else:
                res[0]["digest"] = res[0]["digest"].upper()
            payload["subject"][0]["digest"]["sha256"] = _subject(res)
        else:
            payload[key] = value
    forged = _resign(payload, sec, tmp_path / "forged.sig")
    with pytest.raises(MalformedBundleError, match=said):
        api.verify(archive, oms_signature=forged, public_key=pub)


def test_an_oversized_bundle_is_refused_before_it_is_read(
    archive: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    big = tmp_path / "big.sig"
    with big.open("wb") as f:
        f.truncate(envelope.MAX_BUNDLE_BYTES + 1)  # sparse: nothing to read
    with pytest.raises(MalformedBundleError, match="larger than"):
        api.verify(archive, oms_signature=big, public_key=keys[1])


def test_a_bundle_that_is_not_a_regular_file_is_refused(
    archive: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo.sig"
    os.mkfifo(fifo)
    assert _verify(archive, fifo, keys[1]) == 2  # refused before it is opened: never blocks
    assert _verify(archive, tmp_path / "absent.sig", keys[1]) == 2


def test_options_that_go_together(
    archive: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sec, pub = keys
    assert main(["verify", str(archive), "--oms-signature", str(pub)]) == 2
    assert main(["verify", str(archive), "--public-key", str(pub)]) == 2
    assert main(["sign", str(archive), "--oms", "-s", str(sec), "-t", "x"]) == 2
    assert main(["sign", str(archive), "-s", str(sec), "--oms-ignore", "a"]) == 2
    assert "--oms-ignore needs --oms" in capsys.readouterr().err
    with pytest.raises(UsageError, match="list of paths"):
        api.sign(archive, sec, oms=True, oms_ignore="adapter")
    assert not archive.with_name("snap.dlmsnap.oms.json").exists()


def test_every_refusal_is_a_signature_error() -> None:
    for cls in (
        MalformedBundleError,
        OmsKeyError,
        OmsKeyMismatchError,
        OmsBadSignatureError,
        OmsMismatchError,
    ):
        assert issubclass(cls, SignatureError) and cls.exit_code == 11
