"""spec/manifest.schema.json agrees with the manifest parser.

Real manifests (read from the test vectors through the archive API) are
valid; ill-shaped ones are refused by both the schema and the parser; the
rules a schema cannot say (sorting, canonical bytes, references, Unicode)
are refused by the parser even where the schema accepts.
"""

from __future__ import annotations

import copy
import json
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snaparc import errors
from snaparc.archive.index import open_index
from snaparc.format.limits import DEFAULT_LIMITS
from snaparc.format.manifest import (
    BlobEntry,
    Digests,
    FileEntry,
    build_manifest,
    encode_manifest,
    parse_manifest,
)
from snaparc.format.paths import check_path

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "spec" / "manifest.schema.json").read_text(encoding="utf-8"))
VECTORS = ROOT / "spec" / "vectors"
EXPECTED = json.loads((VECTORS / "expected.json").read_text(encoding="utf-8"))
VALID_FILES = [v["file"] for v in EXPECTED["vectors"] if v["verify_exit"] == 0]
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

Obj = dict[str, Any]


def _manifest_bytes(name: str) -> bytes:
    with open(VECTORS / name, "rb") as f:
        return open_index(f).manifest_bytes


def _canonical(obj: Obj) -> bytes:
    text = json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return text.encode("utf-8") + b"\n"


def _basic() -> Obj:
    obj: Obj = json.loads(_manifest_bytes("basic.dlmsnap"))
    return obj


def _schema_ok(obj: Any) -> bool:
    return VALIDATOR.is_valid(obj)


def test_schema_is_a_valid_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("name", VALID_FILES)
def test_real_manifests_are_valid(name: str) -> None:
    data = _manifest_bytes(name)
    VALIDATOR.validate(json.loads(data))
    parse_manifest(data, limits=DEFAULT_LIMITS)  # and the parser agrees


def test_thin_archive_manifest_is_valid() -> None:
    h = "ab" * 32
    blob = BlobEntry(digests=Digests(blake3="cd" * 32, sha256=h), size=3, external=True)
    m = build_manifest(
        files=[FileEntry(path="w.bin", size=3, executable=False, blob=h)],
        dirs=[],
        blobs=[blob],
        created_by="test",
        base="ef" * 32,
    )
    data = encode_manifest(m)
    assert parse_manifest(data, limits=DEFAULT_LIMITS) == m
    VALIDATOR.validate(json.loads(data))


def test_build_manifest_refuses_base_and_external_blobs_apart() -> None:
    """`base` is set exactly when a blob is external: the writer builds nothing else."""
    h = "ab" * 32
    file = FileEntry(path="w.bin", size=3, executable=False, blob=h)
    for external, base in ((False, "ef" * 32), (True, None)):
        blob = BlobEntry(digests=Digests(blake3="cd" * 32, sha256=h), size=3, external=external)
        with pytest.raises(errors.ManifestError):
            build_manifest(files=[file], dirs=[], blobs=[blob], created_by="test", base=base)


def _set(path: str, value: Any) -> Callable[[Obj], None]:
    """A mutation setting obj[path...] (dotted; integers index lists)."""

    def apply(obj: Obj) -> None:
        keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
        target: Any = obj
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value

    return apply


def _delete(path: str) -> Callable[[Obj], None]:
    def apply(obj: Obj) -> None:
        keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
        target: Any = obj
        for k in keys[:-1]:
            target = target[k]
        del target[keys[-1]]

    return apply


