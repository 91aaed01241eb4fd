"""`materialize DEST` publishes the OMS bundle travelling with the archive beside
the tree (`DEST.oms.json`), where `model_signing verify key` accepts it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from hf_fakes import FakeProcessor, write_fake_adapter  # noqa: E402

from snaparc import api  # noqa: E402
from snaparc.cli import main  # noqa: E402
from snaparc.hf.export import Store, export_snapshot, load_base_spec  # noqa: E402

pytest.importorskip("model_signing")
pytest.importorskip("OpenSSL")

AUDIO = load_base_spec("qwen2-audio-7b-instruct")


def _archive(root: Path, payload: bytes) -> Path:
    store = root / "store"
    write_fake_adapter(store / "adapter/versions/v0001", payload=payload)
    (store / "adapter/current.txt").write_text("adapter/versions/v0001\n")
    result = export_snapshot(Store(store), AUDIO, processor=FakeProcessor())
    out = root / "a.dlmsnap"
    api.pack(result.export_dir, out)
    return out


def _keys(root: Path) -> tuple[Path, Path]:
    sec, pub = root / "k.pem", root / "pub.pem"
    subprocess.run(
        ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", sec], check=True
    )
    subprocess.run(["openssl", "ec", "-in", sec, "-pubout", "-out", pub], check=True)
    return sec, pub


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Path, Path]:
    """(archive with ARCHIVE.oms.json beside it, public key)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    archive = _archive(tmp_path / "src", os.urandom(100_000))
    sec, pub = _keys(tmp_path)
    assert api.sign(archive, sec, oms=True).signature == archive.with_name("a.dlmsnap.oms.json")
    return archive, pub


