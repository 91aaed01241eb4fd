"""The embedded manifest: model, canonical bytes, strict parsing.

Canonical bytes: UTF-8 JSON with keys sorted by code point, no insignificant
white space, non-ASCII characters written as themselves, integers only (no
floats), optional fields omitted when at their default, and one trailing
newline. `encode_manifest(parse_manifest(b)) == b` holds for every accepted
`b`; anything else is refused as non-canonical. The archive id is the sha256
of these bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

from snaparc.errors import (
    LimitExceededError,
    ManifestError,
    NonCanonicalError,
    UnsafePathError,
    UnsupportedVersionError,
)
from snaparc.format.constants import (
    BASE_FORMAT_VERSION,
    CODEC_MINOR,
    CODEC_VERSION,
    CODECS,
    FORMAT_MAJOR,
    FORMAT_MINOR,
    FORMAT_NAME,
    FORMAT_VERSION,
    FRAME_SIZE,
    TAR_BLOCK,
    TENSOR_INDEX_MINOR,
    TENSOR_INDEX_VERSION,
)
from snaparc.format.limits import Limits
from snaparc.format.paths import check_path, check_tree
from snaparc.format.safetensors import (
    DTYPE_BITS,
    TensorInfo,
    is_safetensors_path,
    profile_applies,
    span_bytes,
)
from snaparc.format.strictjson import Kind, strict_loads
from snaparc.format.tarheader import member_len

_VERSION = re.compile(r"(0|[1-9][0-9]{0,4})\.(0|[1-9][0-9]{0,4})")
MAX_SAFE_INT = 2**53 - 1

MetadataValue = str | int | bool | None


_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Digests:
    blake3: str
    sha256: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BlobEntry:
    """One distinct content. `external` blobs are not stored in this archive
    (thin archives); their bytes come from the base archive or a mirror. A
    stored blob with a `codec` (format 1.2) is stored transformed
    (`snaparc.format.codec`); its digests and size are still the content's.
    `frame_blake3` (format 1.2): the blake3 of the content bytes each frame of
    the blob's member carries, in order (see `frame_content_ranges`); present
    exactly on a stored blob with a tensor index entry and more than one frame."""

    digests: Digests
    size: int
    external: bool = False
    codec: str | None = None
    frame_blake3: tuple[str, ...] = ()

    @property
    def sha256(self) -> str:
        return self.digests.sha256

    @property
    def blake3(self) -> str:
        return self.digests.blake3


@dataclass(frozen=True, slots=True, kw_only=True)
class FileEntry:
    path: str
    size: int
    executable: bool
    blob: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """The parsed manifest. Build one with `build_manifest` (writer) or
    `parse_manifest` (reader); both check every field."""

    format: str
    format_version: str
    created_by: str
    files: list[FileEntry]
    dirs: list[str] = field(default_factory=list)
    blobs: list[BlobEntry]
    metadata: dict[str, MetadataValue] = field(default_factory=dict)
    base: str | None = None
    # The tensor index (format 1.1): blob sha256 -> its tensors, in file order.
    tensors: dict[str, tuple[TensorInfo, ...]] = field(default_factory=dict)

    def model_copy(self, *, update: dict[str, Any]) -> Manifest:
        """A copy with some fields replaced (tests and vector generation)."""
        return dataclasses.replace(self, **update)

    def blob_index(self) -> dict[str, BlobEntry]:
        return {b.sha256: b for b in self.blobs}

    @property
    def stored_blobs(self) -> list[BlobEntry]:
        return [b for b in self.blobs if not b.external]

    @property
    def total_size(self) -> int:
        """Bytes of the unpacked tree (duplicates counted each time)."""
        return sum(f.size for f in self.files)

    @property
    def blob_bytes(self) -> int:
        return sum(b.size for b in self.blobs)

    def paths_by_blob(self) -> dict[str, list[FileEntry]]:
        out: dict[str, list[FileEntry]] = {}
        for f in self.files:
            out.setdefault(f.blob, []).append(f)
        return out


MANIFEST_FIELDS = frozenset(
    (
        "format",
        "format_version",
        "created_by",
        "files",
        "dirs",
        "blobs",
        "metadata",
        "base",
        "tensors",
    )
)


def profiled_blobs(m: Manifest) -> dict[str, str]:
    """The blobs the safetensors profile binds (sha256 -> the first path naming it)."""
    if not profile_applies(m.metadata):
        return {}
    out: dict[str, str] = {}
    for f in m.files:
        if is_safetensors_path(f.path):
            out.setdefault(f.blob, f.path)
    return out


def _fail(where: str, what: str) -> ManifestError:
    return ManifestError(f"manifest field {where}: {what}")


def _obj(value: Any, where: str, required: set[str], optional: set[str]) -> dict[str, Any]:
    if type(value) is not dict:
        raise _fail(where or "(top)", "must be an object")
    extra = set(value) - required - optional
    if extra:
        raise _fail(f"{where}.{sorted(extra)[0]}".lstrip("."), "unknown field")
    missing = required - set(value)
    if missing:
        raise _fail(f"{where}.{sorted(missing)[0]}".lstrip("."), "missing")
    return value


def _str(value: Any, where: str, *, max_len: int | None = None) -> str:
    if type(value) is not str:
        raise _fail(where, "must be a string")
    if max_len is not None and not 1 <= len(value) <= max_len:
        raise _fail(where, f"must be 1 to {max_len} characters")
    return value


def _hex(value: Any, where: str) -> str:
    if type(value) is not str or not _HEX.fullmatch(value):
        raise _fail(where, "must be 64 lowercase hex digits")
    return value


def _size(value: Any, where: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_SAFE_INT:
        raise _fail(where, f"must be an integer from 0 to {MAX_SAFE_INT}")
    return value


def _bool(value: Any, where: str) -> bool:
    if type(value) is not bool:
        raise _fail(where, "must be true or false")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if type(value) is not list:
        raise _fail(where, "must be an array")
    return value


def _tensor_index(value: Any) -> dict[str, tuple[TensorInfo, ...]]:
    out: dict[str, tuple[TensorInfo, ...]] = {}
    if type(value) is not dict:
        raise _fail("tensors", "must be an object")
    for key, records in value.items():
        w = f"tensors.{key}"
        _hex(key, w)
        infos = []
        for i, raw in enumerate(_list(records, w)):
            r = _obj(raw, f"{w}.{i}", {"dtype", "name", "offsets", "shape"}, set())
            dtype = _str(r["dtype"], f"{w}.{i}.dtype")
            if dtype not in DTYPE_BITS:
                raise _fail(f"{w}.{i}.dtype", f"unknown dtype {dtype!r}")
            ws, wo = f"{w}.{i}.shape", f"{w}.{i}.offsets"
            shape = tuple(_size(d, ws) for d in _list(r["shape"], ws))
            offsets = [_size(o, wo) for o in _list(r["offsets"], wo)]
            if len(offsets) != 2 or offsets[0] > offsets[1]:
                raise _fail(f"{w}.{i}.offsets", "must be [begin, end] with begin <= end")
            infos.append(
                TensorInfo(_str(r["name"], f"{w}.{i}.name"), dtype, shape, offsets[0], offsets[1])
            )
        out[key] = tuple(infos)
    return out


def _manifest_from_json(obj: dict[str, Any], minor: int = 0) -> Manifest:
    """Every field's type, pattern and range, exactly (no coercion)."""
    _obj(
        obj,
        "",
        {"format", "format_version", "created_by", "files", "blobs"},
        {"dirs", "metadata", "base"} | ({"tensors"} if minor >= TENSOR_INDEX_MINOR else set()),
    )
    files = []
    for i, raw in enumerate(_list(obj["files"], "files")):
        w = f"files.{i}"
        _obj(raw, w, {"path", "size", "executable", "blob"}, set())
        files.append(
            FileEntry(
                path=_str(raw["path"], f"{w}.path"),
                size=_size(raw["size"], f"{w}.size"),
                executable=_bool(raw["executable"], f"{w}.executable"),
                blob=_hex(raw["blob"], f"{w}.blob"),
            )
        )
    blobs = []
    for i, raw in enumerate(_list(obj["blobs"], "blobs")):
        w = f"blobs.{i}"
        optional = {"external", "codec", "frame_blake3"} if minor >= CODEC_MINOR else {"external"}
        _obj(raw, w, {"digests", "size"}, optional)
        codec = raw.get("codec")
        if codec is not None:
            codec = _str(codec, f"{w}.codec")
            if codec not in CODECS:
                raise UnsupportedVersionError(
                    f"manifest field {w}.codec: blob codec {codec!r} is unknown to this "
                    f"snaparc (it knows {', '.join(CODECS)}); upgrade snaparc"
                )
        d = _obj(raw["digests"], f"{w}.digests", {"blake3", "sha256"}, set())
        wf = f"{w}.frame_blake3"
        frames = tuple(
            _hex(h, f"{wf}.{k}") for k, h in enumerate(_list(raw.get("frame_blake3", []), wf))
        )
        if "frame_blake3" in raw and not frames:
            raise _fail(wf, "must not be empty (omit it)")
        blobs.append(
            BlobEntry(
                digests=Digests(
                    blake3=_hex(d["blake3"], f"{w}.digests.blake3"),
                    sha256=_hex(d["sha256"], f"{w}.digests.sha256"),
                ),
                size=_size(raw["size"], f"{w}.size"),
                external=_bool(raw.get("external", False), f"{w}.external"),
                codec=codec,
                frame_blake3=frames,
            )
        )
    dirs = [_str(d, f"dirs.{i}") for i, d in enumerate(_list(obj.get("dirs", []), "dirs"))]
    metadata_raw = obj.get("metadata", {})
    if type(metadata_raw) is not dict:
        raise _fail("metadata", "must be an object")
    metadata: dict[str, MetadataValue] = {}
    for key, value in metadata_raw.items():
        if value is not None and type(value) not in (str, int, bool):
            raise _fail(f"metadata.{key}", "must be a string, integer, boolean or null")
        metadata[key] = value
    base = obj.get("base")
    return Manifest(
        format=_str(obj["format"], "format"),
        format_version=_str(obj["format_version"], "format_version"),
        created_by=_str(obj["created_by"], "created_by", max_len=256),
        files=files,
        dirs=dirs,
        blobs=blobs,
        metadata=metadata,
        base=None if base is None else _hex(base, "base"),
        tensors=_tensor_index(obj["tensors"]) if "tensors" in obj else {},
    )