# Refused by both: (id, mutation, error class the parser raises)
BOTH_REFUSE: list[tuple[str, Callable[[Obj], None], type[errors.SnaparcError]]] = [
    ("unknown-top-level-field", _set("comment", "x"), errors.ManifestError),
    ("missing-files", _delete("files"), errors.ManifestError),
    ("missing-blobs", _delete("blobs"), errors.ManifestError),
    ("missing-created-by", _delete("created_by"), errors.ManifestError),
    ("missing-dirs", _delete("dirs"), errors.NonCanonicalError),
    ("missing-metadata", _delete("metadata"), errors.NonCanonicalError),
    ("wrong-format", _set("format", "tar"), errors.ManifestError),
    ("version-leading-zero", _set("format_version", "1.00"), errors.ManifestError),
    ("version-not-a-string", _set("format_version", 1), errors.ManifestError),
    ("newer-major", _set("format_version", "2.0"), errors.UnsupportedVersionError),
    ("major-zero", _set("format_version", "0.9"), errors.UnsupportedVersionError),
    ("uppercase-hex", _set("blobs.0.digests.sha256", "A" * 64), errors.ManifestError),
    ("short-hex", _set("files.0.blob", "ab"), errors.ManifestError),
    ("blob-extra-key", _set("blobs.0.mode", 420), errors.ManifestError),
    ("digests-extra-key", _set("blobs.0.digests.md5", "0" * 32), errors.ManifestError),
    ("file-extra-key", _set("files.0.mtime", 0), errors.ManifestError),
    ("file-missing-executable", _delete("files.0.executable"), errors.ManifestError),
    ("negative-size", _set("files.0.size", -1), errors.ManifestError),
    ("size-over-2**53", _set("blobs.0.size", 2**53), errors.ManifestError),
    ("size-as-string", _set("files.0.size", "6"), errors.ManifestError),
    ("executable-as-int", _set("files.0.executable", 1), errors.ManifestError),
    ("external-false", _set("blobs.0.external", False), errors.NonCanonicalError),
    ("base-null", _set("base", None), errors.NonCanonicalError),
    ("base-not-hex", _set("base", "x" * 64), errors.ManifestError),
    ("base-without-external-blob", _set("base", "ab" * 32), errors.ManifestError),
    ("external-blob-without-base", _set("blobs.0.external", True), errors.ManifestError),
    ("metadata-list", _set("metadata.k", [1]), errors.ManifestError),
    ("metadata-object", _set("metadata.k", {"a": 1}), errors.ManifestError),
    ("metadata-empty-key", _set("metadata.", "x"), errors.ManifestError),
    ("metadata-long-key", _set("metadata." + "k" * 129, "x"), errors.ManifestError),
    ("metadata-unsafe-int", _set("metadata.answer", 2**53), errors.ManifestError),
    ("path-dotdot", _set("files.0.path", "../README.txt"), errors.UnsafePathError),
    ("path-dot", _set("files.0.path", "./README.txt"), errors.UnsafePathError),
    ("path-absolute", _set("files.0.path", "/README.txt"), errors.UnsafePathError),
    ("path-empty-component", _set("files.0.path", "a//README.txt"), errors.UnsafePathError),
    ("path-trailing-slash", _set("files.0.path", "README.txt/"), errors.UnsafePathError),
    ("path-backslash", _set("files.0.path", "a\\README.txt"), errors.UnsafePathError),
    ("path-drive-letter", _set("files.0.path", "C:README.txt"), errors.UnsafePathError),
    ("path-nul", _set("files.0.path", "README\x00.txt"), errors.UnsafePathError),
    ("path-newline", _set("files.0.path", "README\n.txt"), errors.UnsafePathError),
    ("path-c1-control", _set("files.0.path", "README\x85.txt"), errors.UnsafePathError),
    ("path-del", _set("files.0.path", "README\x7f.txt"), errors.UnsafePathError),
    ("path-empty", _set("files.0.path", ""), errors.UnsafePathError),
    ("dir-dotdot", _set("dirs.0", "logs/.."), errors.UnsafePathError),
]


@pytest.mark.parametrize(
    ("mutate", "error"), [(m, e) for _, m, e in BOTH_REFUSE], ids=[i for i, _, _ in BOTH_REFUSE]
)
def test_schema_and_parser_both_refuse(
    mutate: Callable[[Obj], None], error: type[errors.SnaparcError]
) -> None:
    obj = _basic()
    mutate(obj)
    assert not _schema_ok(obj)
    with pytest.raises(error):
        parse_manifest(_canonical(obj), limits=DEFAULT_LIMITS)


def _swap_files(obj: Obj) -> None:
    obj["files"][0], obj["files"][1] = obj["files"][1], obj["files"][0]


def _swap_blobs(obj: Obj) -> None:
    obj["blobs"][0], obj["blobs"][1] = obj["blobs"][1], obj["blobs"][0]


def _duplicate_blob(obj: Obj) -> None:
    obj["blobs"].insert(1, copy.deepcopy(obj["blobs"][0]))


def _orphan_blob(obj: Obj) -> None:
    obj["blobs"].append({"digests": {"blake3": "f" * 64, "sha256": "f" * 64}, "size": 1})


def _unlisted_blob(obj: Obj) -> None:
    obj["files"][0]["blob"] = "0" * 64


def _size_disagrees(obj: Obj) -> None:
    obj["files"][0]["size"] += 1


def _case_collision(obj: Obj) -> None:
    first = copy.deepcopy(obj["files"][0])
    first["path"] = first["path"].upper()
    obj["files"].append(first)
    obj["files"].sort(key=lambda f: f["path"])


def _non_nfc(obj: Obj) -> None:
    for f in obj["files"]:
        if f["path"].startswith("caf\u00e9"):
            f["path"] = f["path"].replace("caf\u00e9", "cafe\u0301")
    obj["files"].sort(key=lambda f: f["path"])


def _file_and_dir(obj: Obj) -> None:
    obj["dirs"] = sorted([*obj["dirs"], obj["files"][0]["path"]])


def _beneath_empty_dir(obj: Obj) -> None:
    obj["dirs"] = sorted([*obj["dirs"], "bin"])


