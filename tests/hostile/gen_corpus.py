"""The hostile corpus: one forged archive per violation, with the expected refusal.

Run as a script to write the corpus for inspection:

    .venv/bin/python -m tests.hostile.gen_corpus OUTDIR

writes `OUTDIR/<case>.dlmsnap` and `OUTDIR/index.json` (the expected error
class and exit code of each command). `test_hostile_corpus.py` runs every
case through verify, unpack (fresh and --force), ls and cat.

Expectation keys (see conftest.OPS): `stream` for everything that reads the
whole archive (verify, unpack, cat from a pipe), `ls` / `cat` for the
seekable readers, `ls_pipe` for ls from a pipe. A key left out means the
command does not read that part of the archive by design (ls never reads
blobs; cat reads one blob).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snaparc.errors import (
    CorruptArchiveError,
    DigestMismatchError,
    LimitExceededError,
    ManifestError,
    NonCanonicalError,
    SnaparcError,
    TrailingDataError,
    TruncatedArchiveError,
    UnexpectedFrameError,
    UnlistedMemberError,
    UnsafeMemberError,
    UnsafePathError,
    UnsupportedVersionError,
)
from snaparc.format.limits import DEFAULT_LIMITS, Limits
from tests.hostile import forge as F

Expect = dict[str, type[SnaparcError] | None]


@dataclass
class Case:
    name: str
    build: Callable[[], bytes]
    expect: Expect
    cat_path: str = "run.sh"
    limits: Limits = DEFAULT_LIMITS
    bug: str | None = None  # set while the product has a known bug (xfail strict)
    tags: list[str] = field(default_factory=list)


CASES: list[Case] = []


def case(
    name: str,
    expect: Expect,
    *,
    cat_path: str = "run.sh",
    limits: Limits = DEFAULT_LIMITS,
    bug: str | None = None,
) -> Callable[[Callable[[], bytes]], Callable[[], bytes]]:
    def deco(fn: Callable[[], bytes]) -> Callable[[], bytes]:
        CASES.append(Case(name, fn, expect, cat_path, limits, bug))
        return fn

    return deco


def everywhere(cls: type[SnaparcError]) -> Expect:
    """Refused by every command (a manifest-level violation)."""
    return {"stream": cls, "ls": cls, "ls_pipe": cls, "cat": cls}


def in_blob(cls: type[SnaparcError], *, cat: bool = True) -> Expect:
    """Refused by every command that reads the damaged blob (not ls)."""
    return {"stream": cls, "cat": cls} if cat else {"stream": cls}


# The default files (forge.default_files) give these blobs; sizes matter for
# swaps, since the layout is derived from the manifest.
CONFIG = b'{"r": 8, "lora_alpha": 16}\n'
RUN_SH = b"#!/bin/sh\necho hi\n"
WEIGHTS = bytes(range(256)) * 40


def _blob_index(forged_members: list[F.Member], data: bytes) -> int:
    name = F.BLOB_PREFIX + F.sha256(data)
    return next(i for i, m in enumerate(forged_members) if m.name == name)


def with_member(blob: bytes, /, **kw: Any) -> Callable[[list[F.Member]], list[F.Member]]:
    """A members hook that edits the member of the blob with bytes `blob`."""

    def hook(members: list[F.Member]) -> list[F.Member]:
        m = members[_blob_index(members, blob)]
        for k, v in kw.items():
            if k == "header_kw":
                m.header_kw.update(v)
            else:
                setattr(m, k, v)
        return members

    return hook


def files_with(*specs: tuple[str, bytes]) -> list[F.FileSpec]:
    return [F.FileSpec(p, d) for p, d in specs] + [F.FileSpec("run.sh", RUN_SH, True)]


# --- paths in the manifest ---------------------------------------------------

BAD_PATHS = {
    "path_absolute": "/etc/passwd",
    "path_dotdot": "../canary/keep.txt",
    "path_dotdot_inner": "a/../../canary/keep.txt",
    "path_dot": "./a.txt",
    "path_dot_inner": "a/./b.txt",
    "path_empty_component": "a//b.txt",
    "path_trailing_slash": "a/",
    "path_empty": "",
    "path_backslash": "..\\canary\\keep.txt",
    "path_drive_letter": "C:evil.txt",
    "path_nul": "a\x00b.txt",
    "path_newline": "a\nb.txt",
    "path_del": "a\x7fb.txt",
    "path_c1_control": "a\x85b.txt",
    "path_lone_surrogate": "a\ud800b.txt",
    "path_not_nfc": "cafe\u0301.txt",
    "path_component_256_bytes": "d/" + "x" * 256,
    "path_component_multibyte_over": "\u00e9" * 128,  # 256 UTF-8 bytes
    "path_over_4096_bytes": "/".join(["y" * 200] * 21),
}

for _name, _path in BAD_PATHS.items():

    def _build(path: str = _path) -> bytes:
        def hook(obj: dict[str, Any], blobs: dict[str, bytes]) -> None:
            obj["files"][0]["path"] = path
            obj["files"].sort(key=lambda f: f["path"])

        return F.forge(files_with(("a.txt", CONFIG)), manifest_hook=hook, manifest_bytes=None).data

    # A lone surrogate cannot be written as UTF-8: the forger escapes it.
    if "\ud800" in _path:

        def _build(path: str = _path) -> bytes:
            f = F.forge(files_with(("a.txt", CONFIG)))
            obj = f.manifest
            obj["files"][0]["path"] = path
            text = json.dumps(obj, ensure_ascii=True, sort_keys=True, separators=(",", ":"))
            return F.forge(files_with(("a.txt", CONFIG)), manifest_bytes=text.encode() + b"\n").data

    case(_name, everywhere(UnsafePathError))(_build)


def _two_files(p1: str, p2: str, **kw: Any) -> bytes:
    return F.forge(
        [F.FileSpec(p1, CONFIG), F.FileSpec(p2, RUN_SH), F.FileSpec("run.sh", RUN_SH)], **kw
    ).data


case("path_case_collision", everywhere(UnsafePathError))(lambda: _two_files("A.txt", "a.txt"))
case("path_nfkc_collision", everywhere(UnsafePathError))(
    lambda: _two_files("\ufb01le.txt", "file.txt")  # "ﬁle" vs "file"
)
case("path_fullwidth_collision", everywhere(UnsafePathError))(
    lambda: _two_files("\uff41.txt", "a.txt")  # fullwidth a
)
case("path_file_vs_dir_case_folded", everywhere(UnsafePathError))(
    lambda: _two_files("D", "d/y.txt")
)
case("path_file_vs_dir", everywhere(UnsafePathError))(lambda: _two_files("a", "a/b"))
case("path_file_vs_declared_dir", everywhere(UnsafePathError))(
    lambda: F.forge(files_with(("a", CONFIG)), dirs=("a",)).data
)
case("path_declared_dir_not_leaf", everywhere(UnsafePathError))(
    lambda: F.forge(files_with(("a/b.txt", CONFIG)), dirs=("a",)).data
)
case("path_dir_dotdot", everywhere(UnsafePathError))(
    lambda: F.forge(files_with(("a.txt", CONFIG)), dirs=("../canary/new",)).data
)
case("path_dir_absolute", everywhere(UnsafePathError))(
    lambda: F.forge(files_with(("a.txt", CONFIG)), dirs=("/tmp/x",)).data
)


@case("path_duplicate", everywhere(UnsafePathError))
def _dup() -> bytes:
    def hook(obj: dict[str, Any], blobs: dict[str, bytes]) -> None:
        obj["files"].insert(0, dict(obj["files"][0]))

    return F.forge(files_with(("a.txt", CONFIG)), manifest_hook=hook).data


@case("path_unsorted", everywhere(NonCanonicalError))
def _unsorted() -> bytes:
    def hook(obj: dict[str, Any], blobs: dict[str, bytes]) -> None:
        obj["files"].reverse()

    return F.forge(files_with(("a.txt", CONFIG)), manifest_hook=hook).data


# --- tar members -------------------------------------------------------------

TYPEFLAGS = {
    "hardlink": b"1",
    "symlink": b"2",
    "chardev": b"3",
    "blockdev": b"4",
    "directory": b"5",
    "fifo": b"6",
    "contiguous": b"7",
    "pax_x": b"x",
    "pax_g": b"g",
    "gnu_longname": b"L",
    "gnu_longlink": b"K",
    "gnu_sparse": b"S",
    "old_regular_nul": b"\0",
    "unknown_Z": b"Z",
}
for _tname, _flag in TYPEFLAGS.items():
    kw: dict[str, Any] = {"typeflag": _flag}
    if _flag in (b"1", b"2"):
        kw["linkname"] = b"/etc/passwd"
    case(f"tar_type_{_tname}_blob", in_blob(UnsafeMemberError))(
        lambda kw=kw: F.forge(members_hook=with_member(RUN_SH, header_kw=kw)).data
    )
    case(f"tar_type_{_tname}_manifest", everywhere(UnsafeMemberError))(
        lambda kw=kw: F.forge(manifest_member_hook=lambda m, kw=kw: m.header_kw.update(kw)).data
    )


def _pax_record(key: str, value: str) -> bytes:
    """One PAX record: "<len> key=value\\n", the length counting itself."""
    body = f" {key}={value}\n"
    n = len(body) + len(str(len(body)))
    if len(str(n)) != len(str(len(body))):
        n += 1
    return f"{n}{body}".encode()


@case("tar_pax_path_before_manifest", everywhere(UnsafeMemberError))
def _pax_before_manifest() -> bytes:
    rec = _pax_record("path", "../canary/keep.txt")
    pad = bytes(-len(rec) % 512)

    def hook(members: list[F.Member]) -> list[F.Member]:
        pax = F.Member("PaxHeaders/x", rec, header_kw={"typeflag": b"x"}, padding=pad)
        return [pax, *members]

    return F.forge(members_hook=hook).data


@case(
    "tar_pax_size_inside_blob_member",
    in_blob(UnsafeMemberError),
    cat_path="adapter/adapter_model.safetensors",
)
def _pax_inside_blob() -> bytes:
    # The blob's member bytes (same length as the layout needs) begin with a
    # PAX header that would override the size and path for lenient readers.
    rec = _pax_record("size", "0")
    pax = F.tar_header("PaxHeaders/x", len(rec), typeflag=b"x") + rec + bytes(-len(rec) % 512)
    inner = F.tar_header(F.BLOB_PREFIX + F.sha256(WEIGHTS), 0)
    body = pax + inner
    total = 512 + len(WEIGHTS) + (-len(WEIGHTS) % 512)
    raw = body + bytes(total - len(body))
    return F.forge(
        members_hook=with_member(WEIGHTS, header=raw[:512], data=raw[512:], padding=b"")
    ).data


# From a file, cat checks the seek table against the layout first: the extra
# member shifts the frames, so it is refused as corrupt there.
@case("tar_pax_member_inserted", {"stream": UnsafeMemberError, "cat": CorruptArchiveError})
def _pax_inserted() -> bytes:
    rec = _pax_record("size", "1")

    def hook(members: list[F.Member]) -> list[F.Member]:
        i = _blob_index(members, RUN_SH)
        members.insert(i, F.Member("PaxHeaders/x", rec, header_kw={"typeflag": b"x"}))
        return members

    return F.forge(members_hook=hook).data


@case("tar_gnu_longname_inserted_before_manifest", everywhere(UnsafeMemberError))
def _gnu_l() -> bytes:
    name = b"../" * 40 + b"canary/keep.txt\0"

    def hook(members: list[F.Member]) -> list[F.Member]:
        return [F.Member("././@LongLink", name, header_kw={"typeflag": b"L"}), *members]

    return F.forge(members_hook=hook).data


case("tar_bad_checksum_blob", in_blob(CorruptArchiveError))(
    lambda: F.forge(members_hook=with_member(RUN_SH, header_kw={"checksum": b"000000\0 "})).data
)
case("tar_bad_checksum_manifest", everywhere(CorruptArchiveError))(
    lambda: F.forge(manifest_member_hook=lambda m: m.header_kw.update(checksum=b"000001\0 ")).data
)
case("tar_checksum_signed_variant_blob", in_blob(CorruptArchiveError))(
    # A checksum that is only right for a signed-char summing reader.
    lambda: (
        F.forge(
            members_hook=with_member(
                RUN_SH, header_kw={"uname": b"\xff", "checksum": b"%06o\0 " % 0}
            )
        ).data
    )
)
case("tar_negative_size_blob", in_blob(UnsafeMemberError))(
    lambda: F.forge(members_hook=with_member(RUN_SH, header_kw={"size_raw": b"\xff" * 12})).data
)
case("tar_negative_size_manifest", everywhere(UnsafeMemberError))(
    lambda: (
        F.forge(
            manifest_member_hook=lambda m: m.header_kw.update(size_raw=b"\xff" + b"\xff" * 11)
        ).data
    )
)
case("tar_size_overflow_blob", in_blob(CorruptArchiveError))(
    lambda: F.forge(members_hook=with_member(RUN_SH, header_kw={"size_raw": b"77777777777\0"})).data
)
case("tar_size_huge_manifest", everywhere(LimitExceededError))(
    lambda: (
        F.forge(manifest_member_hook=lambda m: m.header_kw.update(size_raw=b"77777777777\0")).data
    )
)
case("tar_size_base256_huge_manifest", everywhere(LimitExceededError))(
    lambda: (
        F.forge(
            manifest_member_hook=lambda m: m.header_kw.update(size_raw=b"\x80" + b"\xff" * 11)
        ).data
    )
)
case("tar_size_base256_when_small_blob", in_blob(NonCanonicalError))(
    lambda: (
        F.forge(
            members_hook=with_member(
                RUN_SH, header_kw={"size_raw": b"\x80" + len(RUN_SH).to_bytes(11, "big")}
            )
        ).data
    )
)
case("tar_size_base256_when_small_manifest", everywhere(NonCanonicalError))(
    lambda: (
        F.forge(
            manifest_member_hook=lambda m: m.header_kw.update(
                size_raw=b"\x80" + len(m.data).to_bytes(11, "big")
            )
        ).data
    )
)
case("tar_size_malformed_digits_blob", in_blob(UnsafeMemberError))(
    lambda: F.forge(members_hook=with_member(RUN_SH, header_kw={"size_raw": b"0000000002 \0"})).data
)
case("tar_size_disagrees_with_manifest", in_blob(CorruptArchiveError))(
    lambda: F.forge(members_hook=with_member(RUN_SH, size=len(RUN_SH) + 1)).data
)
case("tar_size_zero_but_data_follows", in_blob(CorruptArchiveError))(
    lambda: F.forge(members_hook=with_member(RUN_SH, size=0)).data
)

NONCANONICAL_FIELDS: dict[str, tuple[type[SnaparcError], dict[str, Any]]] = {
    "mode_0755": (NonCanonicalError, {"mode": F.octal(0o755, 8)}),
    "mode_setuid": (NonCanonicalError, {"mode": F.octal(0o4644, 8)}),
    "mode_space_terminated": (NonCanonicalError, {"mode": b"000644 \0"}),
    "mtime_1": (NonCanonicalError, {"mtime": F.octal(1, 12)}),
    "uid_1000": (NonCanonicalError, {"uid": F.octal(1000, 8)}),
    "gid_1000": (NonCanonicalError, {"gid": F.octal(1000, 8)}),
    "uname_root": (NonCanonicalError, {"uname": b"root"}),
    "gname_root": (NonCanonicalError, {"gname": b"root"}),
    "devmajor_1": (NonCanonicalError, {"devmajor": F.octal(1, 8)}),
    "gnu_magic": (UnsafeMemberError, {"magic": b"ustar  \0"}),
    "v7_no_magic": (UnsafeMemberError, {"magic": b"\0" * 8}),
    "prefix_set": (UnsafeMemberError, {"prefix": b"../canary"}),
    "linkname_set": (UnsafeMemberError, {"linkname": b"/etc/passwd"}),
    "bytes_after_header_fields": (NonCanonicalError, {"tail": b"x"}),
}
for _fname, (_cls, _kw) in NONCANONICAL_FIELDS.items():
    case(f"tar_field_{_fname}_blob", in_blob(_cls))(
        lambda kw=_kw: F.forge(members_hook=with_member(RUN_SH, header_kw=kw)).data
    )
    case(f"tar_field_{_fname}_manifest", everywhere(_cls))(
        lambda kw=_kw: F.forge(manifest_member_hook=lambda m, kw=kw: m.header_kw.update(kw)).data
    )


@case("tar_name_bytes_after_nul_blob", in_blob(NonCanonicalError))
def _name_after_nul() -> bytes:
    name = (F.BLOB_PREFIX + F.sha256(RUN_SH)).encode() + b"\0evil"
    return F.forge(members_hook=with_member(RUN_SH, name=name)).data


@case("tar_name_not_ascii_blob", in_blob(UnsafeMemberError))
def _name_non_ascii() -> bytes:
    return F.forge(members_hook=with_member(RUN_SH, name="blobs/sha256/\u00e9")).data


case("tar_nonzero_padding_blob", in_blob(NonCanonicalError))(
    lambda: (
        F.forge(members_hook=with_member(RUN_SH, padding=b"X" + bytes(-len(RUN_SH) % 512 - 1))).data
    )
)
case("tar_nonzero_padding_manifest", everywhere(NonCanonicalError))(
    lambda: (
        F.forge(
            manifest_member_hook=lambda m: setattr(
                m, "padding", b"\n" + bytes(-len(m.data) % 512 - 1)
            )
        ).data
    )
)


@case("tar_second_manifest_member", in_blob(ManifestError))
def _second_manifest() -> bytes:
    return F.forge(members_hook=with_member(RUN_SH, name=F.MANIFEST_MEMBER)).data


@case("tar_unlisted_blob_member", in_blob(UnlistedMemberError))
def _unlisted_blob() -> bytes:
    other = b"#!/bin/sh\nrm -rf /"  # same length as RUN_SH: same layout
    assert len(other) == len(RUN_SH)
    return F.forge(
        members_hook=with_member(RUN_SH, name=F.BLOB_PREFIX + F.sha256(other), data=other)
    ).data


@case("tar_unlisted_other_name", in_blob(UnlistedMemberError))
def _unlisted_name() -> bytes:
    return F.forge(members_hook=with_member(RUN_SH, name="etc/passwd")).data


@case(
    "tar_unlisted_member_appended",
    {"stream": UnlistedMemberError, "ls": CorruptArchiveError},
)
def _appended() -> bytes:
    other = b"unlisted\n"

    def hook(members: list[F.Member]) -> list[F.Member]:
        return [*members, F.Member(F.BLOB_PREFIX + F.sha256(other), other)]

    return F.forge(members_hook=hook).data


@case("tar_members_out_of_order", in_blob(UnlistedMemberError, cat=False))
def _out_of_order() -> bytes:
    def hook(members: list[F.Member]) -> list[F.Member]:
        i, j = _blob_index(members, RUN_SH), _blob_index(members, CONFIG)
        members[i], members[j] = members[j], members[i]
        return members

    return F.forge(members_hook=hook).data


@case("tar_member_duplicated", in_blob(UnlistedMemberError))
def _duplicated() -> bytes:
    def hook(members: list[F.Member]) -> list[F.Member]:
        i, j = _blob_index(members, RUN_SH), _blob_index(members, CONFIG)
        members[i] = members[j]
        return members

    return F.forge(members_hook=hook).data


@case("tar_blob_member_missing", {"stream": CorruptArchiveError, "ls": CorruptArchiveError})
def _missing_member() -> bytes:
    def hook(members: list[F.Member]) -> list[F.Member]:
        del members[_blob_index(members, WEIGHTS)]
        return members

    return F.forge(members_hook=hook).data


@case("tar_last_blob_member_missing", {"stream": CorruptArchiveError, "ls": CorruptArchiveError})
def _missing_last() -> bytes:
    def hook(members: list[F.Member]) -> list[F.Member]:
        return members[:-1]

    return F.forge(members_hook=hook).data


@case("tar_eof_blocks_nonzero", {"stream": CorruptArchiveError})
def _eof_nonzero() -> bytes:
    return F.forge(eof=b"\0" * 1023 + b"\1").data


@case(
    "tar_eof_blocks_missing",
    {"stream": UnexpectedFrameError, "ls": CorruptArchiveError, "cat": CorruptArchiveError},
)
def _eof_missing() -> bytes:
    return F.forge(eof=b"").data


# --- manifest ----------------------------------------------------------------


@case("manifest_not_first", everywhere(ManifestError))
def _not_first() -> bytes:
    def hook(members: list[F.Member]) -> list[F.Member]:
        return [*members[1:], members[0]]

    return F.forge(members_hook=hook).data


def _mbytes(fn: Callable[[bytes], bytes], **kw: Any) -> Callable[[], bytes]:
    def build() -> bytes:
        good = F.forge(**kw).manifest_bytes
        return F.forge(manifest_bytes=fn(good), **kw).data

    return build


case("manifest_unparsable_json", everywhere(ManifestError))(_mbytes(lambda b: b[:-3] + b"\n"))
case("manifest_not_utf8", everywhere(ManifestError))(
    _mbytes(lambda b: b.replace(b'"snaparc', b'"\xff\xfesnaparc'))
)
case("manifest_json_array", everywhere(ManifestError))(_mbytes(lambda b: b"[" + b[:-1] + b"]\n"))
case("manifest_empty", everywhere(ManifestError))(_mbytes(lambda b: b""))
case("manifest_duplicate_key", everywhere(ManifestError))(
    _mbytes(
        lambda b: b.replace(b'{"blobs"', b'{"base":null,"blobs"').replace(
            b"}\n", b',"base":null}\n'
        )
    )
)
case("manifest_duplicate_key_nested", everywhere(ManifestError))(
    _mbytes(
        lambda b: b.replace(b'"executable":false,', b'"executable":false,"executable":true,', 1)
    )
)
case("manifest_whitespace", everywhere(NonCanonicalError))(
    _mbytes(lambda b: b.replace(b'":', b'": '))
)
case("manifest_no_trailing_newline", everywhere(NonCanonicalError))(_mbytes(lambda b: b[:-1]))
case("manifest_crlf", everywhere(NonCanonicalError))(_mbytes(lambda b: b[:-1] + b"\r\n"))
case("manifest_key_order", everywhere(NonCanonicalError))(
    _mbytes(
        lambda b: (
            json.dumps(
                dict(reversed(json.loads(b).items())), separators=(",", ":"), ensure_ascii=False
            ).encode()
            + b"\n"
        )
    )
)
case("manifest_escaped_non_ascii", everywhere(NonCanonicalError))(
    _mbytes(
        lambda b: (
            json.dumps(
                json.loads(b), separators=(",", ":"), ensure_ascii=True, sort_keys=True
            ).encode()
            + b"\n"
        ),
        files=files_with(("caf\u00e9.txt", CONFIG)),
    )
)
case("manifest_escaped_slash", everywhere(NonCanonicalError))(
    _mbytes(lambda b: b.replace(b"adapter/", b"adapter\\/", 1))
)
case("manifest_default_written_out", everywhere(NonCanonicalError))(
    _mbytes(lambda b: b.replace(b'},"size":18}', b'},"external":false,"size":18}'))
)
case("manifest_bom", everywhere(ManifestError))(_mbytes(lambda b: b"\xef\xbb\xbf" + b))
case("manifest_float_size", everywhere(ManifestError))(
    _mbytes(lambda b: b.replace(b'"size":18', b'"size":18.0'))
)
case("manifest_exponent_size", everywhere(ManifestError))(
    _mbytes(lambda b: b.replace(b'"size":18', b'"size":1.8e1'))
)
case("manifest_nan", everywhere(ManifestError))(
    _mbytes(lambda b: b.replace(b'"metadata":{}', b'"metadata":{"x":NaN}'))
)
case("manifest_float_metadata", everywhere(ManifestError))(
    _mbytes(lambda b: b.replace(b'"metadata":{}', b'"metadata":{"x":0.5}'))
)
case(
    "manifest_huge_integer",
    everywhere(ManifestError),
)(_mbytes(lambda b: b.replace(b'"metadata":{}', b'"metadata":{"x":' + b"9" * 5000 + b"}")))
case("manifest_integer_over_safe_range", everywhere(ManifestError))(
    _mbytes(lambda b: b.replace(b'"metadata":{}', b'"metadata":{"x":9007199254740992}'))
)
case("manifest_negative_size", everywhere(ManifestError))(
    _mbytes(lambda b: b.replace(b'"size":18', b'"size":-18'))
)
case("manifest_bool_size", everywhere(ManifestError))(
    _mbytes(lambda b: b.replace(b'"size":0', b'"size":false'))
)
case("manifest_string_size", everywhere(ManifestError))(
    _mbytes(lambda b: b.replace(b'"size":18', b'"size":"18"'))
)
case("manifest_deep_nesting", everywhere(ManifestError))(
    _mbytes(
        lambda b: b.replace(
            b'"metadata":{}', b'"metadata":{"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        )
    )
)
case("manifest_unknown_top_level_key", everywhere(ManifestError))(
    _mbytes(lambda b: b.replace(b'"metadata":{}', b'"metadata":{},"mode":"4755"'))
)
case("manifest_unknown_file_key", everywhere(ManifestError))(
    _mbytes(lambda b: b.replace(b'"executable":true', b'"executable":true,"mode":2541', 1))
)
case("manifest_metadata_nested", everywhere(ManifestError))(
    _mbytes(lambda b: b.replace(b'"metadata":{}', b'"metadata":{"x":{"y":1}}'))
)
case("manifest_metadata_empty_key", everywhere(ManifestError))(
    _mbytes(lambda b: b.replace(b'"metadata":{}', b'"metadata":{"":1}'))
)
case(
    "manifest_lone_surrogate_created_by",
    everywhere(ManifestError),
)(_mbytes(lambda b: b.replace(b'"snaparc 0.1.0"', b'"\\ud800"')))
case(
    "manifest_lone_surrogate_metadata_key",
    everywhere(ManifestError),
)(_mbytes(lambda b: b.replace(b'"metadata":{}', b'"metadata":{"\\udfff":1}')))


def _mhook(
    fn: Callable[[dict[str, Any], dict[str, bytes]], None], **kw: Any
) -> Callable[[], bytes]:
    return lambda: F.forge(manifest_hook=fn, **kw).data


def _blob_of(obj: dict[str, Any], data: bytes) -> dict[str, Any]:
    h = F.sha256(data)
    return next(b for b in obj["blobs"] if b["digests"]["sha256"] == h)


case("manifest_unknown_digest_algorithm", everywhere(ManifestError))(
    _mhook(lambda o, _: _blob_of(o, RUN_SH)["digests"].update(md5="0" * 32))
)
case("manifest_missing_blake3", everywhere(ManifestError))(
    _mhook(lambda o, _: _blob_of(o, RUN_SH)["digests"].pop("blake3"))
)
case("manifest_missing_sha256", everywhere(ManifestError))(
    _mhook(lambda o, _: _blob_of(o, RUN_SH)["digests"].pop("sha256"))
)
case("manifest_blake3_short_hex", everywhere(ManifestError))(
    _mhook(lambda o, _: _blob_of(o, RUN_SH)["digests"].update(blake3=F.b3(RUN_SH)[:63]))
)
case("manifest_blake3_uppercase_hex", everywhere(ManifestError))(
    _mhook(lambda o, _: _blob_of(o, RUN_SH)["digests"].update(blake3=F.b3(RUN_SH).upper()))
)


def _upper_sha(o: dict[str, Any], blobs: dict[str, bytes]) -> None:
    h = F.sha256(RUN_SH)
    _blob_of(o, RUN_SH)["digests"]["sha256"] = h.upper()
    for f in o["files"]:
        if f["blob"] == h:
            f["blob"] = h.upper()


case("manifest_sha256_uppercase_hex", everywhere(ManifestError))(_mhook(_upper_sha))
case("manifest_file_refers_to_unlisted_blob", everywhere(ManifestError))(
    _mhook(lambda o, _: o["files"][0].update(blob="0" * 64))
)


def _orphan(o: dict[str, Any], blobs: dict[str, bytes]) -> None:
    other = b"orphan\n"
    blobs[F.sha256(other)] = other
    o["blobs"].append({"digests": {"blake3": F.b3(other), "sha256": F.sha256(other)}, "size": 7})
    o["blobs"].sort(key=lambda b: b["digests"]["sha256"])


case("manifest_orphan_blob", everywhere(ManifestError))(_mhook(_orphan))


def _dup_blob(o: dict[str, Any], blobs: dict[str, bytes]) -> None:
    o["blobs"].insert(0, dict(o["blobs"][0]))


case("manifest_blob_listed_twice", everywhere(ManifestError))(_mhook(_dup_blob))
case("manifest_blobs_unsorted", everywhere(NonCanonicalError))(
    _mhook(lambda o, _: o["blobs"].reverse())
)
case("manifest_file_size_differs_from_blob", everywhere(ManifestError))(
    _mhook(lambda o, _: next(f for f in o["files"] if f["path"] == "run.sh").update(size=19))
)
case("manifest_blob_size_lies", in_blob(CorruptArchiveError))(
    # The blob and file sizes agree with each other but not with the data: the
    # member is cut from the data, so its header and length disagree.
    _mhook(
        lambda o, _: (
            _blob_of(o, RUN_SH).update(size=17),
            next(f for f in o["files"] if f["path"] == "run.sh").update(size=17),
        )
    )
)


def _wrong_blake3(o: dict[str, Any], blobs: dict[str, bytes]) -> None:
    _blob_of(o, RUN_SH)["digests"]["blake3"] = F.b3(b"something else")


case("digest_sha256_ok_blake3_wrong", in_blob(DigestMismatchError))(_mhook(_wrong_blake3))


def _wrong_sha(o: dict[str, Any], blobs: dict[str, bytes]) -> None:
    # The manifest names the blob by a sha256 that its bytes do not have.
    fake = F.sha256(b"something else")
    real = F.sha256(RUN_SH)
    _blob_of(o, RUN_SH)["digests"]["sha256"] = fake
    for f in o["files"]:
        if f["blob"] == real:
            f["blob"] = fake
    o["blobs"].sort(key=lambda b: b["digests"]["sha256"])
    blobs[fake] = RUN_SH


case("digest_blake3_ok_sha256_wrong", in_blob(DigestMismatchError))(_mhook(_wrong_sha))


def _content_swapped(o: dict[str, Any], blobs: dict[str, bytes]) -> None:
    blobs[F.sha256(RUN_SH)] = b"#!/bin/sh\nrm -rf /"


case("digest_both_wrong_same_size", in_blob(DigestMismatchError))(_mhook(_content_swapped))
case("version_newer_major", everywhere(UnsupportedVersionError))(
    lambda: F.forge(version="2.0").data
)
case("version_major_zero", everywhere(UnsupportedVersionError))(lambda: F.forge(version="0.9").data)
case("version_malformed", everywhere(ManifestError))(lambda: F.forge(version="1.0.0").data)
case("version_leading_zero", everywhere(ManifestError))(lambda: F.forge(version="01.0").data)
case("version_not_string", everywhere(ManifestError))(
    _mbytes(lambda b: b.replace(b'"format_version":"1.0"', b'"format_version":1'))
)
case("format_name_wrong", everywhere(ManifestError))(
    _mbytes(lambda b: b.replace(b'"format":"dlmsnap"', b'"format":"tar"'))
)
case(
    "manifest_over_limit",
    everywhere(LimitExceededError),
    limits=Limits(max_manifest_bytes=512),
)(lambda: F.forge().data)
case("max_files_limit", everywhere(LimitExceededError), limits=Limits(max_files=4))(
    lambda: F.forge().data
)
case("max_total_bytes_limit", everywhere(LimitExceededError), limits=Limits(max_total_bytes=1000))(
    lambda: F.forge().data
)


@case("manifest_lists_5_tib", everywhere(LimitExceededError))
def _five_tib() -> bytes:
    def hook(o: dict[str, Any], _: dict[str, bytes]) -> None:
        _blob_of(o, WEIGHTS).update(size=5 * 1024**4)
        next(f for f in o["files"] if f["blob"] == F.sha256(WEIGHTS)).update(size=5 * 1024**4)

    return F.forge(manifest_hook=hook).data


def _external(o: dict[str, Any], _: dict[str, bytes]) -> None:
    _blob_of(o, RUN_SH)["external"] = True


case("manifest_external_blob_without_base", everywhere(ManifestError))(_mhook(_external))
# The converse: a base archive id, but every blob stored (only a thin archive names a base).
case("manifest_base_without_external_blob", everywhere(ManifestError))(
    _mhook(lambda o, _: o.update(base=F.sha256(b"some other archive's manifest")))
)

# --- zstd stream -------------------------------------------------------------


def _frames(fn: Callable[[list[F.Frame]], list[F.Frame]], **kw: Any) -> Callable[[], bytes]:
    return lambda: F.forge(frames_hook=fn, **kw).data


def _replace(i: int | Callable[[list[F.Frame]], int], new: Callable[[F.Frame], F.Frame]) -> Any:
    def hook(frames: list[F.Frame]) -> list[F.Frame]:
        k = i(frames) if callable(i) else i
        frames[k] = new(frames[k])
        return frames

    return hook


def _raw_of(frame: F.Frame) -> bytes:
    import zstandard

    return zstandard.ZstdDecompressor().decompressobj().decompress(frame.data)


case(
    "stream_trailing_bytes",
    {"stream": TrailingDataError, "ls": CorruptArchiveError, "cat": CorruptArchiveError},
)(lambda: F.forge(trailing=b"\0").data)
case(
    "stream_trailing_seek_table_copy",
    {"stream": TrailingDataError, "ls": CorruptArchiveError, "cat": CorruptArchiveError},
)(lambda: F.forge(trailing=F.seek_table(F.table_entries(F.forge().frames))).data)
case(
    "stream_extra_data_frame_after_end",
    {"stream": TrailingDataError, "ls": CorruptArchiveError, "cat": CorruptArchiveError},
)(_frames(lambda fr: [*fr, F.Frame(F.compress_frame(bytes(1024)), 1024)]))
case(
    "stream_skippable_at_start",
    {
        "stream": UnexpectedFrameError,
        "ls": CorruptArchiveError,
        "ls_pipe": UnexpectedFrameError,
        "cat": CorruptArchiveError,
    },
)(_frames(lambda fr: [F.Frame(F.skippable_frame(b"hello"), 0, False), *fr]))
case(
    "stream_skippable_in_table_at_start",
    {
        "stream": UnexpectedFrameError,
        "ls": UnexpectedFrameError,
        "ls_pipe": UnexpectedFrameError,
        "cat": UnexpectedFrameError,
    },
)(_frames(lambda fr: [F.Frame(F.skippable_frame(b"hello"), 0, True), *fr]))
case("stream_skippable_in_middle", {"stream": UnexpectedFrameError, "ls": CorruptArchiveError})(
    _frames(lambda fr: [*fr[:2], F.Frame(F.skippable_frame(b"x" * 100), 0, False), *fr[2:]])
)
case(
    "stream_skippable_before_seek_table",
    {"stream": UnexpectedFrameError, "ls": CorruptArchiveError, "cat": CorruptArchiveError},
)(_frames(lambda fr: [*fr, F.Frame(F.skippable_frame(b"x", 0x184D2A51), 0, False)]))
case(
    "stream_second_seek_table_before_table",
    {"stream": TrailingDataError, "ls": CorruptArchiveError, "cat": CorruptArchiveError},
)(
    lambda: (
        F.forge(
            frames_hook=lambda fr: [
                *fr,
                F.Frame(F.seek_table(F.table_entries(F.forge().frames)), 0, False),
            ]
        ).data
    )
)
case(
    "stream_skippable_after_seek_table",
    {"stream": TrailingDataError, "ls": CorruptArchiveError, "cat": CorruptArchiveError},
)(lambda: F.forge(trailing=F.skippable_frame(b"signed by nobody")).data)
case(
    "stream_skippable_over_frame_limit",
    {
        "stream": LimitExceededError,
        "ls": LimitExceededError,
        "ls_pipe": LimitExceededError,
        "cat": LimitExceededError,
    },
)(_frames(lambda fr: [F.Frame(F.skippable_frame(bytes(10 * 1024 * 1024)), 0, True), *fr]))


def _table(fn: Callable[[list[tuple[int, int]]], bytes]) -> Callable[[], bytes]:
    return lambda: F.forge(table_hook=fn).data


def _bump(idx: int, which: int, delta: int) -> Callable[[list[tuple[int, int]]], bytes]:
    def fn(entries: list[tuple[int, int]]) -> bytes:
        e = list(entries[idx])
        e[which] += delta
        entries[idx] = (e[0], e[1])
        return F.seek_table(entries)

    return fn


SEEK_ALL = {"stream": CorruptArchiveError, "ls": CorruptArchiveError, "cat": CorruptArchiveError}
case("seektable_compressed_size_head", SEEK_ALL)(_table(_bump(0, 0, 1)))
case(
    "seektable_compressed_size_blob",
    {"stream": CorruptArchiveError, "ls": CorruptArchiveError, "cat": CorruptArchiveError},
)(_table(_bump(2, 0, -1)))
case(
    "seektable_compressed_size_swap",
    {"stream": CorruptArchiveError, "cat": CorruptArchiveError},
    cat_path="adapter/adapter_config.json",
)(
    # Sizes moved between two blob frames: the total still adds up.
    _table(lambda e: F.seek_table([*e[:2], (e[2][0] + 1, e[2][1]), (e[3][0] - 1, e[3][1]), *e[4:]]))
)
case("seektable_decompressed_size", SEEK_ALL)(_table(_bump(3, 1, 1)))
case("seektable_decompressed_size_eof", SEEK_ALL)(_table(_bump(-1, 1, -1)))
case("seektable_missing_entry", SEEK_ALL)(_table(lambda e: F.seek_table(e[:-1])))
case("seektable_extra_entry", SEEK_ALL)(_table(lambda e: F.seek_table([*e, (0, 0)])))
case("seektable_count_field", SEEK_ALL)(_table(lambda e: F.seek_table(e, n=len(e) - 1)))
case(
    "seektable_count_huge",
    {"stream": LimitExceededError, "ls": LimitExceededError, "cat": LimitExceededError},
)(_table(lambda e: F.seek_table(e, n=0xFFFFFFFF)))
case(
    "seektable_descriptor_nonzero",
    {"stream": NonCanonicalError, "ls": NonCanonicalError, "cat": NonCanonicalError},
)(_table(lambda e: F.seek_table(e, descriptor=1)))
case(
    "seektable_with_checksums",
    {"stream": NonCanonicalError, "ls": NonCanonicalError, "cat": NonCanonicalError},
)(_table(lambda e: F.seek_table(e, descriptor=0x80, checksums=[0] * len(e))))
case("seektable_seekable_magic", SEEK_ALL)(_table(lambda e: F.seek_table(e, magic=0x8F92EAB0)))
case("seektable_frame_size_field", SEEK_ALL)(
    _table(lambda e: F.seek_table(e, frame_size=8 * len(e) + 8))
)
case(
    "seektable_skippable_magic",
    {"stream": UnexpectedFrameError, "ls": CorruptArchiveError, "cat": CorruptArchiveError},
)(_table(lambda e: F.seek_table(e, skippable_magic=0x184D2A5F)))
case(
    "seektable_missing",
    {"stream": TruncatedArchiveError, "ls": CorruptArchiveError, "cat": CorruptArchiveError},
)(lambda: F.forge(table=b"").data)
case(
    "seektable_only",
    everywhere(UnexpectedFrameError),
)(lambda: F.seek_table([]))


def _flip(offset_from_end: int | None = None, at: int | None = None) -> Any:
    def new(fr: F.Frame) -> F.Frame:
        b = bytearray(fr.data)
        k = at if at is not None else len(b) - (offset_from_end or 1)
        b[k] ^= 0x10
        return F.Frame(bytes(b), fr.raw_size)

    return new


# run.sh's blob frame is frame 4 in the default archive (manifest, config,
# weights, empty? no: blobs sorted by sha256). Find it by member.
def _k(name_data: bytes) -> Callable[[list[F.Frame]], int]:
    def idx(frames: list[F.Frame]) -> int:
        f = F.forge()
        target = F.BLOB_PREFIX + F.sha256(name_data)
        return next(i for i, m in enumerate(f.members) if m.name == target)

    return idx


case(
    "frame_flip_compressed_data",
    in_blob(CorruptArchiveError),
    cat_path="adapter/adapter_model.safetensors",
)(_frames(_replace(_k(WEIGHTS), _flip(at=20))))
case("frame_flip_checksum", in_blob(CorruptArchiveError))(
    _frames(_replace(_k(RUN_SH), _flip(offset_from_end=2)))
)
case("frame_flip_manifest_checksum", everywhere(CorruptArchiveError))(
    _frames(_replace(0, _flip(offset_from_end=1)))
)


def _raw_replace(**kw: Any) -> Any:
    return lambda fr: F.Frame(F.raw_frame(_raw_of(fr), **kw), fr.raw_size)


case("frame_huge_window", in_blob(LimitExceededError))(
    _frames(_replace(_k(RUN_SH), _raw_replace(window_log=27)))
)
case("frame_huge_window_manifest", everywhere(LimitExceededError))(
    _frames(_replace(0, _raw_replace(window_log=31)))
)
case("frame_raw_blocks_accepted_sanity", {})(  # hand-made frames are valid when honest
    _frames(_replace(_k(RUN_SH), _raw_replace()))
)
case("frame_content_size_lies_up", in_blob(CorruptArchiveError))(
    _frames(
        _replace(
            _k(RUN_SH),
            lambda fr: F.Frame(F.raw_frame(_raw_of(fr)[:-1], fcs=fr.raw_size), fr.raw_size),
        )
    )
)
case("frame_content_size_lies_down", in_blob(CorruptArchiveError))(
    _frames(
        _replace(
            _k(RUN_SH),
            lambda fr: F.Frame(F.raw_frame(_raw_of(fr) + bytes(512), fcs=fr.raw_size), fr.raw_size),
        )
    )
)
case("frame_declares_other_size", in_blob(CorruptArchiveError))(
    _frames(_replace(_k(RUN_SH), _raw_replace(fcs=1536)))
)
case("frame_declares_over_frame_size", in_blob(LimitExceededError))(
    _frames(_replace(_k(RUN_SH), _raw_replace(fcs=1 << 40)))
)
case("frame_without_checksum", in_blob(NonCanonicalError))(
    _frames(_replace(_k(RUN_SH), _raw_replace(checksum=False)))
)
case("frame_without_checksum_manifest", everywhere(NonCanonicalError))(
    _frames(
        _replace(0, lambda fr: F.Frame(F.compress_frame(_raw_of(fr), checksum=False), fr.raw_size))
    )
)
case("frame_without_content_size", in_blob(NonCanonicalError))(
    _frames(
        _replace(
            _k(RUN_SH),
            lambda fr: F.Frame(F.compress_frame(_raw_of(fr), content_size=False), fr.raw_size),
        )
    )
)


def _set_fhd_bits(bits: int) -> Any:
    def new(fr: F.Frame) -> F.Frame:
        b = bytearray(F.raw_frame(_raw_of(fr)))
        b[4] |= bits
        if bits & 0x03:  # a dictionary id needs its bytes: insert one
            b[5:5] = b"\x07"
        return F.Frame(bytes(b), fr.raw_size)

    return new


case("frame_reserved_header_bit", in_blob(CorruptArchiveError))(
    _frames(_replace(_k(RUN_SH), _set_fhd_bits(0x08)))
)
case("frame_needs_dictionary", in_blob(UnexpectedFrameError))(
    _frames(_replace(_k(RUN_SH), _set_fhd_bits(0x01)))
)


def _block_type(btype: int) -> Any:
    def new(fr: F.Frame) -> F.Frame:
        b = bytearray(F.raw_frame(_raw_of(fr)))
        hdr = 5 + 8  # magic, FHD, 8-byte FCS (single segment)
        bh = int.from_bytes(b[hdr : hdr + 3], "little")
        bh = (bh & ~0b110) | (btype << 1)
        b[hdr : hdr + 3] = bh.to_bytes(3, "little")
        return F.Frame(bytes(b), fr.raw_size)

    return new


case("frame_reserved_block_type", in_blob(CorruptArchiveError))(
    _frames(_replace(_k(RUN_SH), _block_type(3)))
)


def _k_files(files: list[F.FileSpec], data: bytes) -> Callable[[list[F.Frame]], int]:
    def idx(frames: list[F.Frame]) -> int:
        f = F.forge(files)
        target = F.BLOB_PREFIX + F.sha256(data)
        return next(i for i, m in enumerate(f.members) if m.name == target)

    return idx


BIG = bytes(300_000)
BIG_FILES = files_with(("big.bin", BIG))
case("frame_block_over_128k", in_blob(CorruptArchiveError), cat_path="big.bin")(
    lambda: (
        F.forge(
            BIG_FILES,
            frames_hook=_replace(
                _k_files(BIG_FILES, BIG),
                lambda fr: F.Frame(F.raw_frame(_raw_of(fr), block_size=200_000), fr.raw_size),
            ),
        ).data
    )
)
case("frame_rle_bomb_declared_small", in_blob(CorruptArchiveError))(
    # 400 bytes of RLE blocks that expand to 8 MiB, declaring the 1024 the layout needs.
    _frames(
        _replace(
            _k(RUN_SH),
            lambda fr: F.Frame(
                F.raw_frame(b"\0", rle=True, rle_blocks=64, fcs=fr.raw_size), fr.raw_size
            ),
        )
    )
)
case("frame_zero_bomb_declares_frame_size", in_blob(CorruptArchiveError))(
    # Highly compressible frame declaring FRAME_SIZE where the manifest says 1024.
    _frames(
        _replace(_k(RUN_SH), lambda fr: F.Frame(F.compress_frame(bytes(F.FRAME_SIZE)), fr.raw_size))
    )
)
case("frame_garbage_magic", in_blob(CorruptArchiveError))(
    _frames(_replace(_k(RUN_SH), lambda fr: F.Frame(b"PK\x03\x04" + fr.data[4:], fr.raw_size)))
)
case("frame_two_frames_for_one", in_blob(CorruptArchiveError))(
    # One member's bytes split into two frames where the layout wants one.
    _frames(
        lambda fr: (
            lambda k: [
                *fr[:k],
                F.Frame(F.compress_frame(_raw_of(fr[k])[:512]), 512),
                F.Frame(F.compress_frame(_raw_of(fr[k])[512:]), 512),
                *fr[k + 1 :],
            ]
        )(_k(RUN_SH)(fr))
    )
)


def run_case(c: Case) -> bytes:
    return c.build()


def write_corpus(outdir: Path) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    index = {}
    for c in CASES:
        (outdir / f"{c.name}.dlmsnap").write_bytes(c.build())
        index[c.name] = {
            "expect": {k: (v.__name__, v.exit_code) for k, v in c.expect.items() if v},
            "cat_path": c.cat_path,
            "limits": {
                k: getattr(c.limits, k)
                for k in ("max_manifest_bytes", "max_files", "max_total_bytes")
                if getattr(c.limits, k) != getattr(DEFAULT_LIMITS, k)
            },
            "known_bug": c.bug,
        }
    (outdir / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m tests.hostile.gen_corpus OUTDIR", file=sys.stderr)
        sys.exit(2)
    write_corpus(Path(sys.argv[1]))
    print(f"wrote {len(CASES)} archives to {sys.argv[1]}")
