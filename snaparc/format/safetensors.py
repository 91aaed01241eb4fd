"""The strict safetensors profile: a safetensors file's header, judged byte for byte.

A safetensors file is an 8-byte little-endian header length `n`, `n` bytes
of JSON, then the byte buffer holding every tensor. The profile (spec/FORMAT.md,
"Safetensors profile") accepts a file only when:

- `n` is at most `MAX_HEADER_BYTES` (the reference Rust library's limit) and
  the header lies within the file (`header-length`);
- the header is UTF-8 (`header-utf8`), one JSON object (`header-json`)
  without a duplicate key at any level (`duplicate-key`), and with no
  float, NaN or Infinity anywhere (`header-json`);
- `__metadata__`, if present, maps strings to strings (`metadata`);
- every other key is a tensor: a non-empty name mapping to exactly
  `dtype`, `shape` and `data_offsets` (`tensor-entry`); a known dtype
  (`dtype`); a shape of non-negative integers (`shape`); `data_offsets`
  `[begin, end]` with `begin <= end` (`data-offsets`) whose span equals the
  element count times the dtype's size (`span`);
- the spans, sorted, neither overlap nor leave a hole, and end exactly at the
  end of the file (`coverage`): no byte of the file is outside the header or
  a tensor, which rules out polyglot files.

Only the header is needed (a few KiB, at most `MAX_HEADER_BYTES`), plus the
file's size: `HeadCollector` keeps exactly those bytes from a stream of the
file's bytes, so the check costs no extra pass over the payload.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from snaparc.errors import SafetensorsError
from snaparc.format.strictjson import Kind, strict_loads

SAFETENSORS_SUFFIX = ".safetensors"
LENGTH_BYTES = 8
MAX_HEADER_BYTES = 100_000_000
METADATA_KEY = "__metadata__"
EXPORT_TARGET_KEY, HF_SNAPSHOT = "export_target", "hf_snapshot"

# Bits per element of every dtype the safetensors library knows (0.8).
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E5M2FNUZ": 8,
    "F8_E4M3": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E8M0": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "F64": 64,
    "C64": 64,
    "I64": 64,
    "U64": 64,
}
_MAX_ELEMENTS = 1 << 64
_TENSOR_KEYS = frozenset({"dtype", "shape", "data_offsets"})


def is_safetensors_path(path: str) -> bool:
    """Whether a tree path names a safetensors file (the suffix loaders look for)."""
    return path.endswith(SAFETENSORS_SUFFIX)


def profile_applies(metadata: Mapping[str, object]) -> bool:
    """The profile binds the safetensors files of an HF snapshot export: an
    archive whose metadata says `export_target` `hf_snapshot`."""
    return metadata.get(EXPORT_TARGET_KEY) == HF_SNAPSHOT


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One tensor: its byte range [begin, end) is relative to the file's start."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    def to_json(self) -> dict[str, Any]:
        """Its record in the manifest's tensor index (and in `ls --tensors --json`)."""
        return {
            "dtype": self.dtype,
            "name": self.name,
            "offsets": [self.begin, self.end],
            "shape": list(self.shape),
        }


@dataclass(frozen=True, slots=True)
class SafetensorsHeader:
    header_bytes: int  # n: the JSON header's length (the buffer starts at 8 + n)
    tensors: tuple[TensorInfo, ...]  # in file order (ascending byte range)
    metadata: dict[str, str] | None


def span_bytes(dtype: str, shape: Sequence[int]) -> int | None:
    """Bytes a tensor of `shape` and (known) `dtype` takes; None when that is not
    a whole number of bytes or is absurdly large (bounding hostile arithmetic)."""
    elements = 0 if 0 in shape else 1
    for d in shape if elements else ():
        elements *= d
        if elements > _MAX_ELEMENTS:
            return None
    bits = elements * DTYPE_BITS[dtype]
    return None if bits % 8 else bits // 8


def _fail(rule: str, message: str) -> SafetensorsError:
    return SafetensorsError(f"not a strict safetensors file: {message} (rule {rule})", rule=rule)


