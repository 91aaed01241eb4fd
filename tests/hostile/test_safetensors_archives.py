"""Archives whose safetensors files break the strict profile: refused when read.

In an HF snapshot export archive (metadata `export_target` `hf_snapshot`),
every `*.safetensors` file must pass the profile (spec/FORMAT.md,
"Safetensors profile"). The archives here are well formed in every other
respect (forged, since `snaparc pack` refuses to write them), so the refusal
is the profile's: exit 3, `SafetensorsError`, nothing published, no byte of
`cat` output, the same through streaming and random access.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from snaparc_testlib import lora_weights, safetensors_file

from snaparc.api import unpack as unpack_path
from snaparc.api import verify
from snaparc.archive.catfile import cat_file
from snaparc.cli import main
from snaparc.errors import (
    CorruptArchiveError,
    DigestMismatchError,
    ManifestError,
    SafetensorsError,
)
from snaparc.format.safetensors import parse_header

from .conftest import Arena, NonSeekable, Rejecter
from .forge import FileSpec, forge

WEIGHTS = "adapter/adapter_model.safetensors"
SNAPSHOT_META = {"export_target": "hf_snapshot", "modality": "audio-language"}
GOOD = lora_weights(b"good weights")
# A valid file with a zip appended: a loader sees the tensors, unzip sees the zip.
POLYGLOT = GOOD + b"PK\x03\x04" + bytes(200)


def files_with(weights: bytes, *, path: str = WEIGHTS) -> list[FileSpec]:
    return [
        FileSpec("adapter/adapter_config.json", b'{"peft_type": "LORA"}\n'),
        FileSpec(path, weights),
        FileSpec("run.sh", b"#!/bin/sh\necho hi\n", executable=True),
    ]


def test_polyglot_weights_are_refused_by_every_reading_command(rejecter: Rejecter) -> None:
    data = forge(files_with(POLYGLOT), metadata=SNAPSHOT_META).data
    rejecter.reject(data, {"stream": SafetensorsError, "cat": SafetensorsError}, cat_path=WEIGHTS)


@pytest.mark.parametrize(
    "weights",
    [
        b"not a safetensors file at all",
        safetensors_file({"w": ("F32", [3], bytes(8))}),  # span is not shape x dtype
        (4).to_bytes(8, "little") + b'{"a"' + bytes(4),  # header is not JSON
        (10**9).to_bytes(8, "little") + b"{}",  # header length past the limit
    ],
    ids=["garbage", "span", "json", "length"],
)
def test_broken_weights_are_refused_streaming_and_by_random_access(
    rejecter: Rejecter, weights: bytes
) -> None:
    data = forge(files_with(weights), metadata=SNAPSHOT_META).data
    rejecter.reject(data, {"stream": SafetensorsError, "cat": SafetensorsError}, cat_path=WEIGHTS)


def test_the_error_names_the_file_and_the_rule(arena: Arena) -> None:
    archive = arena.write_archive(forge(files_with(POLYGLOT), metadata=SNAPSHOT_META).data)
    with pytest.raises(SafetensorsError) as ei:
        verify(archive, threads=2)
    assert ei.value.rule == "coverage"
    assert ei.value.path == WEIGHTS
    assert WEIGHTS in str(ei.value) and "rule coverage" in str(ei.value)


def test_the_weights_are_refused_under_any_name_sharing_their_blob(rejecter: Rejecter) -> None:
    files = files_with(POLYGLOT, path="adapter/weights.bin")
    files.append(FileSpec("copy/model.safetensors", POLYGLOT))
    data = forge(files, metadata=SNAPSHOT_META).data
    rejecter.reject(
        data, {"stream": SafetensorsError, "cat": SafetensorsError}, cat_path="adapter/weights.bin"
    )


def test_a_corrupt_blob_is_an_integrity_failure_first(arena: Arena) -> None:
    """Digests are judged before the profile: damage stays exit 1."""

    def swap(obj: dict[str, object], blobs: dict[str, bytes]) -> None:
        for h, data in blobs.items():
            if data == POLYGLOT:
                blobs[h] = data[:-1] + b"\x01"

    archive = arena.write_archive(
        forge(files_with(POLYGLOT), metadata=SNAPSHOT_META, manifest_hook=swap).data
    )
    with pytest.raises(DigestMismatchError):
        verify(archive, threads=2)


def test_valid_weights_in_a_snapshot_archive_verify(arena: Arena, tmp_path: Path) -> None:
    archive = arena.write_archive(forge(files_with(GOOD), metadata=SNAPSHOT_META).data)
    assert main(["verify", str(archive), "--quiet"]) == 0
    out = io.BytesIO()
    with open(archive, "rb") as f:
        cat_file(f, WEIGHTS, out)
    assert out.getvalue() == GOOD


def test_the_profile_binds_snapshot_exports_only(arena: Arena) -> None:
    """A plain tree may hold any bytes under any name (the format carries files)."""
    archive = arena.write_archive(forge(files_with(POLYGLOT)).data)
    assert main(["verify", str(archive), "--quiet"]) == 0


def test_a_header_in_the_first_frame_and_the_breakage_in_the_last(rejecter: Rejecter) -> None:
    """A multi-frame blob: the header is kept from frame 0, the size judged at the end."""
    big = safetensors_file({"w": ("U8", [9 * 1024 * 1024], bytes(9 * 1024 * 1024))})
    good = forge(files_with(big), metadata=SNAPSHOT_META).data
    rejecter.arena.write_archive(good, "good.dlmsnap")
    assert main(["verify", str(rejecter.arena.archive_dir / "good.dlmsnap"), "--quiet"]) == 0
    bad = forge(files_with(big + b"\0"), metadata=SNAPSHOT_META).data
    rejecter.reject(bad, {"stream": SafetensorsError, "cat": SafetensorsError}, cat_path=WEIGHTS)


VECTORS = Path(__file__).resolve().parents[2] / "spec" / "vectors"


@pytest.mark.parametrize("vector", ["polyglot-safetensors", "snapshot-like"])
def test_materialize_publishes_nothing(arena: Arena, tmp_path: Path, vector: str) -> None:
    """A full snapshot export whose weights break the profile: neither a
    loadable directory nor a hub cache entry appears."""
    archive = VECTORS / f"{vector}.dlmsnap"
    assert main(["materialize", str(archive), str(arena.target), "-q"]) == 3
    cache = arena.root / "hub"
    code = main(["materialize", str(archive), "--hf-cache", str(cache), "--repo-id", "org/x", "-q"])
    assert code == 3
    if cache.exists():  # the cache root may be created; no file may land in it
        assert not [p for p in cache.rglob("*") if not p.is_dir()]
        shutil.rmtree(cache)
    arena.assert_untouched()


def test_materialize_of_the_valid_snapshot_vector_works(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    archive = VECTORS / "snapshot-safetensors.dlmsnap"
    assert main(["materialize", str(archive), str(dest), "-q"]) == 0
    assert (dest / "adapter" / "adapter_model.safetensors").is_file()


# --- the tensor index (format 1.1) ------------------------------------------------


def _index_of(data: bytes) -> list[dict[str, object]]:
    return [t.to_json() for t in parse_header(data, len(data)).tensors]


def _with_index(edit: Callable[[list[dict[str, Any]]], object] | None = None, **kw: Any) -> bytes:
    def hook(obj: dict[str, Any], blobs: dict[str, bytes]) -> None:
        records = _index_of(GOOD)
        if edit is not None:
            edit(records)
        obj["tensors"] = {hashlib.sha256(GOOD).hexdigest(): records}

    kw.setdefault("version", "1.1")
    return forge(files_with(GOOD), metadata=SNAPSHOT_META, manifest_hook=hook, **kw).data


def test_an_index_that_is_the_header_verifies(arena: Arena) -> None:
    archive = arena.write_archive(_with_index())
    assert main(["verify", str(archive), "--quiet"]) == 0


def _rename(records: list[dict[str, Any]]) -> None:
    records[0]["name"] = "base_model.model.other.lora_A.weight"


def _reshape(records: list[dict[str, Any]]) -> None:
    records[0]["shape"] = [*reversed(records[0]["shape"]), 1]


def test_an_index_that_disagrees_with_the_header_is_an_integrity_failure(
    rejecter: Rejecter,
) -> None:
    for edit in (_rename, _reshape):
        rejecter.reject(
            _with_index(edit),
            {"stream": CorruptArchiveError, "cat": CorruptArchiveError},
            cat_path=WEIGHTS,
        )


def _gap(records: list[dict[str, Any]]) -> None:
    records[0]["offsets"][0] += 1


def _extra_key(records: list[dict[str, Any]]) -> None:
    records[0]["note"] = "x"


def _unknown_dtype(records: list[dict[str, Any]]) -> None:
    records[0]["dtype"] = "Q4"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(lambda: _with_index(version="1.0"), id="index-in-1.0"),
        pytest.param(lambda: _with_index(_gap), id="gap"),
        pytest.param(lambda: _with_index(_extra_key), id="extra-field"),
        pytest.param(lambda: _with_index(_unknown_dtype), id="unknown-dtype"),
        pytest.param(
            lambda: forge(files_with(GOOD), metadata=SNAPSHOT_META, version="1.1").data,
            id="1.1-without-an-index",
        ),
        pytest.param(lambda: _not_bound(), id="unbound-blob"),
    ],
)
def test_a_malformed_index_is_refused_from_the_head(
    rejecter: Rejecter, data: Callable[[], bytes]
) -> None:
    every = dict.fromkeys(("stream", "ls", "ls_pipe", "cat"), ManifestError)
    rejecter.reject(data(), every, cat_path=WEIGHTS)  # type: ignore[arg-type]


def _not_bound() -> bytes:
    """An index entry for run.sh's blob, which no safetensors file uses."""

    def hook(obj: dict[str, Any], blobs: dict[str, bytes]) -> None:
        obj["tensors"] = {
            hashlib.sha256(GOOD).hexdigest(): _index_of(GOOD),
            hashlib.sha256(b"#!/bin/sh\necho hi\n").hexdigest(): [],
        }

    return forge(files_with(GOOD), metadata=SNAPSHOT_META, manifest_hook=hook, version="1.1").data


