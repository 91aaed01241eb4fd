"""Frame digests (format 1.2): `cat --tensor` reads only the frames that hold
the tensor (bytes counted, not time), every reader checks every frame's
digest, and a lying digest is refused by `verify`."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save
from snaparc_testlib import CountingReader, run_snaparc

from snaparc.api import pack as pack_directory
from snaparc.archive.catfile import cat_file
from snaparc.archive.index import ArchiveIndex, open_index
from snaparc.errors import FrameDigestMismatchError
from snaparc.format.constants import FRAME_SIZE, TAR_BLOCK
from snaparc.format.manifest import frame_content_ranges
from spec.vectors.generate import _manifest_edit, assemble, split_members

MiB = 1024 * 1024
WEIGHTS = "model.safetensors"
SNAPSHOT = {"export_target": "hf_snapshot"}
# F16 tensors in name order, about 40 MiB in all (sizes in MiB): `b_mid` lies
# inside frame 3, `c_straddle` crosses the boundary between frames 3 and 4.
SIZES = {"a_first": 26, "b_mid": 1, "c_straddle": 6, "d_last": 7}


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(13)
    tensors = {
        name: rng.standard_normal(size * MiB // 2, dtype=np.float32).astype(np.float16)
        for name, size in SIZES.items()
    }
    src = tmp_path_factory.mktemp("frames") / "src"
    src.mkdir()
    (src / WEIGHTS).write_bytes(save(tensors))
    return src


def packed(src: Path, out: Path, codec: str = "none") -> Path:
    pack_directory(
        src, out, level=1, codec=codec, metadata=SNAPSHOT, allow_base_weights=True, force=True
    )
    return out


@pytest.fixture(scope="module")
def plain(weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return packed(weights, tmp_path_factory.mktemp("plain") / "a.dlmsnap")


@pytest.fixture(scope="module")
def coded(weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return packed(weights, tmp_path_factory.mktemp("coded") / "c.dlmsnap", "bytegroup")


def library_view(src: Path, name: str) -> bytes:
    with safe_open(str(src / WEIGHTS), framework="numpy") as f:
        return bytes(f.get_tensor(name).tobytes())


def index_of(path: Path) -> ArchiveIndex:
    with open(path, "rb") as f:
        return open_index(f)


def tensor_frames(index: ArchiveIndex, name: str) -> list[int]:
    """Frames of the weights' member that hold the tensor, from the layout rule
    (frame j carries content bytes [j*F - 512, (j+1)*F - 512))."""
    (blob,) = index.manifest.blobs
    t = next(t for t in index.manifest.tensors[blob.sha256] if t.name == name)
    first = (t.begin + TAR_BLOCK) // FRAME_SIZE
    last = (t.end - 1 + TAR_BLOCK) // FRAME_SIZE
    return list(range(first, last + 1))


def cat_counted(path: Path, name: str) -> tuple[bytes, int]:
    reader = CountingReader(path)
    out = io.BytesIO()
    cat_file(reader, WEIGHTS, out, tensor=name)  # type: ignore[arg-type]
    reader.close()
    return out.getvalue(), reader.bytes_read


def test_pack_writes_one_frame_digest_per_frame(plain: Path, weights: Path) -> None:
    index = index_of(plain)
    (blob,) = index.manifest.blobs
    assert index.manifest.format_version == "1.2" and blob.codec is None
    member = index.layout.blob_member(blob.sha256)
    assert len(blob.frame_blake3) == member.num_frames == 6
    import blake3

    data = (weights / WEIGHTS).read_bytes()
    assert list(blob.frame_blake3) == [
        blake3.blake3(data[lo:hi]).hexdigest() for lo, hi in frame_content_ranges(len(data))
    ]


@pytest.mark.parametrize("which", ["plain", "coded"])
@pytest.mark.parametrize(("name", "frames"), [("b_mid", [3]), ("c_straddle", [3, 4])])
def test_cat_tensor_reads_only_the_frames_that_hold_it(
    which: str, name: str, frames: list[int], request: pytest.FixtureRequest, weights: Path
) -> None:
    path: Path = request.getfixturevalue(which)
    index = index_of(path)
    assert tensor_frames(index, name) == frames
    (blob,) = index.manifest.blobs
    member = index.layout.blob_member(blob.sha256)

    def compressed(j: int) -> int:
        return index.seek_table[member.first_frame + j].compressed_size

    data, read = cat_counted(path, name)
    assert data == library_view(weights, name)
    # frame 0 (the blob's safetensors header) and the tensor's frames, plus the
    # head (seek table, manifest, 64 KiB read ahead); never another frame
    needed = sum(compressed(j) for j in [0, *frames])
    assert needed <= read <= needed + 256 * 1024, (read, needed)
    assert read < 0.7 * path.stat().st_size  # 3 of 6 frames at most


def test_cat_tensor_from_the_cli_and_a_mirror(plain: Path, weights: Path, tmp_path: Path) -> None:
    want = library_view(weights, "c_straddle")
    proc = run_snaparc("cat", str(plain), WEIGHTS, "--tensor", "c_straddle")
    assert (proc.returncode, proc.stdout == want) == (0, True), proc.stderr
    mirror = tmp_path / "mirror"
    assert run_snaparc("push", str(plain), str(mirror), "--ref", "w", "-q").returncode == 0
    proc = run_snaparc("cat", f"{mirror}:w", WEIGHTS, "--tensor", "c_straddle")  # whole blob
    assert (proc.returncode, proc.stdout == want) == (0, True), proc.stderr


def rebuilt(path: Path, out: Path, edit: Any) -> Path:
    members = split_members(path.read_bytes())
    edit(members)
    out.write_bytes(assemble(members, level=1))
    return out


def test_a_changed_byte_in_the_tensors_frame_writes_nothing(plain: Path, tmp_path: Path) -> None:
    index = index_of(plain)
    (blob,) = index.manifest.blobs
    t = next(t for t in index.manifest.tensors[blob.sha256] if t.name == "b_mid")

    def flip(members: list[tuple[str, bytes]]) -> None:
        name, data = members[1]
        at = TAR_BLOCK + t.begin + 1000
        members[1] = (name, data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :])

    bad = rebuilt(plain, tmp_path / "bad.dlmsnap", flip)
    assert index_of(bad).archive_id == index.archive_id  # valid frames, same manifest
    proc = run_snaparc("cat", str(bad), WEIGHTS, "--tensor", "b_mid")
    assert (proc.returncode, proc.stdout) == (1, b""), proc.stderr
    assert b"frame 3 blake3 mismatch" in proc.stderr
    with pytest.raises(FrameDigestMismatchError):
        cat_counted(bad, "b_mid")
    # a tensor in other frames is still served: its own frames are intact
    assert cat_counted(bad, "d_last")[0] == cat_counted(plain, "d_last")[0]
    proc = run_snaparc("verify", str(bad))
    assert proc.returncode == 1 and b"frame 3 blake3 mismatch" in proc.stderr


def test_a_lying_frame_digest_is_refused_by_verify(plain: Path, tmp_path: Path) -> None:
    manifest = index_of(plain).manifest
    (blob,) = manifest.blobs
    real = blob.frame_blake3[2]

    def lie(members: list[tuple[str, bytes]]) -> None:
        _manifest_edit(members, f'"{real}"'.encode(), f'"{"0" * 64}"'.encode())

    bad = rebuilt(plain, tmp_path / "lie.dlmsnap", lie)
    body = json.loads(split_members(bad.read_bytes())[0][1])
    assert body["blobs"][0]["frame_blake3"][2] == "0" * 64  # parsed: a well-formed manifest
    for argv in (["verify", str(bad)], ["verify", "-"], ["cat", str(bad), WEIGHTS]):
        stdin = bad.read_bytes() if "-" in argv else None
        proc = run_snaparc(*argv, stdin=stdin)
        assert proc.returncode == 1 and b"frame 2 blake3 mismatch" in proc.stderr, argv
    assert run_snaparc("cat", str(bad), WEIGHTS).stdout == b""
    unpacked = tmp_path / "out"
    proc = run_snaparc("unpack", str(bad), "-C", str(unpacked), "-q")
    assert proc.returncode == 1 and not (unpacked / WEIGHTS).exists()


@pytest.mark.parametrize(
    "size",
    [
        1,
        FRAME_SIZE - TAR_BLOCK - 1,
        FRAME_SIZE - TAR_BLOCK,
        FRAME_SIZE - TAR_BLOCK + 1,
        2 * FRAME_SIZE - TAR_BLOCK,
    ],
)
def test_frame_hasher_cuts_where_the_layout_does(size: int) -> None:
    import blake3

    from snaparc.archive.hashing import FrameHasher
    from snaparc.format.layout import frame_sizes
    from snaparc.format.tarheader import member_len

    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    hasher = FrameHasher()
    for at in range(0, size, 3 * MiB + 7):  # read sizes unrelated to frames
        hasher.update(data[at : at + 3 * MiB + 7])
    ranges = frame_content_ranges(size)
    assert len(ranges) == len(frame_sizes(member_len(size)))
    assert hasher.digests() == tuple(blake3.blake3(data[lo:hi]).hexdigest() for lo, hi in ranges)