class HeadCollector:
    """Keeps the length field and header of a safetensors file fed in order.

    `feed` copies only until the header is complete (or known to be over the
    limit), then returns at once; `check(size)` judges the file.
    """

    __slots__ = ("_buf", "_need")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._need = LENGTH_BYTES

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        while len(self._buf) < self._need and len(data):
            take = self._need - len(self._buf)
            self._buf += data[:take]
            data = data[take:]
            if self._need == LENGTH_BYTES and len(self._buf) == LENGTH_BYTES:
                n = int.from_bytes(self._buf, "little")
                if n <= MAX_HEADER_BYTES:
                    self._need = LENGTH_BYTES + n

    def check(self, size: int) -> SafetensorsHeader:
        return parse_header(bytes(self._buf), size)


def _refuse(kind: Kind, detail: str) -> SafetensorsError:
    if kind == "duplicate":
        return _fail("duplicate-key", f"the header has key {detail!r} twice")
    if kind == "float":
        return _fail("header-json", f"the header holds a non-integer number {detail}")
    return _fail("header-json", f"the header holds {detail}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # an escaped lone surrogate
        return False
    return True


def parse_header(head: bytes, size: int) -> SafetensorsHeader:
    """Judge a safetensors file of `size` bytes from its first bytes `head`.

    `head` holds at least the length field and the header (or the whole file
    when it is shorter). Raises `SafetensorsError` naming the broken rule.
    """
    if size < LENGTH_BYTES or len(head) < LENGTH_BYTES:
        raise _fail("header-length", f"{size} bytes is too short for the length field")
    n = int.from_bytes(head[:LENGTH_BYTES], "little")
    if n > MAX_HEADER_BYTES:
        raise _fail("header-length", f"header length {n} is over the limit {MAX_HEADER_BYTES}")
    if LENGTH_BYTES + n > size or len(head) < LENGTH_BYTES + n:
        raise _fail("header-length", f"header length {n} runs past the end of the file")
    raw = head[LENGTH_BYTES : LENGTH_BYTES + n]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail("header-utf8", "the header is not UTF-8") from None
    try:
        doc = strict_loads(text, refuse=_refuse, floats=False)
    except SafetensorsError:
        raise
    except (ValueError, RecursionError):
        raise _fail("header-json", "the header is not one JSON object") from None
    if not isinstance(doc, dict):
        raise _fail("header-json", "the header is not a JSON object")
    metadata = _metadata(doc.pop(METADATA_KEY)) if METADATA_KEY in doc else None
    data_start = LENGTH_BYTES + n
    tensors = sorted(
        (_tensor(name, entry, data_start) for name, entry in doc.items()),
        key=lambda t: (t.begin, t.end),
    )
    at = data_start
    for t in tensors:
        if t.begin != at:
            what = "overlaps the one before" if t.begin < at else "leaves a hole before it"
            raise _fail("coverage", f"tensor {t.name!r} {what}")
        at = t.end
    if at != size:
        raise _fail("coverage", f"{size - at} bytes after the last tensor belong to no tensor")
    return SafetensorsHeader(n, tuple(tensors), metadata)


def _metadata(value: object) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and _utf8(k) and _utf8(v)
        for k, v in value.items()
    ):
        raise _fail("metadata", f"{METADATA_KEY} must map strings to strings")
    return dict(value)


def _tensor(name: str, entry: object, data_start: int) -> TensorInfo:
    if not name or not _utf8(name):
        raise _fail("tensor-entry", f"tensor name {name!r} is empty or not UTF-8")
    if not isinstance(entry, dict) or set(entry) != _TENSOR_KEYS:
        raise _fail(
            "tensor-entry", f"tensor {name!r} must have exactly dtype, shape and data_offsets"
        )
    dtype = entry["dtype"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise _fail("dtype", f"tensor {name!r} has unknown dtype {dtype!r}")
    shape = entry["shape"]
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise _fail("shape", f"tensor {name!r}: shape must be a list of non-negative integers")
    offsets = entry["data_offsets"]
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_int(o) and o >= 0 for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise _fail("data-offsets", f"tensor {name!r}: data_offsets must be [begin, end]")
    span = offsets[1] - offsets[0]
    if span_bytes(dtype, shape) != span:
        raise _fail("span", f"tensor {name!r}: {span} bytes do not hold shape {shape} of {dtype}")
    return TensorInfo(name, dtype, tuple(shape), data_start + offsets[0], data_start + offsets[1])
