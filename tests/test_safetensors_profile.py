"""The strict safetensors profile (snaparc.format.safetensors), rule by rule.

Every file the `safetensors` library writes passes; every crafted file below
breaks exactly one rule and is refused with that rule's name. Beside each
crafted file the table records whether the library itself loads it (checked
here, so the note stays true): those are the files snaparc refuses that a
loader would take.
"""

from __future__ import annotations

import json
import random

import pytest
from snaparc_testlib import safetensors_file

from snaparc.errors import SafetensorsError
from snaparc.format.safetensors import MAX_HEADER_BYTES, HeadCollector, parse_header

np = pytest.importorskip("numpy")
st_numpy = pytest.importorskip("safetensors.numpy")
safetensors = pytest.importorskip("safetensors")


def raw(header: bytes | str, data: bytes = b"", *, n: int | None = None) -> bytes:
    text = header.encode() if isinstance(header, str) else header
    return (len(text) if n is None else n).to_bytes(8, "little") + text + data


def entry(dtype: str, shape: list[object], begin: int, end: int) -> str:
    return json.dumps({"dtype": dtype, "shape": shape, "data_offsets": [begin, end]})


U8_1 = entry("U8", [1], 0, 1)

# name: (file bytes, rule snaparc names, whether the library loads it)
CRAFTED: dict[str, tuple[bytes, str, bool]] = {
    "shorter-than-length": (b"\x02\x00", "header-length", False),
    "length-over-limit": (raw("{}", n=MAX_HEADER_BYTES + 1), "header-length", False),
    "length-past-end": (raw("{}", n=4096), "header-length", False),
    "not-utf8": (raw(b'{"\xff":' + U8_1.encode() + b"}", b"x"), "header-utf8", False),
    "not-json": (raw('{"t":'), "header-json", False),
    "not-an-object": (raw("[]"), "header-json", False),
    "float-in-shape": (raw('{"t":' + entry("U8", [1.0], 0, 1) + "}", b"x"), "header-json", False),
    "nan-in-shape": (
        raw('{"t":{"dtype":"U8","shape":[NaN],"data_offsets":[0,1]}}', b"x"),
        "header-json",
        False,
    ),
    "nul-padded-header": (raw(b"{}" + b"\0" * 6), "header-json", False),
    "duplicate-tensor": (
        raw('{"t":' + U8_1 + ',"t":' + U8_1 + "}", b"x"),
        "duplicate-key",
        True,
    ),
    "duplicate-field": (
        raw('{"t":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"x"),
        "duplicate-key",
        False,
    ),
    "metadata-not-strings": (
        raw('{"__metadata__":{"a":1},"t":' + U8_1 + "}", b"x"),
        "metadata",
        False,
    ),
    "metadata-null": (raw('{"__metadata__":null,"t":' + U8_1 + "}", b"x"), "metadata", True),
    "extra-tensor-field": (
        raw('{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":0}}', b"x"),
        "tensor-entry",
        True,
    ),
    "tensor-not-object": (raw('{"t":[1]}'), "tensor-entry", False),
    "empty-name": (raw('{"":' + U8_1 + "}", b"x"), "tensor-entry", True),
    "unknown-dtype": (raw('{"t":' + entry("Q4", [1], 0, 1) + "}", b"x"), "dtype", False),
    "negative-dim": (raw('{"t":' + entry("U8", [-1], 0, 1) + "}", b"x"), "shape", False),
    "boolean-dim": (raw('{"t":' + entry("U8", [True], 0, 1) + "}", b"x"), "shape", False),
    "offsets-reversed": (raw('{"t":' + entry("U8", [1], 1, 0) + "}", b"x"), "data-offsets", False),
    "offsets-three": (
        raw('{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1,1]}}', b"x"),
        "data-offsets",
        False,
    ),
    "span-not-shape": (raw('{"t":' + entry("F32", [2], 0, 4) + "}", b"xxxx"), "span", False),
    "overlap": (
        raw('{"a":' + entry("U8", [2], 0, 2) + ',"b":' + entry("U8", [2], 1, 3) + "}", b"xyz"),
        "coverage",
        False,
    ),
    "hole": (
        raw('{"a":' + entry("U8", [1], 0, 1) + ',"b":' + entry("U8", [1], 2, 3) + "}", b"xyz"),
        "coverage",
        False,
    ),
    "trailing-bytes": (raw('{"t":' + U8_1 + "}", b"x" + b"PK\x03\x04 a zip"), "coverage", False),
    "buffer-short": (raw('{"t":' + entry("U8", [4], 0, 4) + "}", b"xy"), "coverage", False),
}


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_file_is_refused_with_its_rule(name: str) -> None:
    data, rule, _ = CRAFTED[name]
    with pytest.raises(SafetensorsError) as ei:
        parse_header(data, len(data))
    assert ei.value.rule == rule
    assert f"rule {rule}" in str(ei.value)
    assert ei.value.exit_code == 3


def _library_loads(data: bytes) -> bool:
    try:
        safetensors.deserialize(data)
    except Exception:
        return False
    return True


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_the_library_verdict_on_each_crafted_file_is_as_noted(name: str) -> None:
    data, _, library_loads = CRAFTED[name]
    assert _library_loads(data) == library_loads


def _library_files() -> dict[str, bytes]:
    rng = np.random.default_rng(7)
    cases: dict[str, dict[str, object]] = {
        "floats": {
            "a.lora_A.weight": rng.standard_normal((4, 8)).astype(np.float32),
            "a.lora_B.weight": rng.standard_normal((8, 4)).astype(np.float16),
            "b": rng.standard_normal(3).astype(np.float64),
        },
        "ints": {
            f"t{d}": rng.integers(0, 100, size=(3, 5)).astype(d)
            for d in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
        },
        "odd-shapes": {
            "scalar": np.array(3.5, dtype=np.float32),
            "empty": np.zeros((0,), dtype=np.float32),
            "empty-3d": np.zeros((2, 0, 3), dtype=np.int16),
            "flags": np.array([True, False, True]),
            "one": np.ones((1, 1, 1), dtype=np.uint8),
        },
        "nothing": {},
    }
    out = {name: st_numpy.save(t) for name, t in cases.items()}  # type: ignore[arg-type]
    out["with-metadata"] = st_numpy.save(
        {"w": np.ones(5, dtype=np.float32)}, metadata={"format": "pt", "note": "ü"}
    )
    return out


@pytest.mark.parametrize("name", sorted(_library_files()))
def test_every_file_the_library_writes_passes(name: str) -> None:
    data = _library_files()[name]
    header = parse_header(data, len(data))
    loaded = safetensors.deserialize(data)
    assert sorted(t.name for t in header.tensors) == sorted(n for n, _ in loaded)
    for t in header.tensors:
        info = dict(loaded)[t.name]
        assert (t.dtype, list(t.shape)) == (info["dtype"], list(info["shape"]))
        assert t.end - t.begin == len(info["data"])
        assert data[t.begin : t.end] == bytes(info["data"])


@pytest.mark.hf
def test_torch_dtypes_the_library_writes_pass() -> None:
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    tensors = {
        "bf16": torch.randn(16, 8).to(torch.bfloat16),
        "f16": torch.randn(3).to(torch.float16),
        "f8": torch.randn(8).to(torch.float8_e4m3fn),
        "f8b": torch.randn(8).to(torch.float8_e5m2),
        "c64": torch.randn(2, dtype=torch.complex64),
    }
    data = st_torch.save(tensors, metadata={"format": "pt"})
    header = parse_header(data, len(data))
    assert {t.name: t.dtype for t in header.tensors} == {
        "bf16": "BF16",
        "f16": "F16",
        "f8": "F8_E4M3",
        "f8b": "F8_E5M2",
        "c64": "C64",
    }
    assert header.metadata == {"format": "pt"}


def test_the_testlib_writer_matches_the_profile() -> None:
    data = safetensors_file({"x": ("BF16", [2, 2], bytes(8))}, metadata={"k": "v"})
    assert [t.name for t in parse_header(data, len(data)).tensors] == ["x"]
    assert dict(safetensors.deserialize(data))["x"]["dtype"] == "BF16"


def test_byte_ranges_are_file_offsets_in_file_order() -> None:
    data = safetensors_file({"b": ("U8", [2], b"BB"), "a": ("U8", [3], b"AAA")})
    header = parse_header(data, len(data))
    assert [(t.name, data[t.begin : t.end]) for t in header.tensors] == [
        ("a", b"AAA"),
        ("b", b"BB"),
    ]
    assert header.tensors[0].begin == 8 + header.header_bytes


@pytest.mark.parametrize("seed", range(5))
def test_collector_keeps_only_the_header_whatever_the_chunks(seed: int) -> None:
    data = safetensors_file({"w": ("F32", [1000], bytes(4000))})
    rng = random.Random(seed)
    head = HeadCollector()
    at = 0
    while at < len(data):
        step = rng.choice([1, 3, 7, 64, 5000])
        head.feed(memoryview(data)[at : at + step])
        at += step
    n = int.from_bytes(data[:8], "little")
    assert len(head._buf) == 8 + n  # nothing of the payload is kept
    assert [t.name for t in head.check(len(data)).tensors] == ["w"]


def test_collector_stops_at_an_over_limit_length() -> None:
    head = HeadCollector()
    head.feed(memoryview((MAX_HEADER_BYTES + 1).to_bytes(8, "little") + b"{" * 100))
    assert len(head._buf) == 8
    with pytest.raises(SafetensorsError) as ei:
        head.check(10_000)
    assert ei.value.rule == "header-length"
