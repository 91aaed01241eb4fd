"""Push to and pull from a real registry: byte identity, the ModelPack shape,
an independent client (oras-py), every reading command, dedup."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

import snaparc
from snaparc.mirror.oci.client import RegistryClient
from snaparc.mirror.oci.layout import (
    ARTIFACT_TYPE,
    CONFIG_TYPE,
    FILEPATH,
    FILEPATH_CNAI,
    OCI_MANIFEST,
    WEIGHT_RAW,
)
from snaparc.mirror.oci.push import push_oci
from snaparc.mirror.oci.url import parse_oci_target
from snaparc.sources.archive import open_source

from .conftest import Registry, pack, write_tree


def _manifest(url: str) -> dict:  # type: ignore[type-arg]
    t = parse_oci_target(url)
    assert t.reference is not None
    data, _ = RegistryClient(t).get_manifest(t.reference, 1 << 22)
    return json.loads(data)  # type: ignore[no-any-return]


def _temps(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if "snaparc-tmp" in p.name)


def test_push_then_pull_is_byte_identical(repo: str, archive_big: Path, tmp_path: Path) -> None:
    archive_v1 = archive_big  # a blob of two frames
    pushed = snaparc.push(archive_v1, f"{repo}:v1")
    r = pushed.report
    assert r.ref == "v1" and r.bytes_skipped == 0
    out = tmp_path / "pulled.dlmsnap"
    pulled = snaparc.pull(f"{repo}:v1", out)
    assert out.read_bytes() == archive_v1.read_bytes()
    assert pulled.archive_id == r.archive_id == snaparc.verify(archive_v1).archive_id
    # by manifest digest too
    digest = pushed.to_json()["manifest_digest"]
    out2 = tmp_path / "by-digest.dlmsnap"
    snaparc.pull(f"{repo}@{digest}", out2)
    assert out2.read_bytes() == archive_v1.read_bytes()
    assert _temps(tmp_path) == []


def test_artifact_is_modelpack(repo: str, archive_v1: Path, files_v1: dict[str, bytes]) -> None:
    snaparc.push(archive_v1, f"{repo}:v1")
    m = _manifest(f"{repo}:v1")
    assert m["mediaType"] == OCI_MANIFEST and m["artifactType"] == ARTIFACT_TYPE
    assert m["config"]["mediaType"] == CONFIG_TYPE
    files = snaparc.ls(archive_v1).listing.manifest.files
    layers = m["layers"]
    assert len(layers) == len(files) + 2  # + the archive manifest and the record
    for f, layer in zip(files, layers, strict=False):
        assert layer["annotations"][FILEPATH] == f.path == layer["annotations"][FILEPATH_CNAI]
        assert layer["digest"] == f"sha256:{f.blob}" and layer["size"] == f.size
    weights = [x for x in layers if x["mediaType"] == WEIGHT_RAW]
    assert [x["annotations"][FILEPATH] for x in weights] == ["adapter/adapter_model.safetensors"]


def test_oras_pulls_the_files_with_their_paths(
    registry: Registry, repo: str, archive_v1: Path, files_v1: dict[str, bytes], tmp_path: Path
) -> None:
    oras_client = pytest.importorskip("oras.client")
    snaparc.push(archive_v1, f"{repo}:v1")
    client = oras_client.OrasClient(hostname=registry.host, insecure=True)
    out = tmp_path / "oras"
    client.pull(target=f"{repo.removeprefix('oci://')}:v1", outdir=str(out))
    for rel, data in files_v1.items():
        assert (out / rel).read_bytes() == data, rel


def test_reading_commands_take_an_oci_target(
    repo: str, archive_v1: Path, files_v1: dict[str, bytes], tmp_path: Path
) -> None:
    snaparc.push(archive_v1, f"{repo}:v1")
    url = f"{repo}:v1"
    aid = snaparc.verify(archive_v1).archive_id
    assert snaparc.verify(url).archive_id == aid
    assert {f.path for f in snaparc.ls(url).listing.manifest.files} == set(files_v1)
    buf = io.BytesIO()
    snaparc.cat(url, "adapter/adapter_config.json", buf)
    assert buf.getvalue() == files_v1["adapter/adapter_config.json"]
    dest = tmp_path / "unpacked"
    snaparc.unpack(url, dest)
    for rel, data in files_v1.items():
        assert (dest / rel).read_bytes() == data


def test_base_may_be_an_oci_target(
    repo: str, archive_v1: Path, files_v1: dict[str, bytes], tmp_path: Path
) -> None:
    snaparc.push(archive_v1, f"{repo}:v1")
    v2 = dict(files_v1, **{"adapter/adapter_config.json": b'{"r": 16}\n'})
    src = write_tree(tmp_path / "src_v2", v2)
    thin = tmp_path / "thin.dlmsnap"
    snaparc.pack(src, thin, base=f"{repo}:v1")
    dest = tmp_path / "out"
    snaparc.unpack(thin, dest, base=f"{repo}:v1")
    for rel, data in v2.items():
        assert (dest / rel).read_bytes() == data


def test_pushing_v2_sends_only_the_changed_layers(
    repo: str, archive_big: Path, big_files: dict[str, bytes], tmp_path: Path
) -> None:
    archive_v1, files_v1 = archive_big, big_files
    t1 = parse_oci_target(f"{repo}:v1")
    with open_source(archive_v1) as o:
        first = push_oci(o, RegistryClient(t1), tag="v1")
    changed = b'{"r": 16, "lora_alpha": 32}\n'
    v2 = dict(files_v1, **{"adapter/adapter_config.json": changed})
    archive_v2 = pack(write_tree(tmp_path / "src_v2", v2), tmp_path / "v2.dlmsnap")
    client = RegistryClient(parse_oci_target(f"{repo}:v2"))
    with open_source(archive_v2) as o:
        second = push_oci(o, client, tag="v2")
    # sent: the changed file, the archive manifest, the record, the config, the manifest
    assert second.objects_sent == 5
    assert second.bytes_skipped >= len(files_v1["adapter/adapter_model.safetensors"])
    assert client.bytes_sent == second.bytes_sent < 20_000
    assert first.bytes_sent > 9 * 1024 * 1024
    out = tmp_path / "v2-pulled.dlmsnap"
    snaparc.pull(f"{repo}:v2", out)
    assert out.read_bytes() == archive_v2.read_bytes()


def test_other_levels_round_trip(repo: str, tmp_path: Path) -> None:
    files = {"a.json": b'{"x": 1}\n' * 200, "w.safetensors": bytes(range(256)) * 3000}
    archive = pack(write_tree(tmp_path / "src", files), tmp_path / "l9.dlmsnap", level=9)
    r = snaparc.push(archive, f"{repo}:l9").report
    assert getattr(r, "level", None) == 9
    out = tmp_path / "l9-pulled.dlmsnap"
    snaparc.pull(f"{repo}:l9", out)
    assert out.read_bytes() == archive.read_bytes()


def test_cli_push_pull(repo: str, archive_v1: Path, tmp_path: Path) -> None:
    from snaparc_testlib import run_snaparc

    p = run_snaparc("push", str(archive_v1), f"{repo}:cli", "--json")
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert report["ref"] == "cli" and report["manifest_digest"].startswith("sha256:")
    out = tmp_path / "cli.dlmsnap"
    p = run_snaparc("pull", f"{repo}:cli", "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert out.read_bytes() == archive_v1.read_bytes()
    p = run_snaparc("pull", f"{repo}:cli", "-o", str(out))
    assert p.returncode == 5  # exists


def test_materialize_from_an_oci_target(repo: str, tmp_path: Path) -> None:
    import os
    import sys

    hf_tests = str(Path(__file__).resolve().parent.parent / "hf")
    if hf_tests not in sys.path:
        sys.path.insert(0, hf_tests)
    hf_fakes = pytest.importorskip("hf_fakes")
    from snaparc.hf.export import Store, export_snapshot, load_base_spec

    store = tmp_path / "hf-src" / "store"
    hf_fakes.write_fake_adapter(store / "adapter/versions/v0001", payload=os.urandom(50_000))
    (store / "adapter/current.txt").write_text("adapter/versions/v0001\n")
    spec = load_base_spec("qwen2-audio-7b-instruct")
    result = export_snapshot(Store(store), spec, processor=hf_fakes.FakeProcessor())
    archive = tmp_path / "snap.dlmsnap"
    snaparc.pack(result.export_dir, archive)
    snaparc.push(archive, f"{repo}:snap")
    dest = tmp_path / "loadable"
    snaparc.materialize(f"{repo}:snap", dest)
    assert (dest / "adapter" / "adapter_config.json").is_file()


def test_cross_repository_mount_sends_no_blob(
    registry: Registry, archive_v1: Path, tmp_path: Path
) -> None:
    a = f"oci://{registry.host}/mount/source"
    b = f"oci://{registry.host}/mount/target"
    snaparc.push(archive_v1, f"{a}:v1")
    client = RegistryClient(parse_oci_target(f"{b}:v1"))
    with open_source(archive_v1) as o:
        r = push_oci(o, client, tag="v1", mount_from="mount/source")
    assert r.objects_sent == 1 and r.objects_mounted == r.objects_skipped > 0  # the manifest
    assert client.bytes_sent == r.bytes_sent < 20_000
    out = tmp_path / "mounted.dlmsnap"
    snaparc.pull(f"{b}:v1", out)
    assert out.read_bytes() == archive_v1.read_bytes()


def test_chunked_upload_resumes_after_a_lost_answer(
    repo: str, archive_big: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive_v1 = archive_big
    """Blobs above the chunk size go up in PATCH chunks. A chunk that did not
    arrive is sent again from the offset the registry reports; a chunk whose
    answer was lost leaves an upload URL the registry no longer honours (CNCF
    distribution), so that blob starts over. Either way the artifact is whole."""
    from snaparc.mirror.oci.client import RegistryError

    real = RegistryClient._send
    patches: list[str] = []

    def flaky(self: RegistryClient, method: str, url: str, headers: dict, body: object):  # type: ignore[no-untyped-def,type-arg]
        if method == "PATCH":
            patches.append(headers["Content-Range"])
            if len(patches) == 2:  # never arrives
                raise RegistryError("connection reset (test)")
            if len(patches) == 5:  # stored, but the answer is lost
                real(self, method, url, headers, body).close()
                raise RegistryError("connection reset (test)")
        return real(self, method, url, headers, body)

    monkeypatch.setattr(RegistryClient, "_send", flaky)
    t = parse_oci_target(f"{repo}:chunked")
    with open_source(archive_v1) as o:
        push_oci(o, RegistryClient(t), tag="chunked", chunk_size=2 * 1024 * 1024)
    ranges = sorted(set(patches))
    assert patches[1] == patches[2]  # resumed: the same chunk again, at once
    assert patches.count(patches[0]) == 2  # restarted: the first chunk again
    assert len(ranges) == 5  # 9 MiB + 123 bytes in 2 MiB chunks
    monkeypatch.setattr(RegistryClient, "_send", real)
    out = tmp_path / "chunked.dlmsnap"
    snaparc.pull(f"{repo}:chunked", out)
    assert out.read_bytes() == archive_v1.read_bytes()


def test_a_coded_archive_travels_as_content_and_comes_back_byte_identical(
    repo: str, tmp_path: Path
) -> None:
    """`--codec bytegroup`: the registry holds the weights as they are (the layer
    digest is the file's sha256), and a pull codes them again, byte for byte."""
    import hashlib
    import random

    from snaparc.archive.pack import plan_pack, write_archive

    rng = random.Random(3)
    n = (9 * 1024 * 1024 + 77) // 2  # a BF16 tensor straddling a frame boundary
    header = json.dumps(
        {
            "__metadata__": {"format": "pt"},
            "base_model.model.q_proj.lora_A.weight": {
                "dtype": "BF16",
                "shape": [n],
                "data_offsets": [0, 2 * n],
            },
        },
        separators=(",", ":"),
    ).encode()
    header += b" " * (-len(header) % 8)
    weights = len(header).to_bytes(8, "little") + header + rng.randbytes(2 * n)
    src = write_tree(tmp_path / "src", {"adapter/adapter_model.safetensors": weights})
    plan = plan_pack(src, threads=2, metadata={"export_target": "hf_snapshot"}, codec="bytegroup")
    assert [b.codec for b in plan.manifest.blobs] == ["bytegroup"]
    archive = tmp_path / "coded.dlmsnap"
    with open(archive, "xb") as f:
        write_archive(plan, f, level=3, threads=2)

    snaparc.push(archive, f"{repo}:coded")
    digests = [layer["digest"] for layer in _manifest(f"{repo}:coded")["layers"]]
    assert f"sha256:{hashlib.sha256(weights).hexdigest()}" in digests
    out = tmp_path / "pulled.dlmsnap"
    snaparc.pull(f"{repo}:coded", out)
    assert out.read_bytes() == archive.read_bytes()


def test_a_thin_archive_pushes_and_pulls_byte_identical_and_unpacks_with_base(
    repo: str, archive_v1: Path, files_v1: dict[str, bytes], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """spec/OCI.md, section 2: a thin archive's artifact has layers for the
    blobs it stores only, and names its base; a reader needs --base, as for
    the file."""
    from snaparc.cli import main
    from snaparc.mirror.oci.layout import BASE_ANNOTATION, TITLE

    snaparc.push(archive_v1, f"{repo}:v1")
    base_id = snaparc.verify(archive_v1).archive_id
    v2 = dict(files_v1, **{"adapter/adapter_config.json": b'{"r": 16}\n'})
    thin = tmp_path / "thin.dlmsnap"
    snaparc.pack(write_tree(tmp_path / "src_v2", v2), thin, base=f"{repo}:v1")
    pushed = snaparc.push(thin, f"{repo}:v2")
    client = RegistryClient(parse_oci_target(f"{repo}:v2"))
    oci, _ = client.get_manifest("v2", 1 << 22)
    obj = json.loads(oci)
    assert obj["annotations"][BASE_ANNOTATION] == base_id
    # one layer: the changed file (then the archive manifest and the record)
    assert [layer["annotations"][TITLE] for layer in obj["layers"]] == [
        "adapter/adapter_config.json",
        "dlmsnap/manifest.json",
        "dlmsnap/oci-record.json",
    ]
    assert pushed.report.bytes_sent < 20_000

    out = tmp_path / "pulled.dlmsnap"
    snaparc.pull(f"{repo}:v2", out)
    assert out.read_bytes() == thin.read_bytes()
    for source, base in (
        (out, f"{repo}:v1"),
        (f"{repo}:v2", f"{repo}:v1"),
        (f"{repo}:v2", archive_v1),
    ):
        dest = tmp_path / f"tree-{abs(hash((str(source), str(base))))}"
        snaparc.unpack(source, dest, base=base)
        for rel, data in v2.items():
            assert (dest / rel).read_bytes() == data
    # without --base, as for the file: a usage error naming --base, nothing written
    code = main(["unpack", f"{repo}:v2", "-C", str(tmp_path / "nobase"), "-q"])
    assert code == main(["unpack", str(thin), "-C", str(tmp_path / "nobase"), "-q"]) != 0
    assert "--base" in capsys.readouterr().err
    assert not (tmp_path / "nobase").exists()
