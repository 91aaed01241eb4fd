"""Push and pull against every backend (directory and moto S3), same tests."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from snaparc_testlib import push_file

from snaparc.cli import main
from snaparc.mirror.connect import open_store
from snaparc.mirror.layout import PART_FRAMES, decode_record, record_key
from snaparc.mirror.pull import list_mirror, pull_archive
from snaparc.mirror.push import PushReport
from snaparc.mirror.store import ObjectInfo, PutMode, Store
from snaparc.mirror.url import parse_url
from snaparc.sources.archive import open_source

from .conftest import pack, write_tree


def _store(url: str) -> Store:
    return open_store(parse_url(url), create=True)


def _keys(store: Store) -> dict[str, int]:
    return {i.key: i.size for i in store.list("")}


def test_push_then_pull_is_byte_identical(
    mirror_url: str, archive_v1: Path, tmp_path: Path
) -> None:
    store = _store(mirror_url)
    r = push_file(archive_v1, store, ref="main")
    assert r.record_written and r.bytes_skipped == 0 and r.objects_skipped == 0
    keys = _keys(store)
    parts = [k for k in keys if k.startswith(("blobs/", "manifests/"))]
    assert r.objects_sent == len(parts)
    assert r.bytes_sent == sum(keys[k] for k in parts)
    assert keys["refs/main"] == 65

    out = tmp_path / "pulled.dlmsnap"
    p = pull_archive(f"{mirror_url}:main", out, store=store)
    assert out.read_bytes() == archive_v1.read_bytes()
    assert p.archive_id == r.archive_id and p.bytes_received == archive_v1.stat().st_size
    # also by id, and through a freshly opened store (URL only)
    out2 = tmp_path / "by_id.dlmsnap"
    pull_archive(f"{mirror_url}@{r.archive_id}", out2)
    assert out2.read_bytes() == archive_v1.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir() if "snaparc-tmp" in p.name) == []


def test_repush_sends_nothing(mirror_url: str, archive_v1: Path) -> None:
    store = _store(mirror_url)
    first = push_file(archive_v1, store, ref="main")
    before = _keys(store)
    again = push_file(archive_v1, store, ref="main")
    assert again.bytes_sent == 0 and again.objects_sent == 0
    assert again.bytes_skipped == first.bytes_sent
    assert not again.record_written and not again.kept_other_encoding
    assert _keys(store) == before


def test_push_v2_sends_only_changed_blobs(
    mirror_url: str, tmp_path: Path, v1_files: dict[str, bytes], archive_v1: Path
) -> None:
    store = _store(mirror_url)
    r1 = push_file(archive_v1, store, ref="v1")
    v2_files = dict(v1_files)
    changed = sorted(v2_files)[0]
    v2_files[changed] = b"changed " * 1000
    v2_files["new/extra.bin"] = b"\x01\x02" * 3000
    archive_v2 = pack(write_tree(tmp_path / "src_v2", v2_files), tmp_path / "v2.dlmsnap")
    before = _keys(store)
    r2 = push_file(archive_v2, store, ref="v2")
    new = {k: n for k, n in _keys(store).items() if k not in before}
    import hashlib

    new_blobs = {k.split("/")[1] for k in new if k.startswith("blobs/")}
    assert new_blobs == {
        hashlib.sha256(v2_files[changed]).hexdigest(),
        hashlib.sha256(v2_files["new/extra.bin"]).hexdigest(),
    }
    assert set(new) == {k for k in new if k.startswith(("blobs/", "manifests/"))} | {
        record_key(r2.archive_id),
        "refs/v2",
    }
    sent_parts = sum(n for k, n in new.items() if k.startswith(("blobs/", "manifests/")))
    assert r2.bytes_sent == sent_parts
    assert (
        r2.bytes_skipped > 0 and r2.objects_skipped == len(v1_files) - 1
    )  # all but the changed one
    listing = list_mirror(store)
    assert listing.refs == {"v1": r1.archive_id, "v2": r2.archive_id}
    assert set(listing.archives) == {r1.archive_id, r2.archive_id}
    for ref, src in (("v1", archive_v1), ("v2", archive_v2)):
        out = tmp_path / f"{ref}.out"
        pull_archive(f"{mirror_url}:{ref}", out, store=store)
        assert out.read_bytes() == src.read_bytes()


def test_same_blob_other_compression_keeps_byte_identity(
    mirror_url: str, tmp_path: Path, v1_files: dict[str, bytes], archive_v1: Path
) -> None:
    store = _store(mirror_url)
    push_file(archive_v1, store, ref="fast")
    # the same blobs in another tree (other archive id), packed at another level
    other = dict(v1_files, **{"README.md": b"other tree\n"})
    archive_b = pack(write_tree(tmp_path / "src_b", other), tmp_path / "b.dlmsnap", level=19)
    rb = push_file(archive_b, store, ref="slow")
    assert rb.bytes_sent > 0
    out = tmp_path / "b.out"
    pull_archive(f"{mirror_url}:slow", out, store=store)
    assert out.read_bytes() == archive_b.read_bytes()
    # the same tree at another level: same archive id, the first encoding is kept
    archive_c = pack(write_tree(tmp_path / "src_c", v1_files), tmp_path / "c.dlmsnap", level=19)
    rc = push_file(archive_c, store)
    assert rc.kept_other_encoding and not rc.record_written
    out_c = tmp_path / "c.out"
    pull_archive(f"{mirror_url}@{rc.archive_id}", out_c, store=store)
    assert out_c.read_bytes() == archive_v1.read_bytes()


def test_big_blob_is_split_into_parts(mirror_url: str, tmp_path: Path) -> None:
    frame = 8 * 1024 * 1024
    big = bytearray(frame * PART_FRAMES + frame // 2)
    big[::4096] = b"\x07" * len(big[::4096])
    archive = pack(write_tree(tmp_path / "src", {"big.bin": bytes(big)}), tmp_path / "big.dlmsnap")
    store = _store(mirror_url)
    r = push_file(archive, store, ref="big", jobs=3)
    rec = decode_record(store.get(record_key(r.archive_id)), archive_id=r.archive_id)
    (blob,) = rec.blobs
    assert [len(p.frames) for p in blob.parts] == [PART_FRAMES, 1]
    out = tmp_path / "big.out"
    pull_archive(f"{mirror_url}:big", out, store=store, jobs=2)
    assert out.read_bytes() == archive.read_bytes()


def test_concurrent_pushes_of_the_same_blobs(
    mirror_url: str, tmp_path: Path, v1_files: dict[str, bytes], archive_v1: Path
) -> None:
    archive_2 = pack(
        write_tree(tmp_path / "src2", dict(v1_files, extra=b"x")), tmp_path / "two.dlmsnap"
    )
    reports: list[PushReport] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run(archive: Path, ref: str) -> None:
        barrier.wait()
        try:
            reports.append(push_file(archive, _store(mirror_url), ref=ref, jobs=2))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    jobs = [(archive_v1, "a"), (archive_v1, "b"), (archive_2, "c"), (archive_2, "d")]
    threads = [threading.Thread(target=run, args=j) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = _store(mirror_url)
    parts = {k: n for k, n in _keys(store).items() if k.startswith(("blobs/", "manifests/"))}
    # every object was uploaded exactly once, however the pushes interleaved
    assert sum(r.objects_sent for r in reports) == len(parts)
    assert sum(r.bytes_sent for r in reports) == sum(parts.values())
    for ref, src in (("a", archive_v1), ("d", archive_2)):
        out = tmp_path / f"{ref}.out"
        pull_archive(f"{mirror_url}:{ref}", out, store=store)
        assert out.read_bytes() == src.read_bytes()


class _FailAfter:
    """Wraps a store; the (n+1)-th put of an object (not of the push lock) raises,
    as a crash or lost network would."""

    def __init__(self, inner: Store, n: int) -> None:
        self.inner, self.left = inner, n
        self._lock = threading.Lock()

    def describe(self, key: str = "") -> str:
        return self.inner.describe(key)

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def get_range(self, key: str, start: int, end: int) -> bytes:
        return self.inner.get_range(key, start, end)

    def head(self, key: str) -> ObjectInfo | None:
        return self.inner.head(key)

    def list(self, prefix: str):  # type: ignore[no-untyped-def]
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def put(self, key: str, data: bytes, *, mode: PutMode) -> None:
        if key.startswith("locks/"):
            self.inner.put(key, data, mode=mode)
            return
        with self._lock:
            if self.left == 0:
                raise ConnectionError("injected failure")
            self.left -= 1
        self.inner.put(key, data, mode=mode)


def test_interrupted_push_resumes(mirror_url: str, archive_v1: Path, tmp_path: Path) -> None:
    store = _store(mirror_url)
    with pytest.raises(ConnectionError):
        push_file(archive_v1, _FailAfter(store, 3), ref="main", jobs=1)
    done = _keys(store)
    assert len(done) == 3 and all(k.startswith(("blobs/", "manifests/")) for k in done)
    assert not any(k.startswith(("archives/", "refs/")) for k in done)  # nothing published
    r = push_file(archive_v1, store, ref="main")
    assert r.objects_skipped == 3 and r.bytes_skipped == sum(done.values())
    assert r.record_written
    out = tmp_path / "out.dlmsnap"
    pull_archive(f"{mirror_url}:main", out, store=store)
    assert out.read_bytes() == archive_v1.read_bytes()


def _tamper(store: Store, key: str) -> None:
    data = bytearray(store.get(key))
    data[len(data) // 2] ^= 0x40
    store.put(key, bytes(data), mode="overwrite")


def test_tampered_blob_detected_on_pull(
    mirror_url: str, archive_v1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _store(mirror_url)
    push_file(archive_v1, store, ref="main")
    victim = sorted(k for k in _keys(store) if k.startswith("blobs/"))[1]
    blob = victim.split("/")[1]
    _tamper(store, victim)
    out = tmp_path / "out" / "pulled.dlmsnap"
    out.parent.mkdir()
    code = main(["mirror", "pull", f"{mirror_url}:main", "-o", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert blob in err and "tampered" in err
    assert list(out.parent.iterdir()) == []  # nothing published, no temp left


def test_open_mirror_archive_unpacks_to_a_tree(
    mirror_url: str, archive_v1: Path, v1_files: dict[str, bytes], tmp_path: Path
) -> None:
    from snaparc.archive.unpack import unpack_archive

    push_file(archive_v1, _store(mirror_url), ref="main")
    dest = tmp_path / "tree"
    with open_source(f"{mirror_url}:main", jobs=2) as stream:
        unpack_archive(stream, dest)
    for rel, data in v1_files.items():
        assert (dest / rel).read_bytes() == data


def test_open_mirror_archive_streams_exact_bytes(mirror_url: str, archive_v1: Path) -> None:
    r = push_file(archive_v1, _store(mirror_url))
    with open_source(f"{mirror_url}@{r.archive_id}", jobs=1) as s:
        chunks = []
        while chunk := s.stream.read(777):
            chunks.append(chunk)
    assert b"".join(chunks) == archive_v1.read_bytes()


def test_push_refuses_a_corrupt_archive(mirror_url: str, archive_v1: Path, tmp_path: Path) -> None:
    data = bytearray(archive_v1.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad = tmp_path / "bad.dlmsnap"
    bad.write_bytes(bytes(data))
    assert main(["mirror", "push", str(bad), mirror_url, "--ref", "main"]) in (1, 3)
    assert _keys(_store(mirror_url)) == {}


def test_cli_push_pull_ls(
    mirror_url: str, archive_v1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["mirror", "push", str(archive_v1), f"{mirror_url}:main"]) == 0
    out = capsys.readouterr().out
    assert "pushed" in out and " as main" in out
    assert "already in the mirror (0 bytes, 0 objects)" in out
    assert main(["mirror", "push", str(archive_v1), mirror_url, "--ref", "main", "--json"]) == 0
    import json

    rep = json.loads(capsys.readouterr().out)
    assert rep["bytes_sent"] == 0 and rep["bytes_skipped"] > 0
    assert main(["mirror", "ls", mirror_url]) == 0
    listing = capsys.readouterr().out
    assert f"ref main -> {rep['archive_id']}" in listing
    assert f"archive {rep['archive_id']}" in listing
    dest = tmp_path / "x.dlmsnap"
    assert main(["mirror", "pull", f"{mirror_url}:main", "-o", str(dest)]) == 0
    assert dest.read_bytes() == archive_v1.read_bytes()
    assert main(["mirror", "pull", f"{mirror_url}:main", "-o", str(dest)]) == 5  # exists
    assert main(["mirror", "pull", f"{mirror_url}:main", "-o", str(dest), "--force"]) == 0


def test_not_found_ref_and_archive_exit_10(
    mirror_url: str, archive_v1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    push_file(archive_v1, _store(mirror_url), ref="main")
    out = tmp_path / "o.dlmsnap"
    assert main(["mirror", "pull", f"{mirror_url}:nope", "-o", str(out)]) == 10
    assert "'nope' not found" in capsys.readouterr().err
    missing = "0" * 64
    assert main(["mirror", "pull", f"{mirror_url}@{missing}", "-o", str(out)]) == 10
    assert missing in capsys.readouterr().err
    assert main(["mirror", "pull", mirror_url, "-o", str(out)]) == 2  # no ref named
    assert not out.exists()