def _to_json_obj(m: Manifest) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "format": m.format,
        "format_version": m.format_version,
        "created_by": m.created_by,
        "files": [
            {"path": f.path, "size": f.size, "executable": f.executable, "blob": f.blob}
            for f in m.files
        ],
        "dirs": list(m.dirs),
        "blobs": [
            {
                "digests": {"blake3": b.digests.blake3, "sha256": b.digests.sha256},
                "size": b.size,
                **({"external": True} if b.external else {}),
                **({"codec": b.codec} if b.codec is not None else {}),
                **({"frame_blake3": list(b.frame_blake3)} if b.frame_blake3 else {}),
            }
            for b in m.blobs
        ],
        "metadata": dict(m.metadata),
    }
    if m.base is not None:
        obj["base"] = m.base
    if m.tensors:
        obj["tensors"] = {blob: [t.to_json() for t in infos] for blob, infos in m.tensors.items()}
    return obj


def encode_manifest(m: Manifest) -> bytes:
    """The canonical bytes of a manifest."""
    text = json.dumps(
        _to_json_obj(m), ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    )
    return text.encode("utf-8") + b"\n"


def archive_id(manifest_bytes: bytes) -> str:
    return hashlib.sha256(manifest_bytes).hexdigest()


def _refuse(kind: Kind, detail: str) -> ManifestError:
    if kind == "duplicate":
        return ManifestError(f"manifest: duplicate JSON key {detail!r}")
    if kind == "float":
        return ManifestError(
            f"manifest: floating-point number {detail!r} (only integers are allowed)"
        )
    return ManifestError(f"manifest: {detail} is not JSON")


