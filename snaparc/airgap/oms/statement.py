"""The in-toto Statement v1 of an OMS signature, built and parsed (pure).

The statement `model_signing` 1.x signs (predicate
``https://model_signing/signature/v1.0``, serialization ``files``):

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": MODEL_NAME, "digest": {"sha256": SUBJECT}}],
     "predicateType": "https://model_signing/signature/v1.0",
     "predicate": {
       "serialization": {"method": "files", "allow_symlinks": false,
                         "hash_type": "sha256", "ignore_paths": [...]},
       "resources": [{"algorithm": "sha256", "digest": HEX, "name": PATH}, ...]}}

`resources` are sorted by path components (as `pathlib.PurePosixPath`
orders them); SUBJECT is the sha256 of the concatenated raw digests in the
listed order; ``ignore_paths`` is left out when empty. It is encoded as
`model_signing` encodes it (protobuf's JSON: two-space indent, no final
newline), so the payload is the bytes its own signer would produce.

`parse_statement` takes untrusted bytes: every field is type-checked,
duplicate keys, duplicate resource names and unknown predicate types are
refused (`MalformedBundleError`), and the subject digest is recomputed over
the resources as listed (as `model_signing` does).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from snaparc.airgap.oms.errors import MalformedBundleError
from snaparc.format.strictjson import Kind, strict_loads

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
# Digest algorithms whose file digests the manifest holds (blake2 it does not).
HASH_TYPES = ("sha256", "blake3")
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Resource:
    """One file of the model: its path relative to the model root and its digest (hex)."""

    name: str
    digest: str


@dataclass(frozen=True, slots=True)
class Statement:
    model_name: str
    hash_type: str
    resources: tuple[Resource, ...]
    ignore_paths: tuple[str, ...] = ()
    allow_symlinks: bool = False
    subject_digest: str = ""


def sort_key(name: str) -> tuple[str, ...]:
    """How model_signing orders resources: by path components."""
    return PurePosixPath(name).parts


def subject_digest(resources: tuple[Resource, ...] | list[Resource]) -> str:
    """sha256 over the raw digests, in the order given."""
    h = hashlib.sha256()
    for r in resources:
        h.update(bytes.fromhex(r.digest))
    return h.hexdigest()


def build_statement(
    model_name: str,
    resources: list[Resource],
    *,
    ignore_paths: tuple[str, ...] = (),
    hash_type: str = "sha256",
) -> tuple[Statement, bytes]:
    """The statement over `resources` (sorted here) and its payload bytes."""
    ordered = tuple(sorted(resources, key=lambda r: sort_key(r.name)))
    statement = Statement(
        model_name,
        hash_type,
        ordered,
        tuple(ignore_paths),
        False,
        subject_digest(ordered),
    )
    serialization: dict[str, Any] = {
        "method": "files",
        "allow_symlinks": False,
        "hash_type": hash_type,
    }
    if ignore_paths:
        serialization["ignore_paths"] = list(ignore_paths)
    doc = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": model_name, "digest": {"sha256": statement.subject_digest}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": serialization,
            "resources": [
                {"algorithm": hash_type, "digest": r.digest, "name": r.name} for r in ordered
            ],
        },
    }
    return statement, json.dumps(doc, indent=2).encode("utf-8")


# --- parsing (untrusted) -----------------------------------------------------------


def _fail(message: str) -> MalformedBundleError:
    return MalformedBundleError(f"OMS statement: {message}")


def _refuse(kind: Kind, detail: str) -> MalformedBundleError:
    if kind == "duplicate":
        return _fail(f"duplicate key {detail!r}")
    return _fail(f"{detail} is not JSON")


def load_json(data: bytes, what: str) -> Any:
    """Strict JSON: UTF-8, no duplicate keys, no NaN/Infinity, bounded nesting."""
    try:
        text = data.decode("utf-8")
        return strict_loads(text, refuse=_refuse)
    except MalformedBundleError as exc:
        raise MalformedBundleError(f"{what}: {exc}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedBundleError(f"{what} is not valid JSON ({type(exc).__name__})") from None


def field(obj: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _fail(f"{where}.{key} must be a {kind.__name__}")
    return value


def quoted(name: str) -> str:
    """A name from untrusted input, safe to print (control characters escaped)."""
    return json.dumps(name)


def parse_statement(payload: bytes, *, max_resources: int) -> Statement:
    """Check and decode the statement a bundle's envelope carries."""
    doc = load_json(payload, "the DSSE payload")
    if not isinstance(doc, dict):
        raise _fail("the payload is not a JSON object")
    if doc.get("_type") != STATEMENT_TYPE:
        raise _fail(f"_type must be {STATEMENT_TYPE!r}, got {quoted(str(doc.get('_type')))}")
    predicate_type = doc.get("predicateType")
    if predicate_type != PREDICATE_TYPE:
        raise _fail(
            f"unknown predicate type {quoted(str(predicate_type))}; "
            f"snaparc checks {PREDICATE_TYPE!r} (model_signing 1.x)"
        )
    subjects = field(doc, "subject", list, "statement")
    if len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise _fail("subject must list exactly one model")
    model_name = field(subjects[0], "name", str, "subject[0]")
    digest = field(subjects[0], "digest", dict, "subject[0]")
    subject = field(digest, "sha256", str, "subject[0].digest")
    if not _HEX64.fullmatch(subject):
        raise _fail("subject[0].digest.sha256 is not 64 lower-case hex digits")
    predicate = field(doc, "predicate", dict, "statement")
    serialization = field(predicate, "serialization", dict, "predicate")
    method = field(serialization, "method", str, "serialization")
    if method != "files":
        raise _fail(
            f"serialization method {quoted(method)} cannot be checked against the manifest "
            "(it has file digests only); sign with the default `files` serialization"
        )
    hash_type = field(serialization, "hash_type", str, "serialization")
    if hash_type not in HASH_TYPES:
        raise _fail(
            f"hash_type {quoted(hash_type)}: the manifest holds sha256 and blake3 digests only"
        )
    allow_symlinks = field(serialization, "allow_symlinks", bool, "serialization")
    ignore_paths: tuple[str, ...] = ()
    if "ignore_paths" in serialization:
        raw = field(serialization, "ignore_paths", list, "serialization")
        if not all(isinstance(p, str) for p in raw):
            raise _fail("serialization.ignore_paths must list strings")
        ignore_paths = tuple(raw)
    items = field(predicate, "resources", list, "predicate")
    if len(items) > max_resources:
        raise _fail(f"{len(items)} resources, more than the limit of {max_resources}")
    resources = tuple(_resource(item, i, hash_type) for i, item in enumerate(items))
    seen: set[str] = set()
    for r in resources:
        if r.name in seen:
            raise _fail(f"resource {quoted(r.name)} is listed twice")
        seen.add(r.name)
    computed = subject_digest(resources)
    if computed != subject:
        raise _fail(
            f"the subject digest {subject} is not the digest of the listed resources ({computed})"
        )
    return Statement(model_name, hash_type, resources, ignore_paths, allow_symlinks, subject)


def _resource(item: Any, i: int, hash_type: str) -> Resource:
    where = f"resources[{i}]"
    if not isinstance(item, dict):
        raise _fail(f"{where} is not an object")
    name = field(item, "name", str, where)
    algorithm = field(item, "algorithm", str, where)
    digest = field(item, "digest", str, where)
    if algorithm != hash_type:
        raise _fail(f"{where}.algorithm {quoted(algorithm)} is not the hash_type {hash_type!r}")
    if not _HEX64.fullmatch(digest):
        raise _fail(f"{where}.digest is not 64 lower-case hex digits")
    if not name:
        raise _fail(f"{where}.name is empty")
    # model_signing keys resources by PurePosixPath(name): "a//b" and "./a/b" are "a/b".
    return Resource(str(PurePosixPath(name)), digest)