def test_the_bundle_lands_beside_the_tree_and_model_signing_accepts_it(
    signed: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive, pub = signed
    dest = tmp_path / "loadable"
    assert main(["materialize", str(archive), str(dest)]) == 0
    beside = tmp_path / "loadable.oms.json"
    assert str(beside) in capsys.readouterr().out
    assert beside.read_bytes() == archive.with_name("a.dlmsnap.oms.json").read_bytes()
    assert not (dest / "loadable.oms.json").exists()
    keys = ["--public_key", str(pub), "--signature", str(beside)]
    done = subprocess.run(
        [sys.executable, "-m", "model_signing", "verify", "key", str(dest), *keys],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert api.materialize(archive, dest, force=True).oms_signature == beside


def test_without_a_bundle_nothing_is_added(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "src", b"weights")
    done = api.materialize(archive, tmp_path / "dest")
    assert done.oms_signature is None and done.to_json()["oms_signature"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest", "src"]


def test_a_bundle_of_another_archive_is_refused_before_anything_is_written(
    signed: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive, _ = signed
    other = _archive(tmp_path / "other", b"other weights")
    shutil.copy(archive.with_name("a.dlmsnap.oms.json"), other.with_name("a.dlmsnap.oms.json"))
    assert main(["materialize", str(other), str(tmp_path / "dest")]) == 11
    err = capsys.readouterr().err
    assert "travelling with the archive" in err and "adapter/adapter_model.safetensors" in err, err
    assert not (tmp_path / "dest").exists() and not (tmp_path / "dest.oms.json").exists()


def test_an_existing_bundle_beside_dest_needs_force(
    signed: tuple[Path, Path], tmp_path: Path
) -> None:
    archive, _ = signed
    (tmp_path / "dest.oms.json").write_text("mine")
    assert main(["materialize", str(archive), str(tmp_path / "dest"), "-q"]) == 5
    assert not (tmp_path / "dest").exists()
    assert (tmp_path / "dest.oms.json").read_text() == "mine"
    assert main(["materialize", str(archive), str(tmp_path / "dest"), "-q", "--force"]) == 0
    assert (tmp_path / "dest.oms.json").read_text() != "mine"


def test_a_hub_cache_snapshot_gets_the_bundle_of_its_own_tree(
    signed: tuple[Path, Path], tmp_path: Path
) -> None:
    """The hub snapshot lays the export out differently (adapter files at the
    repo root), so `sign --oms` also signs that tree (ARCHIVE.hub.oms.json);
    materialize --hf-cache puts it at <repo>/signatures/<revision>.oms.json,
    outside snapshots/, where model_signing accepts it (--allow_symlinks: the
    snapshot's files are links to blobs/) and the hub still reads the cache."""
    import model_signing

    archive, pub = signed
    assert archive.with_name("a.dlmsnap.hub.oms.json").is_file()
    done = api.materialize_cache(archive, repo_id="org/adapter", cache_dir=tmp_path / "hub")
    r = done.result
    assert done.oms_signature == r.repo_dir / "signatures" / f"{r.revision}.oms.json"
    assert done.to_json()["oms_signature"] == str(done.oms_signature)
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=pub).set_hashing_config(
        model_signing.hashing.Config().set_allow_symlinks(True)
    ).verify(r.snapshot_dir, done.oms_signature)
    # The archive tree's bundle does not fit the snapshot: that is why there are two.
    with pytest.raises(ValueError):
        model_signing.verifying.Config().use_elliptic_key_verifier(
            public_key=pub
        ).set_hashing_config(model_signing.hashing.Config().set_allow_symlinks(True)).verify(
            r.snapshot_dir, archive.with_name("a.dlmsnap.oms.json")
        )
    hub = pytest.importorskip("huggingface_hub")
    repos = hub.scan_cache_dir(tmp_path / "hub").repos
    assert [repo.repo_id for repo in repos] == ["org/adapter"]


def test_a_hub_bundle_of_another_archive_leaves_the_cache_alone(
    signed: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive, _ = signed
    other = _archive(tmp_path / "other", b"other weights")
    shutil.copy(
        archive.with_name("a.dlmsnap.hub.oms.json"), other.with_name("a.dlmsnap.hub.oms.json")
    )
    argv = ["materialize", str(other), "--hf-cache", str(tmp_path / "hub"), "--repo-id", "o/a"]
    assert main(argv) == 11
    assert "travelling with the archive" in capsys.readouterr().err
    assert not (tmp_path / "hub").exists() or not any((tmp_path / "hub").rglob("*.oms.json"))
    assert not (tmp_path / "hub/models--o--a/snapshots").exists()


def test_materialize_from_a_mirror_carries_the_mirror_bundles(
    signed: tuple[Path, Path], tmp_path: Path
) -> None:
    archive, _ = signed
    mirror = tmp_path / "mirror"
    assert api.push(archive, str(mirror), ref="r").signatures == ("oms.json", "hub.oms.json")
    done = api.materialize(f"{mirror}:r", tmp_path / "dest")
    assert done.oms_signature == tmp_path / "dest.oms.json"
    assert done.oms_signature.read_bytes() == archive.with_name("a.dlmsnap.oms.json").read_bytes()
    cached = api.materialize_cache(f"{mirror}:r", repo_id="org/a", cache_dir=tmp_path / "hub")
    hub_bundle = archive.with_name("a.dlmsnap.hub.oms.json").read_bytes()
    assert cached.oms_signature is not None and cached.oms_signature.read_bytes() == hub_bundle


def test_re_signing_an_archive_that_is_no_snapshot_removes_a_stale_hub_bundle(
    signed: tuple[Path, Path], tmp_path: Path
) -> None:
    archive, _ = signed
    hub_bundle = archive.with_name("a.dlmsnap.hub.oms.json")
    assert hub_bundle.is_file()
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "f.txt").write_text("not a snapshot\n")
    api.pack(plain, archive, force=True)
    done = api.sign(archive, tmp_path / "k.pem", oms=True)
    assert done.hub_signature is None and done.to_json()["hub_signature"] is None
    assert not hub_bundle.exists()