def check_version(obj: dict[str, Any]) -> tuple[int, int]:
    if obj.get("format") != FORMAT_NAME:
        raise ManifestError(f"manifest: 'format' is {obj.get('format')!r}, not {FORMAT_NAME!r}")
    version = obj.get("format_version")
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise ManifestError(f"manifest: malformed format_version {version!r}")
    major, minor = (int(x) for x in version.split("."))
    if major > FORMAT_MAJOR:
        raise UnsupportedVersionError(
            f"archive format version {version} is newer than this snaparc reads "
            f"({FORMAT_VERSION}); upgrade snaparc"
        )
    if major < 1:
        raise UnsupportedVersionError(f"archive format version {version} is not supported")
    return major, minor


def parse_manifest(data: bytes, *, limits: Limits) -> Manifest:
    """Parse and check manifest bytes; refuse anything not canonical or unsafe."""
    if len(data) > limits.max_manifest_bytes:
        raise LimitExceededError(
            f"manifest is {len(data)} bytes (limit {limits.max_manifest_bytes}; "
            "raise with --max-manifest-bytes)",
            limit="max_manifest_bytes",
            value=len(data),
            maximum=limits.max_manifest_bytes,
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"manifest is not valid UTF-8: {exc}") from None
    try:
        obj = strict_loads(text, refuse=_refuse, floats=False)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"manifest is not valid JSON: {exc}") from None
    except ValueError as exc:  # e.g. an integer literal longer than Python converts
        raise ManifestError(f"manifest has an unreadable value: {exc}") from None
    except RecursionError:
        raise ManifestError("manifest is nested too deeply") from None
    if not isinstance(obj, dict):
        raise ManifestError("manifest is not a JSON object")
    _major, minor = check_version(obj)
    if minor > FORMAT_MINOR:
        # A newer minor version may add optional top-level fields; ignore them.
        obj = {k: v for k, v in obj.items() if k in MANIFEST_FIELDS}
    files = obj.get("files")
    if isinstance(files, list) and len(files) > limits.max_files:
        raise LimitExceededError(
            f"manifest lists {len(files)} files (limit {limits.max_files}; raise with --max-files)",
            limit="max_files",
            value=len(files),
            maximum=limits.max_files,
        )
    manifest = _manifest_from_json(obj, minor)
    check_manifest(manifest, limits=limits)
    try:
        canonical = encode_manifest(manifest)
    except UnicodeEncodeError:
        raise ManifestError("manifest holds a string that is not valid Unicode") from None
    if minor <= FORMAT_MINOR and canonical != data:
        raise NonCanonicalError(
            "manifest bytes are not canonical (key order, spacing, escapes or defaults)"
        )
    return manifest


