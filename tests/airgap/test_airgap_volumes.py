"""Split volumes: round trips, random access, and every kind of damage named."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from snaparc_testlib import dead_owner_tags

from snaparc.airgap.volumes import (
    FAT32_MAX_FILE_SIZE,
    MissingVolumeError,
    SplitWriter,
    VolumeDigestError,
    VolumeIndexError,
    VolumeSizeError,
    is_split_archive,
    open_volumes,
    parse_size,
    read_index,
)
from snaparc.errors import (
    DestinationError,
    DiskFullError,
    IntegrityError,
    UnsupportedVersionError,
    UsageError,
)
from snaparc.publish import AppendFile, owner_tag, remove_owned


def _write(out: Path, data: bytes, volume_size: int, chunk: int = 1000) -> None:
    with SplitWriter(out, volume_size, min_volume_size=1) as w:
        for i in range(0, len(data), chunk):
            assert w.write(data[i : i + chunk]) == len(data[i : i + chunk])


@pytest.fixture
def split(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(10_000)
    out = tmp_path / "OUT.dlmsnap"
    _write(out, data, 3000, chunk=777)
    return out, data


def _read_all(path: Path, read_size: int = 4096) -> bytes:
    with open_volumes(path) as r:
        return b"".join(iter(lambda: r.read(read_size), b""))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1000", 1000),
        ("512K", 512 << 10),
        ("700M", 700 << 20),
        ("4G", 4 << 30),
        ("4g", 4 << 30),
        ("2GiB", 2 << 30),
        ("1T", 1 << 40),
        ("fat32", FAT32_MAX_FILE_SIZE),
    ],
)
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "0", "-1", "1.5G", "4X", "G", "4 G B", "lots"])
def test_parse_size_refuses_garbage(text: str) -> None:
    with pytest.raises(UsageError):
        parse_size(text)


def test_volume_layout_and_index(split: tuple[Path, bytes]) -> None:
    out, data = split
    names = sorted(p.name for p in out.parent.iterdir())
    assert names == [
        "OUT.dlmsnap.001",
        "OUT.dlmsnap.002",
        "OUT.dlmsnap.003",
        "OUT.dlmsnap.004",
        "OUT.dlmsnap.index.json",
    ]
    doc = json.loads((out.parent / "OUT.dlmsnap.index.json").read_text())
    assert doc["format"] == "snaparc-split-volumes"
    assert doc["version"] == 1
    assert (doc["total_size"], doc["volume_size"]) == (10_000, 3000)
    assert [v["size"] for v in doc["volumes"]] == [3000, 3000, 3000, 1000]
    for i, v in enumerate(doc["volumes"]):
        chunk = data[i * 3000 : (i + 1) * 3000]
        assert v["sha256"] == hashlib.sha256(chunk).hexdigest()
        assert (out.parent / v["name"]).read_bytes() == chunk


def test_open_by_first_volume_index_or_base_name(split: tuple[Path, bytes]) -> None:
    out, data = split
    for p in (
        out,
        out.with_name("OUT.dlmsnap.001"),
        out.with_name("OUT.dlmsnap.003"),
        out.with_name("OUT.dlmsnap.index.json"),
    ):
        assert is_split_archive(p)
        assert _read_all(p) == data
    assert not is_split_archive(out.with_name("other.dlmsnap"))
    with pytest.raises(UsageError):
        open_volumes(out.with_name("other.dlmsnap"))


def test_buffered_reader_and_full_verification(split: tuple[Path, bytes]) -> None:
    out, data = split
    raw = open_volumes(out)
    with io.BufferedReader(raw, buffer_size=1024) as f:
        assert f.read() == data
    assert raw.fully_verified
    assert raw.verified_volumes == [f"OUT.dlmsnap.{i:03d}" for i in range(1, 5)]


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=5000),
    volume_size=st.integers(1, 1200),
    write_size=st.integers(1, 2000),
    read_size=st.integers(1, 2500),
)
def test_round_trip(data: bytes, volume_size: int, write_size: int, read_size: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "a.dlmsnap"
        _write(out, data, volume_size, chunk=write_size)
        index = read_index(Path(d) / "a.dlmsnap.index.json")
        assert index.total_size == len(data)
        assert all(v.size <= volume_size for v in index.volumes)
        assert len(index.volumes) == max(1, -(-len(data) // volume_size))
        with open_volumes(out) as r:
            got = b"".join(iter(lambda: r.read(read_size), b""))
            assert got == data
            assert r.fully_verified or not data


@settings(max_examples=40, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=4000),
    volume_size=st.integers(1, 900),
    reads=st.lists(
        st.tuples(st.integers(0, 4500), st.integers(0, 1500), st.sampled_from([0, 1, 2])),
        max_size=15,
    ),
)
def test_random_access(data: bytes, volume_size: int, reads: list[tuple[int, int, int]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "a.dlmsnap"
        _write(out, data, volume_size)
        with open_volumes(out) as r:
            assert r.seekable()
            pos = 0
            for offset, n, whence in reads:
                if whence == 1:
                    offset -= pos
                elif whence == 2:
                    offset -= len(data)
                pos = r.seek(offset, whence)
                assert pos == r.tell()
                assert r.read(n) == data[pos : pos + n]
                pos = r.tell()
            # A seek back to 0 followed by a full read checks every digest again.
            r.seek(0)
            assert r.read() == data
            assert r.fully_verified


def test_missing_volume_is_named(split: tuple[Path, bytes]) -> None:
    out, _ = split
    out.with_name("OUT.dlmsnap.003").unlink()
    with pytest.raises(MissingVolumeError, match=r"OUT\.dlmsnap\.003") as exc:
        open_volumes(out.with_name("OUT.dlmsnap.001"))
    assert exc.value.volume == "OUT.dlmsnap.003"
    assert exc.value.exit_code == 1


def test_volume_removed_after_open_is_named(split: tuple[Path, bytes]) -> None:
    out, data = split
    with open_volumes(out) as r:
        assert r.read(100) == data[:100]
        out.with_name("OUT.dlmsnap.004").unlink()
        with pytest.raises(MissingVolumeError) as exc:
            r.read()
        assert exc.value.volume == "OUT.dlmsnap.004"


def test_missing_index_is_named(split: tuple[Path, bytes]) -> None:
    out, _ = split
    out.with_name("OUT.dlmsnap.index.json").unlink()
    with pytest.raises(MissingVolumeError, match="index"):
        open_volumes(out.with_name("OUT.dlmsnap.001"))


@pytest.mark.parametrize("new_size", [2999, 0, 3001])
def test_wrong_size_volume_is_named(split: tuple[Path, bytes], new_size: int) -> None:
    out, _ = split
    vol = out.with_name("OUT.dlmsnap.002")
    with open(vol, "r+b") as f:
        f.truncate(new_size)
    with pytest.raises(VolumeSizeError, match=r"OUT\.dlmsnap\.002") as exc:
        open_volumes(out)
    assert exc.value.volume == "OUT.dlmsnap.002"


def test_volume_truncated_while_reading_is_named(split: tuple[Path, bytes]) -> None:
    out, _ = split
    with open_volumes(out) as r:
        r.read(10)
        with open(out.with_name("OUT.dlmsnap.002"), "r+b") as f:
            f.truncate(100)
        with pytest.raises(VolumeSizeError) as exc:
            r.read()
        assert exc.value.volume == "OUT.dlmsnap.002"


def test_corrupt_volume_is_named_before_its_last_byte_is_returned(
    split: tuple[Path, bytes],
) -> None:
    out, data = split
    vol = out.with_name("OUT.dlmsnap.002")
    raw = bytearray(vol.read_bytes())
    raw[1234] ^= 0x40
    vol.write_bytes(raw)
    with open_volumes(out) as r:
        assert r.read(3000) == data[:3000]  # volume 1 is fine
        assert r.read(2999) != data[3000:5999]  # the damage, not yet detectable
        with pytest.raises(VolumeDigestError, match=r"OUT\.dlmsnap\.002") as exc:
            r.read(1)
        assert exc.value.volume == "OUT.dlmsnap.002"
        # Retrying (or seeking into the bad volume) cannot launder the damage.
        with pytest.raises(VolumeDigestError):
            r.read(1)
        r.seek(4000)
        with pytest.raises(VolumeDigestError):
            r.read(1)
        r.seek(6000)
        assert r.read() == data[6000:]
    with pytest.raises(VolumeDigestError):
        _read_all(out, read_size=1 << 20)


def test_random_access_skips_the_digest_of_partly_read_volumes(
    split: tuple[Path, bytes],
) -> None:
    out, data = split
    vol = out.with_name("OUT.dlmsnap.002")
    raw = bytearray(vol.read_bytes())
    raw[0] ^= 1
    vol.write_bytes(raw)
    with open_volumes(out) as r:
        r.seek(3001)  # documented: a volume not read from its start is not checked
        assert r.read(2999) == data[3001:6000]
        assert r.verified_volumes == []
        r.seek(0)
        with pytest.raises(VolumeDigestError):
            r.read()


def test_index_tampering(split: tuple[Path, bytes]) -> None:
    out, _ = split
    index = out.with_name("OUT.dlmsnap.index.json")
    original = index.read_text()
    doc = json.loads(original)

    doc["volumes"][1]["sha256"] = "0" * 64
    index.write_text(json.dumps(doc))
    with pytest.raises(VolumeDigestError) as exc:
        _read_all(out)
    assert exc.value.volume == "OUT.dlmsnap.002"

    def broken(mutate: object) -> None:
        d = json.loads(original)
        mutate(d)  # type: ignore[operator]
        index.write_text(json.dumps(d))
        with pytest.raises(VolumeIndexError):
            open_volumes(out)

    broken(lambda d: d["volumes"][3].update(size=999))  # sizes no longer add up
    broken(lambda d: d.update(total_size=1))
    broken(lambda d: d["volumes"][0].update(name="../escape"))
    broken(lambda d: d["volumes"][0].update(name="/etc/passwd"))
    broken(lambda d: d["volumes"].pop())
    broken(lambda d: d["volumes"].clear())
    broken(lambda d: d["volumes"][0].update(sha256="ABC"))
    broken(lambda d: d["volumes"][0].update(extra=1))
    broken(lambda d: d.update(format="zip"))
    broken(lambda d: d.update(version="1"))
    broken(lambda d: d.update(volume_size=True))
    broken(lambda d: d["volumes"].__setitem__(1, dict(d["volumes"][0])))  # duplicate name
    index.write_text("{not json")
    with pytest.raises(VolumeIndexError):
        open_volumes(out)
    index.write_text(original.replace('"version": 1', '"version": 2'))
    with pytest.raises(UnsupportedVersionError):
        open_volumes(out)


def test_all_volume_errors_are_integrity_errors() -> None:
    for cls in (MissingVolumeError, VolumeSizeError, VolumeDigestError, VolumeIndexError):
        assert issubclass(cls, IntegrityError)


def test_abort_leaves_nothing(tmp_path: Path) -> None:
    w = SplitWriter(tmp_path / "a.dlmsnap", 100, min_volume_size=1)
    w.write(os.urandom(450))
    assert list(tmp_path.iterdir())  # temporaries exist while writing
    w.abort()
    w.abort()  # idempotent
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError):
        w.write(b"x")


def test_exception_inside_with_leaves_nothing(tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError),
        SplitWriter(tmp_path / "a.dlmsnap", 64, min_volume_size=1) as w,
    ):
        w.write(os.urandom(1000))
        raise RuntimeError("pack failed")
    assert list(tmp_path.iterdir()) == []


def test_abandoned_writer_is_not_published(tmp_path: Path) -> None:
    w = SplitWriter(tmp_path / "a.dlmsnap", 64, min_volume_size=1)
    w.write(os.urandom(1000))
    del w
    assert list(tmp_path.iterdir()) == []


def test_nothing_is_visible_before_close(tmp_path: Path) -> None:
    with SplitWriter(tmp_path / "a.dlmsnap", 64, min_volume_size=1) as w:
        w.write(os.urandom(200))
        assert not is_split_archive(tmp_path / "a.dlmsnap")
        assert all(p.name.startswith(".") for p in tmp_path.iterdir())
        assert w.tell() == 200
    assert is_split_archive(tmp_path / "a.dlmsnap")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_empty_archive_has_one_empty_volume(tmp_path: Path) -> None:
    with SplitWriter(tmp_path / "a.dlmsnap", 64, min_volume_size=1):
        pass
    assert (tmp_path / "a.dlmsnap.001").read_bytes() == b""
    assert _read_all(tmp_path / "a.dlmsnap") == b""


def test_exact_multiple_makes_no_empty_trailing_volume(tmp_path: Path) -> None:
    _write(tmp_path / "a.dlmsnap", b"x" * 128, 64)
    assert not (tmp_path / "a.dlmsnap.003").exists()
    assert len(read_index(tmp_path / "a.dlmsnap.index.json").volumes) == 2


def test_small_volumes_refused_without_the_test_keyword(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="minimum"):
        SplitWriter(tmp_path / "a.dlmsnap", (1 << 20) - 1)
    SplitWriter(tmp_path / "a.dlmsnap", 1 << 20).abort()
    with pytest.raises(UsageError):
        SplitWriter(tmp_path / "a.dlmsnap", 0, min_volume_size=0)


def test_existing_set_is_not_overwritten(split: tuple[Path, bytes]) -> None:
    out, data = split
    with pytest.raises(DestinationError):
        SplitWriter(out, 3000, min_volume_size=1)
    assert _read_all(out) == data


def test_memoryview_and_bytearray_writes(tmp_path: Path) -> None:
    data = os.urandom(1000)
    with SplitWriter(tmp_path / "a.dlmsnap", 300, min_volume_size=1) as w:
        w.write(bytearray(data[:500]))
        w.write(memoryview(data)[500:])
    assert _read_all(tmp_path / "a.dlmsnap") == data


def test_interrupt_mid_volume_leaves_only_claimed_temps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C mid-write that no abort() sees: every volume written so far sits
    under a PID@HOST temp name and is claimed, so the CLI's cleanup
    (`remove_owned`) leaves the directory exactly as it was."""
    (tmp_path / "keep.txt").write_bytes(b"previous state")
    w = SplitWriter(tmp_path / "a.dlmsnap", 64, min_volume_size=1)
    w.write(os.urandom(200))  # volumes 1-3 full, volume 4 half written

    def interrupted(self: AppendFile, b: object, /) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(AppendFile, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        w.write(os.urandom(100))
    temps = sorted(p.name for p in tmp_path.iterdir() if p.name != "keep.txt")
    tag = re.escape(owner_tag())
    assert len(temps) == 4
    for n, name in enumerate(temps, start=1):
        assert re.fullmatch(rf"\.a\.dlmsnap\.00{n}\.snaparc-tmp-{tag}-[0-9a-f]{{8}}", name), name
    removed = [p.name for p in remove_owned() if p.parent == tmp_path]
    assert sorted(removed) == temps
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
    assert (tmp_path / "keep.txt").read_bytes() == b"previous state"
    w.abort()


def test_next_writer_removes_dead_temp_volumes_of_this_host_only(tmp_path: Path) -> None:
    """Temp volumes a SIGKILL left behind go when the next split writer runs
    there, whatever their number; another machine's (shared filesystem) stay."""
    ours, foreign = dead_owner_tags()
    stale = [tmp_path / f".a.dlmsnap.{n:03d}.snaparc-tmp-{ours}-deadbeef" for n in (1, 7)]
    for p in stale:
        p.write_bytes(b"half a volume")
    stale_index = tmp_path / f".a.dlmsnap.index.json.snaparc-tmp-{ours}-deadbeef"
    stale_index.write_bytes(b"{")
    far = tmp_path / f".a.dlmsnap.002.snaparc-tmp-{foreign}-deadbeef"
    far.write_bytes(b"another machine is writing this")
    other = tmp_path / f".b.dlmsnap.001.snaparc-tmp-{ours}-deadbeef"
    other.write_bytes(b"another archive's")
    data = os.urandom(100)
    _write(tmp_path / "a.dlmsnap", data, 64)
    assert _read_all(tmp_path / "a.dlmsnap") == data
    assert not any(p.exists() for p in [*stale, stale_index])
    assert far.read_bytes() == b"another machine is writing this"
    assert other.read_bytes() == b"another archive's"


@pytest.mark.parametrize("late", ["a.dlmsnap.002", "a.dlmsnap.index.json"])
def test_a_volume_or_index_that_appears_meanwhile_is_not_replaced(
    tmp_path: Path, late: str
) -> None:
    """Another writer creates a name after the constructor's check: close()
    refuses it with DestinationError (exit 5), keeps it, and removes the rest."""
    w = SplitWriter(tmp_path / "a.dlmsnap", 64, min_volume_size=1)
    w.write(os.urandom(100))
    (tmp_path / late).write_bytes(b"the other writer's")
    with pytest.raises(DestinationError) as exc:
        w.close()
    assert exc.value.exit_code == 5
    assert _entries(tmp_path) == [late]
    assert (tmp_path / late).read_bytes() == b"the other writer's"


def test_disk_full_while_writing_the_index_is_exit_6(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = SplitWriter(tmp_path / "a.dlmsnap", 64, min_volume_size=1)
    w.write(os.urandom(100))
    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        if b"snaparc-split-volumes" in bytes(data):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(DiskFullError):
        w.close()
    assert _entries(tmp_path) == []


def _entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())
