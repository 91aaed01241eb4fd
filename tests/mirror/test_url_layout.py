"""URL/ref parsing, S3 settings, the archive record, error classification."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from snaparc.errors import RemoteError, UsageError
from snaparc.mirror.layout import (
    ArchiveRecord,
    MemberRecord,
    MirrorRecordError,
    Part,
    decode_record,
    decode_ref,
    encode_record,
)
from snaparc.mirror.store import RemotePermissionError, TransientStoreError
from snaparc.mirror.url import looks_like_mirror_target, parse_target, s3_settings

ID = "ab" * 32


@pytest.mark.parametrize(
    ("text", "scheme", "where", "ref", "aid"),
    [
        ("mirror", "file", "mirror", None, None),
        ("mirror:main", "file", "mirror", "main", None),
        ("/srv/m/x:v1.2", "file", "/srv/m/x", "v1.2", None),
        ("/srv/a:b/m", "file", "/srv/a:b/m", None, None),  # ':' in an earlier segment
        ("./odd:name/", "file", "./odd:name/", None, None),  # trailing '/' ends the URL
        (f"/srv/m@{ID}", "file", "/srv/m", None, ID),
        ("/srv/user@host", "file", "/srv/user@host", None, None),  # not an id
        ("file:///srv/m:main", "file", "/srv/m", "main", None),
        ("file://localhost/srv/m", "file", "/srv/m", None, None),
        ("s3://bucket", "s3", "s3://bucket", None, None),
        ("s3://bucket:main", "s3", "s3://bucket", "main", None),
        ("s3://bucket/team/models:prod", "s3", "s3://bucket/team/models", "prod", None),
        (f"s3://bucket/p@{ID}", "s3", "s3://bucket/p", None, ID),
    ],
)
def test_parse_target(text: str, scheme: str, where: str, ref: str | None, aid: str | None) -> None:
    t = parse_target(text)
    assert (t.url.scheme, str(t.url), t.ref, t.archive_id) == (scheme, where, ref, aid)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "gs://bucket/x",
        "s3://Bad_Bucket/x",
        "file://host/x",
        "s3://bucket/a/../b",
        f"s3://bucket/p/@{ID}",
    ],
)
def test_bad_urls(text: str) -> None:
    with pytest.raises(UsageError):
        parse_target(text)


def test_s3_settings_from_env_and_flags() -> None:
    env = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "very-secret-value",
        "AWS_SESSION_TOKEN": "t",
    }
    s = s3_settings(env=env)
    assert (s.endpoint, s.region, s.access_key_id, s.session_token, s.allow_http) == (
        "http://127.0.0.1:9000",
        "eu-west-1",
        "k",
        "t",
        True,
    )
    assert "very-secret-value" not in repr(s) and s.secret_access_key == "very-secret-value"
    s = s3_settings(endpoint="https://minio.example", region="r", env=env)
    assert (s.endpoint, s.region, s.allow_http) == ("https://minio.example", "r", False)
    with pytest.raises(UsageError, match="--allow-http"):
        s3_settings(endpoint="http://10.0.0.5:9000", env={})
    assert s3_settings(endpoint="http://10.0.0.5:9000", allow_http=True, env={}).allow_http
    assert s3_settings(endpoint="http://[::1]:9000", env={}).allow_http
    with pytest.raises(UsageError):
        s3_settings(endpoint="ftp://x", env={})


def _record() -> ArchiveRecord:
    part = Part("cd" * 32, 30, (30,))
    return ArchiveRecord(
        archive_id=ID,
        manifest=MemberRecord(None, 100, (part,)),
        blobs=(MemberRecord("ef" * 32, 5, (Part("01" * 32, 20, (20,)),)),),
        end_frame=b"\x28\xb5\x2f\xfd" + bytes(9),
        file_size=30 + 20 + 13 + 8 + 3 * 8 + 9,
        file_sha256="02" * 32,
    )


def test_record_roundtrip_and_strictness() -> None:
    rec = _record()
    data = encode_record(rec)
    assert decode_record(data, archive_id=ID) == rec
    with pytest.raises(MirrorRecordError, match="not"):
        decode_record(data, archive_id="cd" * 32)
    with pytest.raises(MirrorRecordError, match="canonical"):
        decode_record(data.replace(b",", b", ", 1), archive_id=ID)
    with pytest.raises(MirrorRecordError, match="file_size"):
        decode_record(data.replace(b'"file_size":', b'"file_size":1'), archive_id=ID)
    with pytest.raises(MirrorRecordError):
        decode_record(b"[]", archive_id=ID)
    assert MirrorRecordError("x").exit_code == 1


def test_ref_decoding() -> None:
    assert decode_ref(ID.encode() + b"\n", name="main") == ID
    for bad in (b"", b"main\n", ID.encode() + b"\n\n", ID.upper().encode()):
        with pytest.raises(MirrorRecordError):
            decode_ref(bad, name="main")


def test_s3_error_classification() -> None:
    pytest.importorskip("obstore")
    from snaparc.mirror.s3 import S3Store
    from snaparc.mirror.url import S3Settings

    st = S3Store("bucket", "p", S3Settings(endpoint="http://127.0.0.1:1", allow_http=True))
    forbidden = st._classify(Exception("... status code: 403 Forbidden: AccessDenied"), "k", "read")
    assert isinstance(forbidden, RemotePermissionError) and "s3://bucket/p/k" in str(forbidden)
    assert isinstance(st._classify(Exception("status code: 503"), "k", "read"), TransientStoreError)
    assert isinstance(
        st._classify(Exception("connection refused"), "k", "read"), TransientStoreError
    )
    bad = st._classify(Exception("status code: 400 Bad Request"), "k", "read")
    assert type(bad) is RemoteError
    assert st._classify(Exception("<Code>NoSuchBucket</Code>"), "k", "x").exit_code == 10


def test_looks_like_mirror_target(tmp_path: Path) -> None:
    root = tmp_path
    (root / "m").mkdir()
    (root / "a.dlmsnap").write_bytes(b"x")
    assert looks_like_mirror_target("s3://bucket/x:main")
    assert looks_like_mirror_target("file:///srv/m")
    assert looks_like_mirror_target(f"{root}/m:main")
    assert looks_like_mirror_target(f"{root}/m@{ID}")
    assert not looks_like_mirror_target(f"{root}/m")
    assert not looks_like_mirror_target(f"{root}/a.dlmsnap")
    assert not looks_like_mirror_target(f"{root}/nowhere:main")
    assert not looks_like_mirror_target("-")


def test_dir_store_permission_error_is_exit_10(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from snaparc.mirror.store import DirStore

    store = DirStore(tmp_path / "s", create=True)
    store.put("k", b"x", mode="create")

    def deny(*args: object, **kwargs: object) -> object:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", deny)  # reads open with os.open (snaparc.sidefiles)
    with pytest.raises(RemotePermissionError, match="permission denied") as info:
        store.get("k")
    assert info.value.exit_code == 10