def check_manifest(m: Manifest, *, limits: Limits) -> None:
    """Semantic rules that a schema cannot say."""
    for key in m.metadata:
        if not key or len(key) > 128:
            raise ManifestError(f"manifest: bad metadata key {key!r}")
    for key, value in m.metadata.items():
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INT:
            raise ManifestError(f"manifest: metadata {key!r} is outside the safe integer range")
    blobs = m.blob_index()
    if len(blobs) != len(m.blobs):
        raise ManifestError("manifest: a blob is listed twice")
    prev = ""
    for b in m.blobs:
        if b.sha256 <= prev:
            raise NonCanonicalError("manifest: blobs are not sorted by sha256")
        prev = b.sha256
    referenced: set[str] = set()
    prev_path: str | None = None
    for f in m.files:
        check_path(f.path)
        if f.path == prev_path:
            raise UnsafePathError(f"manifest: duplicate path {f.path!r}", path=f.path)
        if prev_path is not None and f.path <= prev_path:
            raise NonCanonicalError(f"manifest: files are not sorted (at {f.path!r})")
        prev_path = f.path
        blob = blobs.get(f.blob)
        if blob is None:
            raise ManifestError(f"manifest: file {f.path!r} refers to unlisted blob {f.blob}")
        if blob.size != f.size:
            raise ManifestError(
                f"manifest: file {f.path!r} has size {f.size} but its blob has {blob.size}"
            )
        referenced.add(f.blob)
    orphans = set(blobs) - referenced
    if orphans:
        raise ManifestError(f"manifest: blob {sorted(orphans)[0]} is listed but no file uses it")
    prev_dir: str | None = None
    for d in m.dirs:
        check_path(d)
        if prev_dir is not None and d <= prev_dir:
            raise NonCanonicalError("manifest: dirs are not sorted")
        prev_dir = d
    check_tree((f.path for f in m.files), m.dirs)
    _check_base(m)
    _check_tensor_index(m)
    frames = sum(-(-(b.size + 1024) // FRAME_SIZE) for b in m.blobs if not b.external)
    if frames > limits.max_frames:
        raise LimitExceededError(
            f"archive would need about {frames} frames (limit {limits.max_frames})",
            limit="max_frames",
            value=frames,
            maximum=limits.max_frames,
        )
    total = m.total_size
    if total > limits.max_total_bytes:
        raise LimitExceededError(
            f"archive unpacks to {total} bytes (limit {limits.max_total_bytes}; "
            "raise with --max-total-bytes)",
            limit="max_total_bytes",
            value=total,
            maximum=limits.max_total_bytes,
        )


def _check_tensor_index(m: Manifest) -> None:
    """The tensor index lists exactly the profiled blobs, each as a strict file
    would lay its tensors out (the blob's own header is compared when it is read)."""
    bound = profiled_blobs(m)
    if m.format_version == TENSOR_INDEX_VERSION and not m.tensors:
        # 1.1 is written exactly for an index (a later reader keeps this known field).
        raise ManifestError(
            f"manifest: format {TENSOR_INDEX_VERSION} without a tensor index "
            "(a writer writes 1.0 then)"
        )
    _check_codecs(m)
    if not m.tensors:
        return
    for blob in m.tensors:
        if blob not in bound:
            raise ManifestError(
                f"manifest: tensors lists blob {blob}, which no safetensors file of a "
                "snapshot export uses"
            )
    missing = sorted(set(bound) - set(m.tensors))
    if missing:
        raise ManifestError(f"manifest: tensors has no entry for {bound[missing[0]]!r}")
    sizes = {b.sha256: b.size for b in m.blobs}
    for blob, infos in m.tensors.items():
        at = infos[0].begin if infos else sizes[blob]
        names: set[str] = set()
        for t in infos:
            if (
                t.begin != at
                or t.name in names
                or not t.name
                or span_bytes(t.dtype, t.shape) != t.end - t.begin
            ):
                raise ManifestError(f"manifest: tensors of blob {blob}: bad entry {t.name!r}")
            names.add(t.name)
            at = t.end
        if at != sizes[blob] or (infos and infos[0].begin < 8):
            raise ManifestError(f"manifest: tensors of blob {blob} do not cover it")


def _check_codecs(m: Manifest) -> None:
    """A codec only on a stored blob with a tensor index; frame digests exactly on
    the stored, indexed blobs of more than one frame; 1.2 exactly for either."""
    coded = [b for b in m.blobs if b.codec is not None]
    if m.format_version == CODEC_VERSION and not coded and not needs_1_2(m.blobs):
        raise ManifestError(
            f"manifest: format {CODEC_VERSION} without a coded blob or frame digests "
            "(a writer writes 1.1 then)"
        )
    minor = int(m.format_version.split(".")[1])
    for b in m.blobs:
        # 1.0 and 1.1 have no frame digests (their parser refuses the field).
        framed = minor >= CODEC_MINOR and wants_frame_digests(b, m.tensors)
        want = frame_count(b.size) if framed else 0
        if len(b.frame_blake3) != want:
            raise ManifestError(
                f"manifest: blob {b.sha256} has {len(b.frame_blake3)} frame digests; "
                f"its member has {want} frames that need one"
                if want
                else f"manifest: blob {b.sha256} has frame digests but needs none (only a "
                "stored blob with a tensor index entry and more than one frame has them)"
            )
    for b in coded:
        if b.external:
            raise ManifestError(
                f"manifest: external blob {b.sha256} has a codec (only stored blobs are coded)"
            )
        if b.sha256 not in m.tensors:
            raise ManifestError(
                f"manifest: blob {b.sha256} has codec {b.codec!r} but no tensor index entry"
            )


def frame_count(size: int) -> int:
    """Frames of the member of a blob of `size` bytes (header, data, padding)."""
    return -(-member_len(size) // FRAME_SIZE)


def frame_content_ranges(size: int) -> list[tuple[int, int]]:
    """[begin, end) of the blob bytes each frame of its member carries: frame 0
    the bytes after the 512-byte tar header, the last those before the padding."""
    return [
        (max(0, j * FRAME_SIZE - TAR_BLOCK), min(size, (j + 1) * FRAME_SIZE - TAR_BLOCK))
        for j in range(frame_count(size))
    ]


def wants_frame_digests(blob: BlobEntry, indexed: Container[str]) -> bool:
    """Frame digests are written for a stored blob with a tensor index entry
    whose member spans more than one frame (format 1.2)."""
    return not blob.external and blob.sha256 in indexed and frame_count(blob.size) > 1


def needs_1_2(blobs: list[BlobEntry]) -> bool:
    return any(b.codec is not None or b.frame_blake3 for b in blobs)


def _check_base(m: Manifest) -> None:
    """`base` is present exactly when a blob is external (a thin archive)."""
    external = any(b.external for b in m.blobs)
    if m.base is None and external:
        raise ManifestError("manifest: external blobs without a base archive id")
    if m.base is not None and not external:
        raise ManifestError(
            "manifest: a base archive id but no external blob (only a thin archive has a base)"
        )


def build_manifest(
    *,
    files: list[FileEntry],
    dirs: list[str],
    blobs: list[BlobEntry],
    created_by: str,
    metadata: dict[str, MetadataValue] | None = None,
    base: str | None = None,
    tensors: dict[str, tuple[TensorInfo, ...]] | None = None,
) -> Manifest:
    """A manifest in canonical order from unsorted parts (the writer's path).

    `base` must be given exactly when a blob is external (else ManifestError).
    The manifest is format 1.2 when a blob has a codec or frame digests, else
    1.1 when it has a tensor index, else 1.0.
    """
    if needs_1_2(blobs):
        version = CODEC_VERSION
    else:
        version = TENSOR_INDEX_VERSION if tensors else BASE_FORMAT_VERSION
    manifest = Manifest(
        format=FORMAT_NAME,
        format_version=version,
        created_by=created_by,
        files=sorted(files, key=lambda f: f.path),
        dirs=sorted(dirs),
        blobs=sorted(blobs, key=lambda b: b.sha256),
        metadata=dict(metadata or {}),
        base=base,
        tensors=dict(sorted((tensors or {}).items())),
    )
    _check_base(manifest)
    return manifest
