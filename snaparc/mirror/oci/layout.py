"""A `.dlmsnap` archive as a ModelPack OCI artifact, and back (spec/OCI.md).

Pure: bytes and dataclasses in, bytes and dataclasses out; no I/O.

The artifact is an OCI image manifest with the ModelPack `artifactType`:

- `config`: a ModelPack model config (`application/vnd.cncf.model.config.v1+json`)
  whose `modelfs.diffIds` lists every layer;
- one **raw** layer per file of the archive, in manifest order: the file's
  bytes exactly, so the layer digest is `sha256:<C>`, the blob's sha256 from
  the archive manifest (files with the same content share one registry blob),
  with `org.cncf.model.filepath` (and the pre-CNCF `org.cnai.model.filepath`,
  and `org.opencontainers.image.title` that ORAS names files by) = the path;
- the archive's own manifest (`dlmsnap/manifest.json`), digest `sha256:<ID>`;
- the **OCI record** (`dlmsnap/oci-record.json`): what rebuilds the `.dlmsnap`
  byte for byte from the raw files: the zstd level and library version, the
  compressed size of every frame, the end-of-archive frame, the file's size
  and sha256.

Everything in the OCI manifest follows from the archive manifest and the
record, so a reader rebuilds the manifest bytes it expects
(`build_artifact`) and refuses any other bytes: a layer that lies about its
size, digest, media type or path, an extra or a missing layer, a foreign
config.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from snaparc.errors import CorruptArchiveError
from snaparc.format.constants import MANIFEST_MEMBER, TAR_EOF
from snaparc.format.layout import frame_sizes
from snaparc.format.manifest import Manifest
from snaparc.format.seektable import SeekEntry, encode_seek_table, seek_table_size
from snaparc.format.tarheader import member_len
from snaparc.mirror.oci.url import OCITarget

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ARTIFACT_TYPE = "application/vnd.cncf.model.manifest.v1+json"
CONFIG_TYPE = "application/vnd.cncf.model.config.v1+json"
WEIGHT_RAW = "application/vnd.cncf.model.weight.v1.raw"
WEIGHT_CONFIG_RAW = "application/vnd.cncf.model.weight.config.v1.raw"
DOC_RAW = "application/vnd.cncf.model.doc.v1.raw"
CODE_RAW = "application/vnd.cncf.model.code.v1.raw"
SNAPARC_MANIFEST_TYPE = "application/vnd.snaparc.manifest.v1+json"
RECORD_TYPE = "application/vnd.snaparc.oci-record.v1+json"
RECORD_MEMBER = "dlmsnap/oci-record.json"
FILEPATH = "org.cncf.model.filepath"
FILEPATH_CNAI = "org.cnai.model.filepath"
TITLE = "org.opencontainers.image.title"
ARCHIVE_ID_ANNOTATION = "org.snaparc.archive.id"
BASE_ANNOTATION = "org.snaparc.archive.base"  # a thin archive's base archive id
RECORD_FORMAT = "snaparc-oci-archive"
RECORD_VERSION = 1
MAX_OCI_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_RECORD_BYTES = 64 * 1024 * 1024
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX = re.compile(r"^(?:[0-9a-f]{2})+$")
_ZSTD_VERSION = re.compile(r"^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$")

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".onnx", ".h5", ".ckpt")
_CODE_SUFFIXES = (".py", ".sh", ".ipynb")
_DOC_NAMES = ("readme", "license", "licence", "notice", "model_card")


class OCIArtifactError(CorruptArchiveError):
    """The registry's artifact is not what a snaparc push wrote (exit 1)."""


def media_type_for(path: str) -> str:
    """The ModelPack layer media type of a file (a pure function of its path)."""
    name = path.rsplit("/", 1)[-1].lower()
    if name.endswith(_WEIGHT_SUFFIXES):
        return WEIGHT_RAW
    if name.endswith(_CODE_SUFFIXES):
        return CODE_RAW
    if name.endswith(".md") or name.split(".", 1)[0] in _DOC_NAMES:
        return DOC_RAW
    return WEIGHT_CONFIG_RAW


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- the OCI record ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OCIRecord:
    """How to rebuild the archive file from its manifest and raw blobs.

    `frames[0]` are the compressed sizes of the manifest member's frames,
    `frames[i]` those of the i-th stored blob in manifest order."""

    archive_id: str
    level: int
    zstd: str
    frames: tuple[tuple[int, ...], ...]
    end_frame: bytes
    file_size: int
    file_sha256: str

    def seek_entries(self, manifest: Manifest, manifest_size: int) -> list[SeekEntry]:
        sizes = [manifest_size, *(b.size for b in manifest.stored_blobs)]
        entries: list[SeekEntry] = []
        for compressed, size in zip(self.frames, sizes, strict=True):
            raw = frame_sizes(member_len(size))
            entries.extend(SeekEntry(c, d) for c, d in zip(compressed, raw, strict=True))
        entries.append(SeekEntry(len(self.end_frame), len(TAR_EOF)))
        return entries

    def seek_table(self, manifest: Manifest, manifest_size: int) -> bytes:
        return encode_seek_table(self.seek_entries(manifest, manifest_size))


