"""Generate the `.dlmsnap` test vectors of spec/FORMAT.md ("Test vectors").

Run from the repository root:

    python -m spec.vectors.generate            # rewrite the vectors and expected.json
    python -m spec.vectors.generate --out DIR  # write them somewhere else

Valid vectors are packed from fixed trees with snaparc's own writer
(`snaparc.archive.pack.plan_pack` + `write_archive`, zstd level 3). Corrupted
vectors are derived from `basic.dlmsnap` with a small independent
assembler built from the format primitives only (`assemble`): it cuts
members into frames exactly as FORMAT.md says, and `generate` checks that it
reproduces every valid vector byte for byte, so the spec's byte layout is
complete enough to write a conforming archive. For the coded vector it also
checks that an independent `bytegroup` encoder (`bytegroup_member`, written
from FORMAT.md's "Blob codecs") gives the member bytes snaparc wrote.

Checked-in vectors are test data that must keep verifying forever; do not
regenerate them for a new snaparc version unless the format itself changed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import stat
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import blake3
import zstandard

from snaparc.archive.pack import PackPlan, plan_pack, write_archive
from snaparc.format.constants import FRAME_SIZE, TAR_BLOCK, TAR_EOF
from snaparc.format.layout import plan_layout
from snaparc.format.manifest import MetadataValue, encode_manifest
from snaparc.format.seektable import SeekEntry, encode_seek_table
from snaparc.format.tarheader import build_header, padding_len, parse_size
from snaparc.format.zstdframes import FrameSplitter

VECTORS_DIR = Path(__file__).resolve().parent
EXPECTED_NAME = "expected.json"
LEVEL = 3
THREADS = 2


def zstd_version() -> str:
    return ".".join(str(x) for x in zstandard.ZSTD_VERSION)


# --- fixed trees -------------------------------------------------------------


def _det_bytes(seed: str, n: int) -> bytes:
    """n pseudo-random (incompressible) bytes, the same on every machine."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:n])


def _write(root: Path, rel: str, data: bytes, *, executable: bool = False) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    os.chmod(p, 0o755 if executable else 0o644)


def tree_empty(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)