# Accepted by the schema, refused by the parser: the rules a schema cannot say.
PARSER_ONLY: list[tuple[str, Callable[[Obj], None], type[errors.SnaparcError]]] = [
    ("files-unsorted", _swap_files, errors.NonCanonicalError),
    ("blobs-unsorted", _swap_blobs, errors.UnsafeArchiveError),
    ("blob-listed-twice", _duplicate_blob, errors.ManifestError),
    ("blob-unused", _orphan_blob, errors.ManifestError),
    ("file-names-unlisted-blob", _unlisted_blob, errors.ManifestError),
    ("file-size-disagrees-with-blob", _size_disagrees, errors.ManifestError),
    ("case-fold-collision", _case_collision, errors.UnsafePathError),
    ("path-not-nfc", _non_nfc, errors.UnsafePathError),
    ("path-both-file-and-dir", _file_and_dir, errors.UnsafePathError),
    ("entries-beneath-empty-dir", _beneath_empty_dir, errors.UnsafePathError),
]


@pytest.mark.parametrize(
    ("mutate", "error"), [(m, e) for _, m, e in PARSER_ONLY], ids=[i for i, _, _ in PARSER_ONLY]
)
def test_parser_refuses_what_the_schema_cannot_say(
    mutate: Callable[[Obj], None], error: type[errors.SnaparcError]
) -> None:
    obj = _basic()
    mutate(obj)
    assert _schema_ok(obj)
    with pytest.raises(error):
        parse_manifest(_canonical(obj), limits=DEFAULT_LIMITS)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(lambda b: b.rstrip(b"\n"), id="no-trailing-newline"),
        pytest.param(lambda b: b.replace(b'","', b'", "', 1), id="extra-space"),
        pytest.param(lambda b: b.replace(b'"size":0}', b'"size":0.0}', 1), id="float-size"),
        pytest.param(lambda b: b.replace(b"\xc3\xa9", b"\\u00e9", 1), id="escaped-non-ascii"),
        pytest.param(lambda b: b.replace(b'{"blobs"', b'{"files":[],"blobs"', 1), id="dup-key"),
        pytest.param(
            lambda b: json.dumps(json.loads(b), indent=1, ensure_ascii=False).encode() + b"\n",
            id="indented",
        ),
    ],
)
def test_non_canonical_bytes_are_refused(data: Callable[[bytes], bytes]) -> None:
    original = _manifest_bytes("basic.dlmsnap")
    changed = data(original)
    assert changed != original
    with pytest.raises(errors.UnsafeArchiveError):
        parse_manifest(changed, limits=DEFAULT_LIMITS)


def test_newer_minor_may_add_top_level_fields() -> None:
    obj = _basic()
    obj["format_version"] = "1.3"
    obj["future_field"] = {"anything": [1, 2]}
    assert _schema_ok(obj)
    parsed = parse_manifest(_canonical(obj), limits=DEFAULT_LIMITS)
    assert parsed.format_version == "1.3"


def test_newer_minor_may_write_a_null_base() -> None:
    """A null `base` is no base: valid without external blobs, refused with one."""
    obj = _basic()
    obj["format_version"] = "1.3"
    obj["base"] = None
    assert _schema_ok(obj)
    assert parse_manifest(_canonical(obj), limits=DEFAULT_LIMITS).base is None
    obj["blobs"][0]["external"] = True
    assert not _schema_ok(obj)
    with pytest.raises(errors.ManifestError):
        parse_manifest(_canonical(obj), limits=DEFAULT_LIMITS)


def test_schema_cannot_tell_floats_from_integers() -> None:
    """JSON Schema counts 0.0 as an integer; the parser refuses every float."""
    data = _manifest_bytes("basic.dlmsnap").replace(b'"size":0}', b'"size":0.0}', 1)
    assert _schema_ok(json.loads(data))
    with pytest.raises(errors.ManifestError, match="floating-point"):
        parse_manifest(data, limits=DEFAULT_LIMITS)


_PATH_SCHEMA = {**SCHEMA["$defs"]["path"], "$defs": SCHEMA["$defs"]}
_PATH_VALIDATOR = jsonschema.Draft202012Validator(_PATH_SCHEMA)
_PATH_ALPHABET = st.sampled_from(
    ["a", "B", "/", ".", "\\", ":", "C", "\x00", "\n", "\x7f", "\x85", "é", "e\u0301", "ß", " "]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PATH_ALPHABET, max_size=12).map("".join))