def encode_record(rec: OCIRecord) -> bytes:
    return (
        canonical_json(
            {
                "format": RECORD_FORMAT,
                "version": RECORD_VERSION,
                "archive_id": rec.archive_id,
                "level": rec.level,
                "zstd": rec.zstd,
                "frames": [list(f) for f in rec.frames],
                "end_frame": rec.end_frame.hex(),
                "file_size": rec.file_size,
                "file_sha256": rec.file_sha256,
            }
        )
        + b"\n"
    )


def _want(cond: bool, what: str) -> None:
    if not cond:
        raise OCIArtifactError(f"OCI record: {what}")


def _int(v: Any, what: str, *, low: int = 0) -> int:
    _want(isinstance(v, int) and not isinstance(v, bool) and v >= low, f"{what} is not a size")
    assert isinstance(v, int)
    return v


def decode_record(data: bytes, *, archive_id: str) -> OCIRecord:
    """Parse a record; it must be canonical and describe `archive_id`."""
    _want(len(data) <= MAX_RECORD_BYTES, "too large")
    try:
        obj = json.loads(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise OCIArtifactError("OCI record is not JSON") from None
    fields = {"format", "version", "archive_id", "level", "zstd", "frames", "end_frame"}
    fields |= {"file_size", "file_sha256"}
    _want(isinstance(obj, dict) and set(obj) == fields, "wrong fields")
    _want(obj["format"] == RECORD_FORMAT, f"format is {obj['format']!r}")
    _want(obj["version"] == RECORD_VERSION, f"unsupported record version {obj['version']!r}")
    _want(obj["archive_id"] == archive_id, f"describes {obj['archive_id']!r}, not {archive_id}")
    level = _int(obj["level"], "level", low=1)
    _want(level <= 22, "level is out of range")
    zstd = obj["zstd"]
    _want(isinstance(zstd, str) and bool(_ZSTD_VERSION.match(zstd)), "zstd is not a version")
    end = obj["end_frame"]
    _want(isinstance(end, str) and bool(_HEX.match(end)) and len(end) <= 1024, "end_frame")
    frames = obj["frames"]
    _want(isinstance(frames, list) and bool(frames), "frames is empty")
    members: list[tuple[int, ...]] = []
    for i, f in enumerate(frames):
        _want(isinstance(f, list) and bool(f), f"frames[{i}] is empty")
        members.append(tuple(_int(c, f"frames[{i}]", low=1) for c in f))
    sha = obj["file_sha256"]
    _want(isinstance(sha, str) and bool(_HEX64.match(sha)), "file_sha256 is not a sha256")
    rec = OCIRecord(
        archive_id,
        level,
        zstd,
        tuple(members),
        bytes.fromhex(end),
        _int(obj["file_size"], "file_size"),
        sha,
    )
    _want(encode_record(rec) == data, "bytes are not canonical")
    return rec


def check_record(rec: OCIRecord, manifest: Manifest, manifest_size: int) -> None:
    """The record's frames must fit the manifest's members, and add up to the file."""
    sizes = [manifest_size, *(b.size for b in manifest.stored_blobs)]
    _want(len(rec.frames) == len(sizes), f"{len(rec.frames)} members; the manifest has other")
    for i, (compressed, size) in enumerate(zip(rec.frames, sizes, strict=True)):
        want = len(frame_sizes(member_len(size)))
        _want(len(compressed) == want, f"member {i} has {len(compressed)} frames, not {want}")
    n = sum(len(f) for f in rec.frames) + 1
    total = sum(sum(f) for f in rec.frames) + len(rec.end_frame) + seek_table_size(n)
    _want(total == rec.file_size, f"frames add up to {total} bytes, not file_size {rec.file_size}")


# --- the artifact ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest}
        out["size"] = self.size
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


def _named(path: str) -> tuple[tuple[str, str], ...]:
    return ((FILEPATH, path), (FILEPATH_CNAI, path), (TITLE, path))


@dataclass(frozen=True, slots=True)
class Artifact:
    """Everything a push uploads, and the exact manifest bytes a pull expects."""

    config: bytes
    config_descriptor: Descriptor
    layers: tuple[Descriptor, ...]
    manifest: bytes

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)


