"""Mirror reads and uploads in bounded memory, whatever the part and archive size.

Pull reads parts in ranges of at most `fetch.CHUNK` bytes, at most `jobs` at
a time, and never past a part's recorded size (plus one byte, to see that
the object is not longer); push keeps at most `jobs` parts and
`UPLOAD_BUDGET` bytes in flight. A part longer or shorter than its record
is refused (exit 1) on every backend, without reading the excess.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
from snaparc_testlib import push_file

from snaparc import api
from snaparc.cli import main
from snaparc.mirror import fetch, push
from snaparc.mirror.connect import open_store
from snaparc.mirror.pull import MirrorDigestError, pull_archive
from snaparc.mirror.store import MemoryStore, ObjectInfo, PutMode
from snaparc.mirror.url import MirrorTarget, MirrorURL, parse_url

from .conftest import write_tree

TARGET = MirrorTarget(MirrorURL("file", path="memory"), ref="main")
MIB = 1024 * 1024


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """Two incompressible blobs of 9 and 5 MiB: parts of several chunks."""
    rng = random.Random(3)
    files = {"a.bin": rng.randbytes(9 * MIB), "b.bin": rng.randbytes(5 * MIB), "c": b"{}"}
    src = write_tree(tmp_path / "src", files)
    out = tmp_path / "a.dlmsnap"
    assert main(["pack", str(src), "-o", str(out), "--quiet"]) == 0
    return out


class _Watched(MemoryStore):
    """Records every read's size and the most reads and put bytes at once."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[str, int, int]] = []
        self.gets: list[str] = []
        self._busy = 0
        self._put_bytes = 0
        self.most_busy = 0
        self.most_put_bytes = 0
        self._watch = threading.Lock()

    def get(self, key: str) -> bytes:
        self.gets.append(key)
        return super().get(key)

    def get_range(self, key: str, start: int, end: int) -> bytes:
        with self._watch:
            self.reads.append((key, start, end))
            self._busy += 1
            self.most_busy = max(self.most_busy, self._busy)
        try:
            time.sleep(0.005)  # let the reads overlap
            return MemoryStore.get(self, key)[start:end]
        finally:
            with self._watch:
                self._busy -= 1

    def put(self, key: str, data: bytes, *, mode: PutMode) -> None:
        with self._watch:
            self._put_bytes += len(data)
            self.most_put_bytes = max(self.most_put_bytes, self._put_bytes)
        try:
            time.sleep(0.005)
            super().put(key, data, mode=mode)
        finally:
            with self._watch:
                self._put_bytes -= len(data)


def test_pull_reads_parts_in_bounded_ranges_with_bounded_concurrency(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch, "CHUNK", 1 * MIB)
    store = _Watched()
    push_file(archive, store, ref="main")
    out = tmp_path / "o.dlmsnap"
    pull_archive(TARGET, out, store=store, jobs=3)
    assert out.read_bytes() == archive.read_bytes()
    part_reads = [r for r in store.reads if r[0].startswith(("blobs/", "manifests/"))]
    assert part_reads and max(end - start for _, start, end in part_reads) <= 1 * MIB + 1
    assert not [k for k in store.gets if k.startswith(("blobs/", "manifests/"))]
    assert store.most_busy <= 3
    # every part byte was asked for once (plus one byte past each part's end)
    sizes = {info.key: info.size for info in store.list("")}
    asked = sum(end - start for _, start, end in part_reads)
    parts = [k for k in sizes if k.startswith(("blobs/", "manifests/"))]
    assert asked == sum(sizes[k] for k in parts) + len(parts)


def test_push_keeps_its_upload_budget(archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(push, "UPLOAD_BUDGET", 6 * MIB)
    store = _Watched()
    report = push_file(archive, store, ref="main", jobs=8)
    largest = max(info.size for info in store.list("blobs"))
    assert report.objects_sent >= 3
    assert store.most_put_bytes <= max(6 * MIB, largest)


@pytest.mark.parametrize("change", ["longer", "shorter"])
def test_a_part_of_the_wrong_size_is_refused_without_reading_the_excess(
    change: str, mirror_url: str, archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store(parse_url(mirror_url), create=True)
    push_file(archive, store, ref="main")
    victim = max(store.list("blobs"), key=lambda i: i.size)
    data = store.get(victim.key)
    damaged = data + random.randbytes(20 * MIB) if change == "longer" else data[: len(data) // 3]
    _replace(store, victim, damaged, mirror_url)
    before = store.stats.bytes_received
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "o.dlmsnap"
    with pytest.raises(MirrorDigestError, match=victim.key) as info:
        pull_archive(f"{mirror_url}:main", out, store=store)
    assert info.value.exit_code == 1
    # the excess is never read: the archive's bytes, the ref and the record
    assert store.stats.bytes_received - before <= archive.stat().st_size + 4096
    assert list(out.parent.iterdir()) == []
    assert main(["pull", f"{mirror_url}:main", "-o", str(out)]) == 1
    assert victim.key in capsys.readouterr().err


def _replace(store: object, victim: ObjectInfo, data: bytes, mirror_url: str) -> None:
    """Overwrite a part object (mirrors never do; an attacker or a bad disk does)."""
    if mirror_url.startswith("s3://"):
        from snaparc.mirror.store import RetryingStore

        assert isinstance(store, RetryingStore)
        store.inner.put(victim.key, data, mode="overwrite")
    else:
        (Path(mirror_url) / victim.key).write_bytes(data)


def test_a_mirror_target_is_read_in_bounded_ranges_by_every_reading_command(
    archive: Path, tmp_path: Path
) -> None:
    """verify and unpack of URL:REF go through the same bounded stream."""
    mirror = tmp_path / "mirror"
    api.push(archive, str(mirror), ref="main")
    assert api.verify(f"{mirror}:main").report.blobs_verified == 3
    dest = tmp_path / "dest"
    api.unpack(f"{mirror}:main", dest)
    assert (dest / "a.bin").stat().st_size == 9 * MIB