def test_path_pattern_is_implied_by_the_path_rules(path: str) -> None:
    """The schema's path pattern accepts every path the parser accepts, and
    refuses every other one except for what a pattern cannot say (NFC)."""
    try:
        check_path(path)
        parser_ok = True
    except errors.UnsafePathError:
        parser_ok = False
    schema_ok = _PATH_VALIDATOR.is_valid(path)
    if parser_ok:
        assert schema_ok
    elif schema_ok:
        assert not unicodedata.is_normalized("NFC", path)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("format_version", "1.0\n"),
        ("blobs.0.digests.sha256", "0" * 64 + "\n"),
        ("files.0.path", "README.txt\n"),
    ],
)
def test_schema_refuses_a_trailing_newline(path: str, value: str) -> None:
    obj = _basic()
    _set(path, value)(obj)
    assert not _schema_ok(obj)


# --- blob codecs (format 1.2) ---------------------------------------------------------


def _coded() -> Obj:
    obj: Obj = json.loads(_manifest_bytes("snapshot-bytegroup.dlmsnap"))
    return obj


def _coded_blob(obj: Obj) -> Obj:
    blob: Obj = next(b for b in obj["blobs"] if "codec" in b)
    return blob


def test_the_coded_vector_is_1_2_with_one_coded_blob() -> None:
    obj = _coded()
    assert obj["format_version"] == "1.2" and _schema_ok(obj)
    assert _coded_blob(obj)["codec"] == "bytegroup"
    assert _coded_blob(obj)["digests"]["sha256"] in obj["tensors"]


@pytest.mark.parametrize(
    ("name", "edit", "error", "schema_says"),
    [
        ("codec in 1.1", lambda o: o.update(format_version="1.1"), errors.ManifestError, True),
        (
            "1.2 without a codec",
            lambda o: _coded_blob(o).pop("codec"),
            errors.ManifestError,
            True,
        ),
        (  # a rule the schema cannot say: which blobs the index lists
            "codec on a blob without an index entry",
            lambda o: next(b for b in o["blobs"] if "codec" not in b).update(codec="bytegroup"),
            errors.ManifestError,
            False,
        ),
        (
            "codec not a string",
            lambda o: _coded_blob(o).update(codec=1),
            errors.ManifestError,
            True,
        ),
        (  # exit 4: the archive needs a newer reader, it is not malformed
            "unknown codec",
            lambda o: _coded_blob(o).update(codec="zipnn"),
            errors.UnsupportedVersionError,
            True,
        ),
    ],
)
def test_codec_rules_schema_and_parser_agree(
    name: str,
    edit: Callable[[Obj], object],
    error: type[errors.SnaparcError],
    schema_says: bool,
) -> None:
    obj = _coded()
    edit(obj)
    assert _schema_ok(obj) is not schema_says, name
    with pytest.raises(error):
        parse_manifest(_canonical(obj), limits=DEFAULT_LIMITS)


# --- frame digests (format 1.2) -------------------------------------------------------


def _framed() -> Obj:
    obj: Obj = json.loads(_manifest_bytes("snapshot-frame-digests.dlmsnap"))
    return obj


def _framed_blob(obj: Obj) -> Obj:
    blob: Obj = next(b for b in obj["blobs"] if "frame_blake3" in b)
    return blob


def test_the_frame_digest_vector_is_1_2_with_two_frame_digests() -> None:
    obj = _framed()
    assert obj["format_version"] == "1.2" and _schema_ok(obj)
    blob = _framed_blob(obj)
    assert len(blob["frame_blake3"]) == 2 and "codec" not in blob
    assert blob["digests"]["sha256"] in obj["tensors"]
    parse_manifest(_canonical(obj), limits=DEFAULT_LIMITS)


@pytest.mark.parametrize(
    ("name", "edit", "schema_says"),
    [
        ("frame digests in 1.1", lambda o: o.update(format_version="1.1"), True),
        ("1.2 without them", lambda o: _framed_blob(o).pop("frame_blake3"), True),
        ("empty list", lambda o: _framed_blob(o).update(frame_blake3=[]), True),
        (  # rules the schema cannot say: the count is the member's frame count
            "one digest too many",
            lambda o: _framed_blob(o)["frame_blake3"].append("0" * 64),
            False,
        ),
        (
            "on a blob without an index entry",
            lambda o: next(b for b in o["blobs"] if "frame_blake3" not in b).update(
                frame_blake3=["0" * 64, "1" * 64]
            ),
            False,
        ),
        (
            "upper-case hex",
            lambda o: _framed_blob(o)["frame_blake3"].__setitem__(0, "A" * 64),
            True,
        ),
        ("not a list", lambda o: _framed_blob(o).update(frame_blake3="0" * 64), True),
    ],
)
def test_frame_digest_rules_schema_and_parser_agree(
    name: str, edit: Callable[[Obj], object], schema_says: bool
) -> None:
    obj = _framed()
    edit(obj)
    assert _schema_ok(obj) is not schema_says, name
    with pytest.raises(errors.ManifestError):
        parse_manifest(_canonical(obj), limits=DEFAULT_LIMITS)