def test_cat_tensor_writes_nothing_when_the_header_disagrees(arena: Arena) -> None:
    archive = arena.write_archive(_with_index(_rename))
    for seekable in (True, False):
        out = io.BytesIO()
        with pytest.raises(CorruptArchiveError):
            if seekable:
                with open(archive, "rb") as f:
                    cat_file(f, WEIGHTS, out, tensor="base_model.model.other.lora_A.weight")
            else:
                stream = NonSeekable(archive.read_bytes())
                cat_file(stream, WEIGHTS, out, tensor="base_model.model.other.lora_A.weight")  # type: ignore[arg-type]
        assert out.getvalue() == b""
    arena.assert_untouched()


# --- thin archives: a blob taken from the base meets the thin archive's rules -------


def _thin_pair(weights: bytes) -> tuple[bytes, bytes]:
    """A plain base storing `weights` as x.bin, and a snapshot thin archive whose
    adapter_model.safetensors is that blob, external."""
    base = forge([FileSpec("x.bin", weights), FileSpec("run.sh", b"#!/bin/sh\n")])
    base_id = hashlib.sha256(base.manifest_bytes).hexdigest()
    wanted = hashlib.sha256(weights).hexdigest()

    def hook(obj: dict[str, Any], blobs: dict[str, bytes]) -> None:
        for blob in obj["blobs"]:
            if blob["digests"]["sha256"] == wanted:
                blob["external"] = True
        obj["base"] = base_id

    thin = forge(files_with(weights), metadata=SNAPSHOT_META, manifest_hook=hook)
    return base.data, thin.data


def test_a_thin_archive_refuses_bad_weights_taken_from_its_base(arena: Arena) -> None:
    base_data, thin_data = _thin_pair(POLYGLOT)
    base = arena.write_archive(base_data, "base.dlmsnap")
    thin = arena.write_archive(thin_data, "thin.dlmsnap")
    assert main(["verify", str(base), "-q"]) == 0  # a plain archive carries any bytes
    mirror = arena.archive_dir / "mirror"
    assert main(["push", str(base), str(mirror), "--ref", "base", "-q"]) == 0
    for base_arg in (str(base), f"{mirror}:base"):  # random access, then a stream
        with pytest.raises(SafetensorsError):
            unpack_path(thin, arena.target, base=base_arg, threads=2)
        arena.assert_untouched()


def test_a_thin_archive_takes_good_weights_from_its_base(arena: Arena) -> None:
    base_data, thin_data = _thin_pair(GOOD)
    base = arena.write_archive(base_data, "base.dlmsnap")
    thin = arena.write_archive(thin_data, "thin.dlmsnap")
    unpack_path(thin, arena.target, base=base, threads=2)
    assert (arena.target / WEIGHTS).read_bytes() == GOOD
