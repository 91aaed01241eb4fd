"""Defence in depth on the in-memory store: every layer of checks on pull."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
from snaparc_testlib import push_file

from snaparc.errors import IntegrityError
from snaparc.mirror.layout import decode_record, encode_record, record_key
from snaparc.mirror.pull import MirrorDigestError, MirrorPartMissingError, pull_archive
from snaparc.mirror.push import MirrorObjectError
from snaparc.mirror.store import MemoryStore, PutMode, RetryingStore, TransientStoreError
from snaparc.mirror.url import MirrorTarget, MirrorURL

TARGET = MirrorTarget(MirrorURL("file", path="memory"), ref="main")


def test_missing_part_is_an_integrity_error(archive_v1: Path, tmp_path: Path) -> None:
    store = MemoryStore()
    push_file(archive_v1, store, ref="main")
    victim = sorted(k for k in store.objects if k.startswith("blobs/"))[0]
    del store.objects[victim]
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "o.dlmsnap"
    with pytest.raises(MirrorPartMissingError, match=victim) as info:
        pull_archive(TARGET, out, store=store)
    assert info.value.exit_code == 1
    assert not isinstance(info.value, MirrorDigestError)  # the reader caught it
    assert list(out.parent.iterdir()) == []


def test_consistently_forged_record_is_caught_by_the_reader(
    archive_v1: Path, tmp_path: Path
) -> None:
    """Replace a part *and* rewrite the record to match: the verified reader
    (frame checksums, both blob digests) still refuses the rebuilt archive."""
    store = MemoryStore()
    r = push_file(archive_v1, store, ref="main")
    rec = decode_record(store.objects[record_key(r.archive_id)], archive_id=r.archive_id)
    blob = rec.blobs[0]
    part = blob.parts[0]
    data = bytearray(store.objects[blob.key(r.archive_id, part)])
    data[len(data) // 2] ^= 0x10
    forged = dataclasses.replace(part, sha256=hashlib.sha256(data).hexdigest())
    store.objects[blob.key(r.archive_id, forged)] = bytes(data)
    new_blob = dataclasses.replace(blob, parts=(forged, *blob.parts[1:]))
    whole = bytearray(archive_v1.read_bytes())
    start = sum(m.compressed_size for m in rec.members[:1])
    whole[start : start + part.size] = data
    new_rec = dataclasses.replace(
        rec,
        blobs=(new_blob, *rec.blobs[1:]),
        file_sha256=hashlib.sha256(whole).hexdigest(),
    )
    store.objects[record_key(r.archive_id)] = encode_record(new_rec)
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "o.dlmsnap"
    with pytest.raises(IntegrityError) as info:
        pull_archive(TARGET, out, store=store)
    assert info.value.exit_code == 1
    assert not isinstance(info.value, MirrorDigestError)  # the reader caught it
    assert list(out.parent.iterdir()) == []


def test_existing_part_of_wrong_size_is_not_overwritten(archive_v1: Path) -> None:
    store = MemoryStore()
    push_file(archive_v1, store)
    victim = sorted(k for k in store.objects if k.startswith("blobs/"))[0]
    store.objects[victim] = b"short"
    with pytest.raises(MirrorObjectError, match=victim) as info:
        push_file(archive_v1, store)
    assert info.value.exit_code == 1 and store.objects[victim] == b"short"


class _Flaky(MemoryStore):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def put(self, key: str, data: bytes, *, mode: PutMode) -> None:
        if self.failures:
            self.failures -= 1
            raise TransientStoreError("503 slow down")
        super().put(key, data, mode=mode)


def test_retrying_store_retries_transient_errors_only(archive_v1: Path, tmp_path: Path) -> None:
    sleeps: list[float] = []
    flaky = _Flaky(failures=3)
    store = RetryingStore(flaky, retries=3, sleep=sleeps.append)
    push_file(archive_v1, store, ref="main", jobs=1)
    assert len(sleeps) == 3 and flaky.failures == 0
    pull_archive(TARGET, tmp_path / "o", store=store)
    assert (tmp_path / "o").read_bytes() == archive_v1.read_bytes()
    hopeless = RetryingStore(_Flaky(failures=10), retries=2, sleep=sleeps.append)
    with pytest.raises(TransientStoreError):
        push_file(archive_v1, hopeless)