def tree_basic(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    _write(root, "README.txt", b"snaparc test vector: basic\n")
    _write(root, "copy/README.txt", b"snaparc test vector: basic\n")  # duplicate content
    _write(root, "bin/run.sh", b"#!/bin/sh\necho hello\n", executable=True)
    _write(root, "empty.bin", b"")
    _write(root, "data/random.bin", _det_bytes("basic", 700))  # two tar blocks
    _write(root, "caf\u00e9/\u00fcber.txt", "unicode NFC names: café über\n".encode())
    (root / "logs" / "empty").mkdir(parents=True)


def tree_multi_frame(root: Path) -> None:
    """One blob larger than a frame: its member spans two frames."""
    root.mkdir(parents=True, exist_ok=True)
    pattern = b"multi-frame vector\n"
    big = (pattern * (FRAME_SIZE // len(pattern) + 2))[: FRAME_SIZE + 100]
    _write(root, "big.bin", big)
    _write(root, "small.txt", b"small\n")


SNAPSHOT_METADATA: dict[str, MetadataValue] = {
    "adapter_name": "vector-adapter",
    "adapter_version": 1,
    "base_model_architecture": "Qwen2AudioForConditionalGeneration",
    "base_model_hf_id": "example-org/tiny-audio-base",
    "base_model_revision": "0123456789abcdef0123456789abcdef01234567",
    "export_target": "hf_snapshot",
    "modality": "audio-language",
}


def lora_safetensors(seed: str) -> bytes:
    """A strict safetensors file as the library lays it out: two bf16 LoRA
    tensors, header padded with spaces to a multiple of 8."""
    prefix = "base_model.model.model.layers.0.self_attn.q_proj"
    tensors = [(f"{prefix}.lora_A.weight", [4, 8]), (f"{prefix}.lora_B.weight", [8, 4])]
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    at = 0
    for name, shape in tensors:
        size = 2 * shape[0] * shape[1]
        header[name] = {"data_offsets": [at, at + size], "dtype": "BF16", "shape": shape}
        at += size
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + _det_bytes(seed, at)


def tree_snapshot_like(root: Path) -> None:
    """An HF snapshot export: adapter/, processor/, snapshot_manifest.json, with
    bytes that are not a safetensors file in adapter_model.safetensors. (Retired:
    the vector is kept as checked in, but since the safetensors profile it is
    refused, and snaparc no longer writes it.)"""
    _snapshot_tree(root, _det_bytes("snapshot-like", 1536))


def tree_snapshot_safetensors(root: Path) -> None:
    """An HF snapshot export whose adapter weights pass the safetensors profile."""
    _snapshot_tree(root, lora_safetensors("snapshot-safetensors"))


def tree_polyglot_safetensors(root: Path) -> None:
    """As snapshot-safetensors, with bytes after the last tensor (a zip's start)."""
    _snapshot_tree(root, lora_safetensors("snapshot-safetensors") + b"PK\x03\x04polyglot")


def coded_safetensors(seed: str) -> bytes:
    """Strict safetensors weights for the `bytegroup` vector: a BF16, an F32 and
    an F16 tensor (the codec's three widths) and a U8 one it leaves alone, laid
    out in name order without alignment, so the F32 tensor starts at an odd
    offset of the file."""
    prefix = "base_model.model.model.layers.0.self_attn.q_proj"
    tensors = [
        (f"{prefix}.lora_A.weight", "BF16", [4, 8], 2),
        (f"{prefix}.lora_B.weight", "U8", [5], 1),
        (f"{prefix}.lora_C.weight", "F32", [8, 4], 4),
        (f"{prefix}.lora_D.weight", "F16", [3], 2),
    ]
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    at = 0
    for name, dtype, shape, width in tensors:
        size = width
        for d in shape:
            size *= d
        header[name] = {"data_offsets": [at, at + size], "dtype": dtype, "shape": shape}
        at += size
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + _det_bytes(seed, at)


def framed_safetensors(seed: str) -> bytes:
    """Strict safetensors weights of more than one frame, for the frame-digest
    vector (format 1.2): a small U8 tensor, a BF16 one that straddles the
    boundary between the member's two frames, and an F32 one in the second
    frame. The payload repeats a short pseudo-random block, so the vector
    stays small once compressed."""
    prefix = "base_model.model.model.layers.0.self_attn.q_proj"
    n_bf16 = FRAME_SIZE // 2
    tensors = [
        (f"{prefix}.lora_A.weight", "U8", [40], 1),
        (f"{prefix}.lora_B.weight", "BF16", [n_bf16], 2),
        (f"{prefix}.lora_C.weight", "F32", [16, 64], 4),
    ]
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    at = 0
    for name, dtype, shape, width in tensors:
        size = width
        for d in shape:
            size *= d
        header[name] = {"data_offsets": [at, at + size], "dtype": dtype, "shape": shape}
        at += size
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    text += b" " * (-len(text) % 8)
    block = _det_bytes(seed, 251)  # a prime length: no alignment with frames
    payload = (block * (at // len(block) + 1))[:at]
    return len(text).to_bytes(8, "little") + text + payload


def tree_snapshot_frame_digests(root: Path) -> None:
    """An HF snapshot export whose weights span two frames (frame digests, 1.2)."""
    _snapshot_tree(root, framed_safetensors("snapshot-frame-digests"))


def tree_snapshot_bytegroup(root: Path) -> None:
    """An HF snapshot export packed with `--codec bytegroup` (format 1.2)."""
    _snapshot_tree(root, coded_safetensors("snapshot-bytegroup"))


def _snapshot_tree(root: Path, weights: bytes) -> None:
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "adapter/adapter_config.json": b'{"lora_alpha": 16, "peft_type": "LORA", "r": 8}\n',
        "adapter/adapter_model.safetensors": weights,
        "processor/preprocessor_config.json": b'{"feature_size": 128, "sampling_rate": 16000}\n',
        "processor/tokenizer.json": b'{"model": {"type": "BPE", "vocab": {"a": 0}}}\n',
    }
    for rel, data in files.items():
        _write(root, rel, data)
    manifest = {
        **{k: v for k, v in SNAPSHOT_METADATA.items()},
        "artifacts": [
            {"path": rel, "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}
            for rel, data in sorted(files.items())
        ],
        "audio_token": "<|AUDIO|>",
        "created_at": "2026-01-01T00:00:00Z",
        "created_by": "spec/vectors/generate.py",
        "max_length_seconds": 30.0,
        "num_audio_tokens": 8,
        "sample_rate": 16000,
    }
    text = json.dumps(manifest, sort_keys=True, indent=2) + "\n"
    _write(root, "snapshot_manifest.json", text.encode())


@dataclass(frozen=True)
class ValidVector:
    name: str
    build: Callable[[Path], None]
    metadata: dict[str, MetadataValue] = field(default_factory=dict)
    description: str = ""
    codec: str | None = None


VALID: tuple[ValidVector, ...] = (
    ValidVector("empty-tree", tree_empty, {}, "no files, no dirs: manifest member + EOF only"),
    ValidVector(
        "basic",
        tree_basic,
        {"vector": "basic", "answer": 42, "flag": True, "nothing": None},
        "duplicate content, executable, empty file, empty dir, NFC unicode names, "
        "metadata of every allowed type",
    ),
    ValidVector(
        "multi-frame",
        tree_multi_frame,
        {},
        "a blob of FRAME_SIZE + 100 bytes: its member is cut into two frames",
    ),
    ValidVector(
        "snapshot-safetensors",
        tree_snapshot_safetensors,
        SNAPSHOT_METADATA,
        "an HF snapshot export with the snapshot metadata keys and strict safetensors weights",
    ),
    ValidVector(
        "snapshot-bytegroup",
        tree_snapshot_bytegroup,
        SNAPSHOT_METADATA,
        "an HF snapshot export packed with --codec bytegroup (format 1.2): BF16, F32 and F16 "
        "tensors stored as byte planes, a U8 tensor as it is",
        codec="bytegroup",
    ),
    ValidVector(
        "snapshot-frame-digests",
        tree_snapshot_frame_digests,
        SNAPSHOT_METADATA,
        "an HF snapshot export whose weights span two frames (format 1.2): the blob lists "
        "the blake3 of each frame's content bytes (frame_blake3); its BF16 tensor straddles "
        "the frame boundary",
    ),
)


@dataclass(frozen=True)
class RefusedTree:
    """A tree snaparc's writer refuses, packed with that check bypassed."""

    name: str
    build: Callable[[Path], None]
    metadata: dict[str, MetadataValue]
    exit_code: int
    error: str
    description: str


REFUSED_TREES: tuple[RefusedTree, ...] = (
    RefusedTree(
        "polyglot-safetensors",
        tree_polyglot_safetensors,
        SNAPSHOT_METADATA,
        3,
        "SafetensorsError",
        "snapshot-safetensors with 12 bytes (a zip signature) after the last tensor: outside "
        "the safetensors profile",
    ),
)


@dataclass(frozen=True)
class RetiredVector:
    """A vector kept byte for byte as checked in, whose expected result changed
    with a format rule; the generator copies it and never rewrites it."""

    name: str
    exit_code: int
    error: str
    description: str


RETIRED: tuple[RetiredVector, ...] = (
    RetiredVector(
        "snapshot-like",
        3,
        "SafetensorsError",
        "an HF snapshot export whose adapter_model.safetensors holds 1536 bytes that are not "
        "a safetensors file (valid before the safetensors profile; refused since)",
    ),
)


def _with_created_by(plan: PackPlan, created_by: str) -> PackPlan:
    manifest = plan.manifest.model_copy(update={"created_by": created_by})
    data = encode_manifest(manifest)
    return PackPlan(
        manifest, data, plan_layout(manifest, len(data)), plan.sources, plan.tree, plan.tensors
    )


def pack_vector(
    vector: ValidVector | RefusedTree, workdir: Path, *, created_by: str | None = None
) -> bytes:
    """Build the vector's tree under `workdir` and pack it with snaparc's writer.

    `created_by` replaces the writer's own string, so that a later snaparc
    version can check that it still writes the checked-in bytes. A
    `RefusedTree` is packed without the safetensors check (`tensors={}`).
    """
    src = workdir / vector.name
    vector.build(src)
    bypass = {} if isinstance(vector, RefusedTree) else None
    codec = vector.codec if isinstance(vector, ValidVector) else None
    plan = plan_pack(
        src, threads=THREADS, metadata=dict(vector.metadata), tensors=bypass, codec=codec
    )
    if created_by is not None:
        plan = _with_created_by(plan, created_by)
    buf = io.BytesIO()
    write_archive(plan, buf, level=LEVEL, threads=THREADS)
    return buf.getvalue()


# --- independent assembler (trusted input only) ------------------------------


def split_frames(archive: bytes) -> list[bytes]:
    """The exact bytes of every frame (data frames and the seek table)."""
    splitter = FrameSplitter(io.BytesIO(archive).readinto, max_frame_bytes=16 << 20)
    frames: list[bytes] = []
    while (frame := splitter.next_frame()) is not None:
        frames.append(bytes(frame.data))
    return frames


def split_members(archive: bytes) -> list[tuple[str, bytes]]:
    """(name, data) of every tar member of one of our own archives."""
    dctx = zstandard.ZstdDecompressor()
    tar = b"".join(dctx.decompress(f) for f in split_frames(archive)[:-1])
    members: list[tuple[str, bytes]] = []
    pos = 0
    while tar[pos : pos + TAR_BLOCK] != bytes(TAR_BLOCK):
        header = tar[pos : pos + TAR_BLOCK]
        name = header[:100].split(b"\0", 1)[0].decode("ascii")
        size = parse_size(header[124:136])
        members.append((name, tar[pos + TAR_BLOCK : pos + TAR_BLOCK + size]))
        pos += TAR_BLOCK + size + padding_len(size)
    if tar[pos:] != TAR_EOF:
        raise ValueError("not a canonical end of archive")
    return members


def assemble(members: list[tuple[str, bytes]], *, level: int = LEVEL) -> bytes:
    """Write members as FORMAT.md lays them out: frames of FRAME_SIZE per member,
    the end-of-archive frame, the seek table. No checks: it writes what it is given."""
    raw_frames: list[bytes] = []
    for name, data in members:
        member = build_header(name, len(data)) + data + bytes(padding_len(len(data)))
        raw_frames += [member[i : i + FRAME_SIZE] for i in range(0, len(member), FRAME_SIZE)]
    raw_frames.append(TAR_EOF)
    cctx = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True)
    frames = [cctx.compress(raw) for raw in raw_frames]
    table = encode_seek_table(
        [SeekEntry(len(c), len(r)) for c, r in zip(frames, raw_frames, strict=True)]
    )
    return b"".join(frames) + table


BYTEGROUP_WIDTHS = {"BF16": 2, "F16": 2, "F32": 4}


def bytegroup_member(name: str, content: bytes) -> bytes:
    """The member data `--codec bytegroup` stores for safetensors `content`,
    written from FORMAT.md ("Blob codecs") with the header parsed here: in each
    frame, the runs of whole elements of the BF16/F16/F32 tensors (counted from
    each tensor's first byte), per width concatenated in file order, as byte
    planes written back into the runs' positions."""
    n = int.from_bytes(content[:8], "little")
    header = json.loads(content[8 : 8 + n])
    member = bytearray(build_header(name, len(content)) + content)
    member += bytes(padding_len(len(content)))
    tensors = sorted(
        (info["data_offsets"][0], info["data_offsets"][1], BYTEGROUP_WIDTHS[info["dtype"]])
        for key, info in header.items()
        if key != "__metadata__" and info["dtype"] in BYTEGROUP_WIDTHS
    )
    for lo in range(0, len(member), FRAME_SIZE):
        for w in sorted({w for _, _, w in tensors}):
            runs = []
            for begin, end, width in tensors:
                if width != w:
                    continue
                b, e = TAR_BLOCK + 8 + n + begin, TAR_BLOCK + 8 + n + end  # member offsets
                s = max(b, lo)
                s += -(s - b) % w
                t = min(e, lo + FRAME_SIZE)
                t -= (t - b) % w
                if t - s >= 2 * w:
                    runs.append((s, t))
            joined = b"".join(bytes(member[s:t]) for s, t in runs)
            planes = b"".join(joined[k::w] for k in range(w))
            at = 0
            for s, t in runs:
                member[s:t] = planes[at : at + t - s]
                at += t - s
    return bytes(member[TAR_BLOCK : TAR_BLOCK + len(content)])


# --- corrupted variants of basic ---------------------------------------------


def _manifest_edit(members: list[tuple[str, bytes]], old: bytes, new: bytes) -> None:
    name, data = members[0]
    if data.count(old) != 1:
        raise ValueError(f"{old!r} is not in the manifest exactly once")
    members[0] = (name, data.replace(old, new))


def flipped_blob_byte(basic: bytes) -> bytes:
    """One payload byte differs; zstd frames and checksums are valid."""
    members = split_members(basic)
    i = next(k for k, (_, d) in enumerate(members) if d.startswith(b"#!/bin/sh"))
    name, data = members[i]
    members[i] = (name, bytes([data[0] ^ 0x01]) + data[1:])
    return assemble(members)


def flipped_frame_checksum(basic: bytes) -> bytes:
    """The last byte of the first blob frame (its zstd content checksum) flipped."""
    frames = split_frames(basic)
    frames[1] = frames[1][:-1] + bytes([frames[1][-1] ^ 0xFF])
    return b"".join(frames)


def trailing_bytes(basic: bytes) -> bytes:
    return basic + b"trailing garbage\n"


def truncated(basic: bytes) -> bytes:
    """Cut in the middle of the first blob frame."""
    frames = split_frames(basic)
    return basic[: len(frames[0]) + len(frames[1]) // 2]


def bad_seek_table(basic: bytes) -> bytes:
    """The seek table's first entry claims one more compressed byte."""
    frames = split_frames(basic)
    table = bytearray(frames[-1])
    first = int.from_bytes(table[8:12], "little")
    table[8:12] = (first + 1).to_bytes(4, "little")
    return b"".join(frames[:-1]) + bytes(table)


def newer_major(basic: bytes) -> bytes:
    members = split_members(basic)
    _manifest_edit(members, b'"format_version":"1.0"', b'"format_version":"2.0"')
    return assemble(members)


def unlisted_member(basic: bytes) -> bytes:
    """Where the first non-empty listed blob must be, a well-formed member of
    another, unlisted blob of the same size.

    The member length is unchanged, so every frame size still matches the
    layout and the reader gets to the member's header (an extra member that
    shifts later frames is caught earlier, as a frame-size mismatch).
    """
    members = split_members(basic)
    i = next(k for k, (_, d) in enumerate(members) if k and d)
    size = len(members[i][1])
    data = (b"not listed\n" * size)[:size]
    members[i] = ("blobs/sha256/" + hashlib.sha256(data).hexdigest(), data)
    return assemble(members)


def path_traversal(basic: bytes) -> bytes:
    """A manifest path with a '..' component (the tar members are all fine)."""
    members = split_members(basic)
    _manifest_edit(members, b'"path":"README.txt"', b'"path":"../README.txt"')
    return assemble(members)


def base_without_external(basic: bytes) -> bytes:
    """A `base` archive id in a manifest whose blobs are all stored: only a
    thin archive (one with an external blob) may name a base."""
    members = split_members(basic)
    base = hashlib.sha256(b"a base archive that is not needed").hexdigest()
    _manifest_edit(members, b'"blobs":', f'"base":"{base}","blobs":'.encode())
    return assemble(members)


def unknown_codec(coded: bytes) -> bytes:
    """The bytegroup vector with its blob's codec renamed to one no reader knows."""
    members = split_members(coded)
    _manifest_edit(members, b'"codec":"bytegroup"', b'"codec":"bytegroup-v9"')
    return assemble(members)


def lying_frame_digest(framed: bytes) -> bytes:
    """The frame-digest vector with its second frame digest replaced by the
    first one's: every other digest, the blob and the frames are as written."""
    members = split_members(framed)
    manifest = json.loads(members[0][1])
    (blob,) = [b for b in manifest["blobs"] if "frame_blake3" in b]
    first, second = blob["frame_blake3"]
    _manifest_edit(members, f'"{first}","{second}"'.encode(), f'"{first}","{first}"'.encode())
    return assemble(members)


@dataclass(frozen=True)
class CorruptVector:
    name: str
    make: Callable[[bytes], bytes]
    exit_code: int
    error: str
    description: str
    derived_from: str = "basic"


CORRUPT: tuple[CorruptVector, ...] = (
    CorruptVector(
        "corrupt-blob-byte",
        flipped_blob_byte,
        1,
        "DigestMismatchError",
        "one byte of bin/run.sh's blob flipped, frames re-compressed: digest mismatch",
    ),
    CorruptVector(
        "corrupt-frame-checksum",
        flipped_frame_checksum,
        1,
        "CorruptArchiveError",
        "the zstd content checksum of the first blob frame flipped",
    ),
    CorruptVector(
        "trailing-bytes",
        trailing_bytes,
        3,
        "TrailingDataError",
        "17 bytes after the seek table",
    ),
    CorruptVector(
        "truncated",
        truncated,
        1,
        "TruncatedArchiveError",
        "the file ends in the middle of the first blob frame",
    ),
    CorruptVector(
        "bad-seek-table",
        bad_seek_table,
        1,
        "CorruptArchiveError",
        "the seek table's first compressed size is off by one",
    ),
    CorruptVector(
        "newer-major",
        newer_major,
        4,
        "UnsupportedVersionError",
        'format_version "2.0" (otherwise the basic archive)',
    ),
    CorruptVector(
        "unlisted-member",
        unlisted_member,
        3,
        "UnlistedMemberError",
        "a well-formed blobs/sha256/ member the manifest does not list, in place of a listed one",
    ),
    CorruptVector(
        "path-traversal",
        path_traversal,
        3,
        "UnsafePathError",
        'a manifest path "../README.txt"',
    ),
    CorruptVector(
        "base-without-external",
        base_without_external,
        3,
        "ManifestError",
        'a "base" archive id, but no blob is external: not a thin archive',
    ),
    CorruptVector(
        "unknown-codec",
        unknown_codec,
        4,
        "UnsupportedVersionError",
        'snapshot-bytegroup with the codec "bytegroup-v9", which no reader knows',
        derived_from="snapshot-bytegroup",
    ),
    CorruptVector(
        "lying-frame-digest",
        lying_frame_digest,
        1,
        "FrameDigestMismatchError",
        "snapshot-frame-digests whose manifest lists the first frame's blake3 for the second "
        "frame too (a new, consistent archive id): the second frame's content does not match",
        derived_from="snapshot-frame-digests",
    ),
)


# --- expected.json -----------------------------------------------------------


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _valid_entry(vector: ValidVector, archive: bytes, src: Path) -> dict[str, Any]:
    manifest_bytes = split_members(archive)[0][1]
    files = []
    for p in sorted(q for q in src.rglob("*") if q.is_file()):
        data = p.read_bytes()
        files.append(
            {
                "path": p.relative_to(src).as_posix(),
                "size": len(data),
                "executable": bool(p.stat().st_mode & stat.S_IXUSR),
                "sha256": _sha256(data),
                "blake3": blake3.blake3(data).hexdigest(),
            }
        )
    files.sort(key=lambda f: f["path"])
    dirs = sorted(
        d.relative_to(src).as_posix() for d in src.rglob("*") if d.is_dir() and not any(d.iterdir())
    )
    entry: dict[str, Any] = {
        "file": f"{vector.name}.dlmsnap",
        "sha256": _sha256(archive),
        "size": len(archive),
        "description": vector.description,
        "verify_exit": 0,
        "error": None,
        "archive_id": _sha256(manifest_bytes),
        "format_version": json.loads(manifest_bytes)["format_version"],
        "files": files,
        "dirs": dirs,
        "metadata": dict(vector.metadata),
    }
    coded = [b for b in json.loads(manifest_bytes)["blobs"] if "codec" in b]
    if coded:
        entry["coded_blobs"] = {b["digests"]["sha256"]: b["codec"] for b in coded}
    return entry


def check_coded_members(archive: bytes, src: Path) -> None:
    """Every coded member holds what the independent encoder gives (trusted input)."""
    manifest = json.loads(split_members(archive)[0][1])
    paths = {f["blob"]: f["path"] for f in manifest["files"]}
    stored = dict(split_members(archive)[1:])
    for b in manifest["blobs"]:
        if b.get("codec") == "bytegroup":
            name = f"blobs/bytegroup/{b['digests']['sha256']}"
            content = (src / paths[b["digests"]["sha256"]]).read_bytes()
            if stored[name] != bytegroup_member(name, content) or stored[name] == content:
                raise AssertionError(f"{name}: not the bytegroup encoding of its content")


def generate(out: Path) -> dict[str, Any]:
    """Write every vector and expected.json into `out`; return the expected data."""
    out.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    archives: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="snaparc-vectors-") as tmp:
        for vector in VALID:
            archive = pack_vector(vector, Path(tmp))
            if assemble(split_members(archive)) != archive:
                raise AssertionError(
                    f"{vector.name}: the assembler does not reproduce snaparc's bytes"
                )
            check_coded_members(archive, Path(tmp) / vector.name)
            archives[vector.name] = archive
            entries.append(_valid_entry(vector, archive, Path(tmp) / vector.name))
        for refused in REFUSED_TREES:
            data = pack_vector(refused, Path(tmp))
            archives[refused.name] = data
            entries.append(
                {
                    "file": f"{refused.name}.dlmsnap",
                    "sha256": _sha256(data),
                    "size": len(data),
                    "description": refused.description,
                    "verify_exit": refused.exit_code,
                    "error": refused.error,
                    "archive_id": None,
                }
            )
    for retired in RETIRED:
        data = (VECTORS_DIR / f"{retired.name}.dlmsnap").read_bytes()
        archives[retired.name] = data
        entries.append(
            {
                "file": f"{retired.name}.dlmsnap",
                "sha256": _sha256(data),
                "size": len(data),
                "description": retired.description,
                "verify_exit": retired.exit_code,
                "error": retired.error,
                "archive_id": None,
            }
        )
    basic = archives["basic"]
    for bad in CORRUPT:
        data = bad.make(archives[bad.derived_from])
        archives[bad.name] = data
        entries.append(
            {
                "file": f"{bad.name}.dlmsnap",
                "sha256": _sha256(data),
                "size": len(data),
                "description": bad.description,
                "derived_from": f"{bad.derived_from}.dlmsnap",
                "verify_exit": bad.exit_code,
                "error": bad.error,
                "archive_id": None,
            }
        )
    for name, data in archives.items():
        (out / f"{name}.dlmsnap").write_bytes(data)
    created_by = json.loads(split_members(basic)[0][1])["created_by"]
    expected = {
        "comment": "Generated by `python -m spec.vectors.generate`; see spec/FORMAT.md.",
        "format_version": "1.0",
        "created_by": created_by,
        "zstd_level": LEVEL,
        "libzstd_version": zstd_version(),
        "python_zstandard_version": zstandard.__version__,
        "vectors": entries,
    }
    text = json.dumps(expected, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    (out / EXPECTED_NAME).write_text(text, encoding="utf-8")
    return expected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spec.vectors.generate")
    parser.add_argument("--out", type=Path, default=VECTORS_DIR, help="output directory")
    args = parser.parse_args(argv)
    expected = generate(args.out)
    total = sum(v["size"] for v in expected["vectors"])
    print(f"wrote {len(expected['vectors'])} vectors ({total} bytes) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