def build_artifact(manifest: Manifest, manifest_bytes: bytes, record_bytes: bytes) -> Artifact:
    """The artifact of an archive: a deterministic function of its manifest and record.

    A thin archive (packed with `--base`) has a layer for each file whose blob
    it stores; the files of its base's blobs have none, and the manifest says
    which base (`org.snaparc.archive.base`)."""
    stored = {b.sha256: b.size for b in manifest.stored_blobs}
    layers = [
        Descriptor(media_type_for(f.path), f"sha256:{f.blob}", stored[f.blob], _named(f.path))
        for f in manifest.files
        if f.blob in stored
    ]
    aid = hashlib.sha256(manifest_bytes).hexdigest()
    layers.append(
        Descriptor(
            SNAPARC_MANIFEST_TYPE, f"sha256:{aid}", len(manifest_bytes), _named(MANIFEST_MEMBER)
        )
    )
    layers.append(
        Descriptor(
            RECORD_TYPE, sha256_digest(record_bytes), len(record_bytes), _named(RECORD_MEMBER)
        )
    )
    config = canonical_json(
        {
            "descriptor": {"name": aid},
            "config": {},
            "modelfs": {"type": "layers", "diffIds": [d.digest for d in layers]},
        }
    )
    config_descriptor = Descriptor(CONFIG_TYPE, sha256_digest(config), len(config))
    oci = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "config": config_descriptor.to_json(),
            "layers": [d.to_json() for d in layers],
            "annotations": {
                ARCHIVE_ID_ANNOTATION: aid,
                **({BASE_ANNOTATION: manifest.base} if manifest.base is not None else {}),
            },
        }
    )
    return Artifact(config, config_descriptor, tuple(layers), oci)


@dataclass(frozen=True, slots=True)
class SnaparcLayers:
    """Where a pull starts: the two snaparc layers an OCI manifest names."""

    archive_id: str
    manifest: Descriptor
    record: Descriptor


def _fail(what: str) -> OCIArtifactError:
    return OCIArtifactError(f"OCI manifest: {what}; it is not an artifact snaparc pushed")


def find_snaparc_layers(data: bytes) -> SnaparcLayers:
    """Parse just enough of an untrusted OCI manifest to find the archive
    manifest and record layers (the last two); all else is checked later by
    comparing with `build_artifact`."""
    if len(data) > MAX_OCI_MANIFEST_BYTES:
        raise _fail("too large")
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise _fail("not JSON") from None
    if not isinstance(obj, dict):
        raise _fail("not an object")
    if obj.get("mediaType") != OCI_MANIFEST or obj.get("artifactType") != ARTIFACT_TYPE:
        raise _fail(
            f"media type {obj.get('mediaType')!r}, artifact type {obj.get('artifactType')!r}"
        )
    layers = obj.get("layers")
    if not isinstance(layers, list) or len(layers) < 2:
        raise _fail("fewer than two layers")
    found: list[Descriptor] = []
    for layer, media_type in ((layers[-2], SNAPARC_MANIFEST_TYPE), (layers[-1], RECORD_TYPE)):
        if not isinstance(layer, dict) or layer.get("mediaType") != media_type:
            raise _fail(f"no {media_type} layer where snaparc puts it")
        digest, size = layer.get("digest"), layer.get("size")
        if not isinstance(digest, str) or not digest.startswith("sha256:"):
            raise _fail(f"{media_type} layer digest {digest!r}")
        if not _HEX64.match(digest[7:]):
            raise _fail(f"{media_type} layer digest {digest!r}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise _fail(f"{media_type} layer size {size!r}")
        found.append(Descriptor(media_type, digest, size))
    return SnaparcLayers(found[0].digest[7:], found[0], found[1])


def explain_difference(expected: Artifact, data: bytes) -> str:
    """Name the first thing an untrusted OCI manifest has that `expected` has not."""
    try:
        obj = json.loads(data)
        got = obj.get("layers", []) if isinstance(obj, dict) else []
    except ValueError:
        return "it is not JSON"
    want = [d.to_json() for d in expected.layers]
    if not isinstance(got, list):
        return "its layers are not a list"
    for i, (w, g) in enumerate(zip(want, got, strict=False)):
        if w != g:
            path = dict(w.get("annotations", {})).get(FILEPATH, "?")
            fields = [
                k
                for k in ("mediaType", "digest", "size", "annotations")
                if w.get(k) != (g.get(k) if isinstance(g, dict) else None)
            ]
            return f"layer {i} ({path}) has another {', '.join(fields) or 'shape'}"
    if len(got) != len(want):
        return f"it has {len(got)} layers, not {len(want)}"
    return "its config or annotations differ (or its bytes are not canonical)"


@dataclass(frozen=True, slots=True)
class CheckedArtifact:
    """An artifact whose manifest, archive manifest and record agree."""

    target: OCITarget
    manifest_digest: str
    manifest: Manifest
    manifest_bytes: bytes
    record: OCIRecord
    oci_manifest: bytes = b""  # the OCI manifest's bytes (its digest: manifest_digest)

    @property
    def archive_id(self) -> str:
        return self.record.archive_id
