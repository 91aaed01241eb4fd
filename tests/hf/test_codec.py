"""The `bytegroup` blob codec (format 1.2, `pack --codec bytegroup`).

Float tensors are stored as byte planes, frame by frame; every reader gives
back the original bytes, bit for bit, and the manifest's digests are the
original's. The weights here are written by the `safetensors` library (and,
for offsets the library never writes, by hand), bigger than a frame, so
tensors straddle frame boundaries.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zstandard
from hf_fakes import FakeProcessor
from snaparc_testlib import run_snaparc, safetensors_file, tree_state

from snaparc.archive.index import ArchiveIndex, open_index
from snaparc.cli import main
from snaparc.format.codec import FrameCodec
from snaparc.format.constants import FRAME_SIZE
from snaparc.format.safetensors import TensorInfo, parse_header
from snaparc.format.seektable import (
    FOOTER_SIZE,
    SeekEntry,
    decode_footer,
    decode_seek_table,
    encode_seek_table,
    seek_table_size,
)
from snaparc.hf.export import BASE_MODELS, Store, export_snapshot

torch = pytest.importorskip("torch")
st_torch = pytest.importorskip("safetensors.torch")

SPEC = BASE_MODELS["qwen2-audio-7b-instruct"]
WEIGHTS = "adapter/adapter_model.safetensors"
PREFIX = "base_model.model.model.layers.0.self_attn.q_proj"
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def library_weights(dtype: Any, *, seed: int = 0) -> bytes:
    """Trained-looking LoRA weights (normal, std 0.02) written by `safetensors`:
    one tensor of about 9 MiB (it straddles a frame boundary) and a small one."""
    gen = torch.Generator().manual_seed(seed)
    rows = 9 * 1024 * 1024 // (1100 * torch.finfo(dtype).bits // 8) + 1
    tensors = {
        f"{PREFIX}.lora_A.weight": (torch.randn(rows, 1100, generator=gen) * 0.02).to(dtype),
        f"{PREFIX}.lora_B.weight": (torch.randn(77, 3, generator=gen) * 0.01).to(dtype),
    }
    return bytes(st_torch.save(tensors, metadata={"format": "pt"}))


def odd_weights() -> bytes:
    """Tensors at offsets the library never writes: a 3-byte U8 tensor first, so
    the BF16 one starts at an odd offset and elements are cut by frame boundaries;
    an F32 one after it; a one-element F16 tensor and an empty F32 one."""
    rng = random.Random(5)
    n16 = (FRAME_SIZE + 12345) // 2
    n32 = (FRAME_SIZE // 2 + 7) // 4
    return safetensors_file(
        {
            f"{PREFIX}.lora_A.weight": ("U8", [3], b"abc"),
            f"{PREFIX}.lora_B.weight": ("BF16", [n16], rng.randbytes(2 * n16)),
            f"{PREFIX}.lora_C.weight": ("F32", [n32], rng.randbytes(4 * n32)),
            f"{PREFIX}.lora_D.weight": ("F16", [1], b"\x01\x02"),
            f"{PREFIX}.lora_E.weight": ("F32", [0], b""),
        },
        metadata={"format": "pt"},
    )


def export_with(store: Store, data: bytes) -> Path:
    (store.root / "adapter/versions/v0002/adapter_model.safetensors").write_bytes(data)
    return export_snapshot(store, SPEC, processor=FakeProcessor()).export_dir


def pack(src: Path, out: Path, *extra: str) -> Path:
    assert main(["pack", str(src), "-o", str(out), "-q", "--force", *extra]) == 0
    return out


def index_of(archive: Path) -> ArchiveIndex:
    with archive.open("rb") as f:
        return open_index(f)


def ls_json(archive: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert main(["ls", str(archive), "--json"]) == 0
    doc: dict[str, object] = json.loads(capsys.readouterr().out)
    return doc


def rewrite(archive: Path, out: Path, edit: Callable[[int, bytearray], None]) -> Path:
    """`archive` with every data frame decompressed, handed to `edit` (frame
    number, bytes; edited in place), recompressed, and a new seek table."""
    data = archive.read_bytes()
    n = decode_footer(data[-FOOTER_SIZE:])
    table = decode_seek_table(data[-seek_table_size(n) :], max_frames=n)
    cctx = zstandard.ZstdCompressor(level=3, write_checksum=True, write_content_size=True)
    frames, entries, at = [], [], 0
    for i, e in enumerate(table):
        raw = bytearray(zstandard.ZstdDecompressor().decompress(data[at : at + e.compressed_size]))
        at += e.compressed_size
        edit(i, raw)
        frame = cctx.compress(bytes(raw))
        frames.append(frame)
        entries.append(SeekEntry(len(frame), len(raw)))
    out.write_bytes(b"".join(frames) + encode_seek_table(entries))
    return out


# --- the transform -------------------------------------------------------------------


def test_encode_regroups_bytes_into_planes_and_decode_undoes_it() -> None:
    # blob: 8 bytes of u64 + 8 bytes of header, then BF16 [16, 24) and F32 [24, 40)
    tensors = (
        TensorInfo("a", "BF16", (4,), 16, 24),
        TensorInfo("b", "F32", (4,), 24, 40),
        TensorInfo("c", "U8", (3,), 40, 43),
    )
    codec = FrameCodec(tensors, 43)
    blob = bytes(range(43))
    frame = bytearray(512) + bytearray(blob) + bytearray(512 - 43)
    codec.encode(0, memoryview(frame))
    body = bytes(frame[512 : 512 + 43])
    assert body[:16] == blob[:16] and body[40:] == blob[40:]  # header and U8 untouched
    assert body[16:24] == bytes([16, 18, 20, 22, 17, 19, 21, 23])
    assert body[24:40] == bytes([24, 28, 32, 36, 25, 29, 33, 37, 26, 30, 34, 38, 27, 31, 35, 39])
    assert frame[:512] == bytes(512) and frame[555:] == bytes(512 - 43)
    codec.decode(0, memoryview(frame))
    assert bytes(frame[512 : 512 + 43]) == blob


def test_runs_of_one_width_are_regrouped_together_as_the_spec_example_says() -> None:
    # FORMAT.md: BF16 `a0 a1 b0 b1`, a U8 `x`, BF16 `c0 c1` -> `a0 b0 c0 a1`, `x`, `b1 c1`
    tensors = (
        TensorInfo("a", "BF16", (2,), 8, 12),
        TensorInfo("x", "U8", (1,), 12, 13),
        TensorInfo("c", "BF16", (1,), 13, 15),
        TensorInfo("d", "BF16", (2,), 15, 19),
    )
    blob = b"\x00" * 8 + b"a0b0x" + b"cc" + b"d0e0"
    frame = bytearray(512) + bytearray(blob) + bytearray(512 - len(blob))
    FrameCodec(tensors, len(blob)).encode(0, memoryview(frame))
    # "c" is one element: not a run; "a" and "d" are regrouped together
    assert bytes(frame[520 : 520 + 11]) == b"abde" + b"x" + b"cc" + b"0000"


@pytest.mark.parametrize("seed", range(20))
def test_every_frame_decodes_alone_whatever_the_layout(seed: int) -> None:
    rng = random.Random(seed)
    width = {"BF16": 2, "F16": 2, "F32": 4, "U8": 1}
    at, tensors = rng.randrange(8, 40), []
    for i in range(rng.randrange(1, 6)):
        dtype = rng.choice(sorted(width))
        n = rng.choice([0, 1, 2, 3, rng.randrange(FRAME_SIZE // 4)])
        tensors.append(TensorInfo(f"t{i}", dtype, (n,), at, at + n * width[dtype]))
        at += n * width[dtype]
    size = at
    blob = rng.randbytes(size)
    codec = FrameCodec(tuple(tensors), size)
    member = bytearray(512) + bytearray(blob) + bytearray(-size % 512)
    frames = [bytearray(member[k : k + FRAME_SIZE]) for k in range(0, len(member), FRAME_SIZE)]
    for j, f in enumerate(frames):
        codec.encode(j, memoryview(f))
    for j in reversed(range(len(frames))):  # any order: each frame on its own
        codec.decode(j, memoryview(frames[j]))
    assert b"".join(frames) == member


# --- pack, read back -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DTYPES))
def test_round_trip_is_bit_exact_and_smaller_than_the_default(
    name: str, fake_store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = library_weights(DTYPES[name])
    src = export_with(fake_store, data)
    plain = pack(src, tmp_path / "plain.dlmsnap")
    coded = pack(src, tmp_path / "coded.dlmsnap", "--codec", "bytegroup")
    assert coded.stat().st_size < plain.stat().st_size

    doc = ls_json(coded, capsys)
    assert doc["format_version"] == "1.2"
    files = {f["path"]: f for f in doc["files"]}  # type: ignore[attr-defined]
    assert files[WEIGHTS]["codec"] == "bytegroup"
    assert {p for p, f in files.items() if f["codec"]} == {WEIGHTS}
    # the weights span two frames: the plain archive is 1.2 too, for its frame digests
    assert ls_json(plain, capsys)["format_version"] == "1.2"
    capsys.readouterr()
    assert main(["ls", str(coded)]) == 0
    assert f"{WEIGHTS} (bytegroup)" in capsys.readouterr().out

    # the same content: the same digests, so the manifests differ only in codec
    assert index_of(coded).manifest.tensors == index_of(plain).manifest.tensors
    assert main(["verify", str(coded), "-q"]) == 0
    assert main(["unpack", str(coded), "-C", str(tmp_path / "out"), "-q"]) == 0
    assert tree_state(tmp_path / "out") == tree_state(src)
    proc = run_snaparc("unpack", "-", "-C", str(tmp_path / "piped"), "-q", stdin=coded.read_bytes())
    assert proc.returncode == 0, proc.stderr
    assert tree_state(tmp_path / "piped") == tree_state(src)
    proc = run_snaparc("cat", str(coded), WEIGHTS)
    assert (proc.returncode, proc.stdout == data) == (0, True)
    for t in parse_header(data, len(data)).tensors:
        proc = run_snaparc("cat", str(coded), WEIGHTS, "--tensor", t.name)
        assert (proc.returncode, proc.stdout == data[t.begin : t.end]) == (0, True)


def test_bf16_weights_shrink_by_a_tenth(fake_store: Store, tmp_path: Path) -> None:
    src = export_with(fake_store, library_weights(torch.bfloat16))
    plain = pack(src, tmp_path / "plain.dlmsnap").stat().st_size
    coded = pack(src, tmp_path / "coded.dlmsnap", "--codec", "bytegroup").stat().st_size
    assert coded < 0.93 * plain


def test_odd_offsets_and_cut_elements_round_trip(fake_store: Store, tmp_path: Path) -> None:
    data = odd_weights()
    src = export_with(fake_store, data)
    coded = pack(src, tmp_path / "coded.dlmsnap", "--codec", "bytegroup")
    assert main(["verify", str(coded), "-q"]) == 0
    assert main(["unpack", str(coded), "-C", str(tmp_path / "out"), "-q"]) == 0
    assert tree_state(tmp_path / "out") == tree_state(src)
    for t in parse_header(data, len(data)).tensors:
        proc = run_snaparc("cat", str(coded), WEIGHTS, "--tensor", t.name)
        assert (proc.returncode, proc.stdout == data[t.begin : t.end]) == (0, True), t.name


def test_default_pack_is_unchanged_and_none_is_the_default_and_levels(
    fake_store: Store, tmp_path: Path
) -> None:
    src = export_with(fake_store, odd_weights())
    plain = pack(src, tmp_path / "plain.dlmsnap").read_bytes()
    assert pack(src, tmp_path / "none.dlmsnap", "--codec", "none").read_bytes() == plain
    index = index_of(tmp_path / "plain.dlmsnap")
    assert index.manifest.format_version == "1.2"  # frame digests, no codec
    assert all(b.codec is None for b in index.manifest.blobs)
    indexed = [b for b in index.manifest.blobs if b.sha256 in index.manifest.tensors]
    assert [len(b.frame_blake3) for b in indexed] == [2]
    assert all(m.name.startswith("blobs/sha256/") for m in index.layout.members[1:])
    # the codec's default level is 1; an explicit --level wins
    coded = pack(src, tmp_path / "c.dlmsnap", "--codec", "bytegroup").read_bytes()
    assert (
        pack(src, tmp_path / "c1.dlmsnap", "--codec", "bytegroup", "--level", "1").read_bytes()
        == coded
    )
    assert (
        pack(src, tmp_path / "c3.dlmsnap", "--codec", "bytegroup", "--level", "3").read_bytes()
        != coded
    )
    assert pack(src, tmp_path / "p3.dlmsnap", "--level", "3").read_bytes() == plain


def test_thin_archive_and_mirror_of_a_coded_archive(fake_store: Store, tmp_path: Path) -> None:
    src = export_with(fake_store, library_weights(torch.bfloat16))
    base = pack(src, tmp_path / "base.dlmsnap", "--codec", "bytegroup")
    src2 = tmp_path / "src2"
    shutil.copytree(src, src2)
    (src2 / "notes.txt").write_text("new in v2\n", encoding="utf-8")
    thin = tmp_path / "thin.dlmsnap"
    assert main(["pack", str(src2), "-o", str(thin), "-q", "--allow-undeclared",
                 "--base", str(base), "--codec", "bytegroup"]) == 0  # fmt: skip
    assert any(b.external for b in index_of(thin).manifest.blobs)
    out = tmp_path / "out"
    assert main(["unpack", str(thin), "-C", str(out), "--base", str(base), "-q"]) == 0
    assert tree_state(out) == tree_state(src2)
    mirror = tmp_path / "mirror"
    assert main(["push", str(base), str(mirror), "--ref", "a", "-q"]) == 0
    pulled = tmp_path / "pulled.dlmsnap"
    assert main(["pull", f"{mirror}:a", "-o", str(pulled), "-q"]) == 0
    assert pulled.read_bytes() == base.read_bytes()
    assert main(["unpack", str(thin), "-C", str(tmp_path / "o2"), "--base", f"{mirror}:a",
                 "-q"]) == 0  # fmt: skip
    assert tree_state(tmp_path / "o2") == tree_state(src2)


# --- what stock tools see ----------------------------------------------------------------


def test_stock_tar_extracts_the_planes_under_a_name_that_is_not_their_digest(
    fake_store: Store, tmp_path: Path
) -> None:
    data = library_weights(torch.bfloat16)
    src = export_with(fake_store, data)
    coded = pack(src, tmp_path / "coded.dlmsnap", "--codec", "bytegroup")
    index = index_of(coded)
    (blob,) = [b for b in index.manifest.blobs if b.codec]
    dest = tmp_path / "x"
    dest.mkdir()
    if shutil.which("tar"):
        subprocess.run(["tar", "-xf", str(coded), "-C", str(dest)], check=True)
    else:  # pragma: no cover
        with tarfile.open(coded, "r:zst") as tf:  # type: ignore[call-overload]
            tf.extractall(dest, filter="data")
    assert not (dest / "blobs/sha256" / blob.sha256).exists()
    stored = (dest / "blobs/bytegroup" / blob.sha256).read_bytes()
    assert len(stored) == len(data) and stored != data
    # the spec's transform, frame by frame, gives the planes tar wrote
    codec = FrameCodec(index.manifest.tensors[blob.sha256], blob.size)
    member = bytearray(512) + bytearray(data) + bytearray(-len(data) % 512)
    for j in range(0, len(member), FRAME_SIZE):
        codec.encode(j // FRAME_SIZE, memoryview(member)[j : j + FRAME_SIZE])
    assert stored == bytes(member[512 : 512 + len(data)])
    for b in index.manifest.blobs:
        if not b.codec:
            assert (dest / "blobs/sha256" / b.sha256).exists()


# --- hostile and unknown ---------------------------------------------------------------


def test_a_tampered_coded_frame_is_a_digest_mismatch(fake_store: Store, tmp_path: Path) -> None:
    src = export_with(fake_store, library_weights(torch.bfloat16))
    coded = pack(src, tmp_path / "coded.dlmsnap", "--codec", "bytegroup")
    index = index_of(coded)
    member = next(m for m in index.layout.members if m.blob is not None and m.blob.codec)
    target = member.first_frame + 1

    def flip(i: int, raw: bytearray) -> None:
        if i == target:
            raw[1000] ^= 0x40

    bad = rewrite(coded, tmp_path / "bad.dlmsnap", flip)
    proc = run_snaparc("verify", str(bad))
    assert proc.returncode == 1 and b"mismatch" in proc.stderr, proc.stderr
    proc = run_snaparc("cat", str(bad), WEIGHTS)
    assert (proc.returncode, proc.stdout) == (1, b"")
    out = tmp_path / "out"
    assert run_snaparc("unpack", str(bad), "-C", str(out)).returncode == 1
    assert not out.exists()


def test_an_unknown_codec_needs_a_newer_snaparc_and_publishes_nothing(
    fake_store: Store, tmp_path: Path
) -> None:
    src = export_with(fake_store, library_weights(torch.float16))
    coded = pack(src, tmp_path / "coded.dlmsnap", "--codec", "bytegroup")

    def rename(i: int, raw: bytearray) -> None:
        if i == 0:
            raw[:] = raw.replace(b'"codec":"bytegroup"', b'"codec":"bytegrou2"')

    bad = rewrite(coded, tmp_path / "bad.dlmsnap", rename)
    for argv in (("verify", str(bad)), ("ls", str(bad)), ("cat", str(bad), WEIGHTS)):
        proc = run_snaparc(*argv)
        assert proc.returncode == 4, proc.stderr
        assert b"bytegrou2" in proc.stderr and b"upgrade snaparc" in proc.stderr
    out = tmp_path / "out"
    assert run_snaparc("unpack", str(bad), "-C", str(out)).returncode == 4
    assert run_snaparc("materialize", str(bad), str(out)).returncode == 4
    assert not out.exists()


def test_a_codec_in_a_1_1_manifest_is_an_unknown_field(fake_store: Store, tmp_path: Path) -> None:
    """What a 1.1 reader does with a coded archive: refuse the blob's unknown field."""
    src = export_with(fake_store, library_weights(torch.float16))
    coded = pack(src, tmp_path / "coded.dlmsnap", "--codec", "bytegroup")

    def downgrade(i: int, raw: bytearray) -> None:
        if i == 0:
            raw[:] = raw.replace(b'"format_version":"1.2"', b'"format_version":"1.1"')

    proc = run_snaparc("verify", str(rewrite(coded, tmp_path / "old.dlmsnap", downgrade)))
    assert proc.returncode == 3 and b"codec: unknown field" in proc.stderr, proc.stderr


def test_codec_is_a_usage_error_when_unknown(fake_store: Store, tmp_path: Path) -> None:
    src = export_with(fake_store, odd_weights())
    proc = run_snaparc("pack", str(src), "-o", str(tmp_path / "a.dlmsnap"), "--codec", "zipnn")
    assert proc.returncode == 2 and b"--codec" in proc.stderr
    assert not (tmp_path / "a.dlmsnap").exists()


def test_materialize_a_coded_archive_to_a_dir_and_a_hub_cache(
    fake_store: Store, tmp_path: Path
) -> None:
    data = odd_weights()
    coded = pack(export_with(fake_store, data), tmp_path / "coded.dlmsnap", "--codec", "bytegroup")
    dest = tmp_path / "dest"
    assert main(["materialize", str(coded), str(dest), "-q"]) == 0
    assert (dest / WEIGHTS).read_bytes() == data
    cache = tmp_path / "hub"
    argv = ["materialize", str(coded), "--hf-cache", str(cache), "--repo-id", "org/coded", "-q"]
    assert main(argv) == 0
    found = (cache / "models--org--coded" / "snapshots").rglob("adapter_model.safetensors")
    assert [p.read_bytes() == data for p in found] == [True]
