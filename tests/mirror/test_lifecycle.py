"""mirror rm, gc, check and ls sizes, on a directory mirror and on S3 (moto)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from snaparc_testlib import push_file

import snaparc.api as api
from snaparc.cli import main
from snaparc.errors import RemoteNotFoundError
from snaparc.mirror.connect import open_store
from snaparc.mirror.gc import GcRefusedError, collect_garbage
from snaparc.mirror.inventory import part_keys, take_inventory
from snaparc.mirror.layout import decode_record, record_key
from snaparc.mirror.remove import ArchiveInUseError, ArchiveRemovedError
from snaparc.mirror.store import Store
from snaparc.mirror.url import parse_url

from .conftest import pack, write_tree


def _store(url: str) -> Store:
    return open_store(parse_url(url), create=True)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    code, out, err = _run(capsys, *argv, "--json")
    assert "Traceback" not in err, err
    return code, json.loads(out)


@pytest.fixture
def two_versions(
    tmp_path: Path, v1_files: dict[str, bytes], archive_v1: Path
) -> tuple[Path, Path, dict[str, bytes]]:
    v2_files = dict(v1_files)
    v2_files[sorted(v2_files)[0]] = b"changed " * 1000
    v2_files["new/extra.bin"] = b"\x01\x02" * 3000
    archive_v2 = pack(write_tree(tmp_path / "src_v2", v2_files), tmp_path / "v2.dlmsnap")
    return archive_v1, archive_v2, v2_files


def _parts(store: Store, archive_id: str) -> set[str]:
    rec = decode_record(store.get(record_key(archive_id)), archive_id=archive_id)
    return {k for k, _ in part_keys(rec)}


# --- rm ------------------------------------------------------------------------------


def test_rm_ref_drops_only_the_ref(
    mirror_url: str, archive_v1: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _store(mirror_url)
    r = push_file(archive_v1, store, ref="a")
    store.put("refs/b", f"{r.archive_id}\n".encode(), mode="overwrite")
    code, doc = _json(capsys, "mirror", "rm", f"{mirror_url}:a")
    assert code == 0 and doc["ref"] == "a" and doc["archive_id"] == r.archive_id
    assert store.head("refs/a") is None and store.head("refs/b") is not None
    assert store.head(record_key(r.archive_id)) is not None
    code, _, err = _run(capsys, "mirror", "rm", f"{mirror_url}:a")
    assert code == 10 and "'a' not found" in err


def test_rm_record_refused_while_refs_name_it_unless_force(
    mirror_url: str, archive_v1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _store(mirror_url)
    r = push_file(archive_v1, store, ref="main")
    store.put("refs/prod", f"{r.archive_id}\n".encode(), mode="overwrite")
    before = {i.key for i in store.list("")}
    with pytest.raises(ArchiveInUseError) as info:
        api.mirror_rm(f"{mirror_url}@{r.archive_id}")
    assert info.value.refs == ("main", "prod") and info.value.exit_code == 2
    code, _, err = _run(capsys, "mirror", "rm", f"{mirror_url}@{r.archive_id}")
    assert code == 2 and "main, prod" in err and "--force" in err
    assert {i.key for i in store.list("")} == before  # nothing touched

    code, doc = _json(capsys, "mirror", "rm", f"{mirror_url}@{r.archive_id}", "--force")
    assert code == 0 and doc["archive_removed"] and doc["refs_removed"] == ["main", "prod"]
    left = {i.key for i in store.list("")}
    assert not any(k.startswith(("refs/", "archives/", "locks/")) for k in left)
    assert left == {k for k in before if k.startswith(("blobs/", "manifests/"))}  # gc's job
    code, _, err = _run(capsys, "pull", f"{mirror_url}@{r.archive_id}", "-o", str(tmp_path / "x"))
    assert code == 10 and not (tmp_path / "x").exists()
    code, _, _ = _run(capsys, "mirror", "rm", f"{mirror_url}@{r.archive_id}")
    assert code == 10


# --- gc ------------------------------------------------------------------------------


def test_gc_deletes_exactly_what_no_record_reaches(
    mirror_url: str,
    two_versions: tuple[Path, Path, dict[str, bytes]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    v1, v2, _ = two_versions
    store = _store(mirror_url)
    r1 = push_file(v1, store, ref="v1")
    r2 = push_file(v2, store, ref="v2")
    only_v1 = _parts(store, r1.archive_id) - _parts(store, r2.archive_id)
    assert only_v1 and any(k.startswith("manifests/") for k in only_v1)

    code, doc = _json(capsys, "mirror", "gc", mirror_url)
    assert code == 0 and doc["deleted_objects"] == 0  # everything is reachable
    assert _run(capsys, "mirror", "rm", f"{mirror_url}@{r1.archive_id}", "--force")[0] == 0
    before = {i.key: i.size for i in store.list("")}
    code, doc = _json(capsys, "mirror", "gc", mirror_url, "--dry-run")
    assert code == 0 and doc["dry_run"] and set(doc["deleted"]) == only_v1  # type: ignore[arg-type]
    assert {i.key: i.size for i in store.list("")} == before
    code, doc = _json(capsys, "mirror", "gc", mirror_url)
    assert code == 0 and set(doc["deleted"]) == only_v1  # type: ignore[arg-type]
    assert doc["deleted_bytes"] == sum(before[k] for k in only_v1)
    after = {i.key: i.size for i in store.list("")}
    assert after == {k: n for k, n in before.items() if k not in only_v1}  # no lock left either
    if not mirror_url.startswith("s3://"):  # no empty per-blob directories are left
        root = Path(mirror_url)
        assert all(any(d.iterdir()) for d in (root / "blobs").iterdir())
    out = tmp_path / "v2.out"
    api.pull(f"{mirror_url}:v2", out)
    assert out.read_bytes() == v2.read_bytes()
    code, doc = _json(capsys, "mirror", "check", mirror_url, "--read-data")
    assert code == 0 and doc["ok"] and doc["orphans"] == 0 and doc["archives_verified"] == 1
    assert _json(capsys, "mirror", "gc", mirror_url)[1]["deleted_objects"] == 0
    # the removed archive can be pushed again and pulls byte-identical
    push_file(v1, store, ref="v1")
    api.pull(f"{mirror_url}:v1", tmp_path / "v1.out")
    assert (tmp_path / "v1.out").read_bytes() == v1.read_bytes()


def test_gc_reclaims_the_parts_of_an_interrupted_push(mirror_url: str, archive_v1: Path) -> None:
    store = _store(mirror_url)
    r = push_file(archive_v1, store)  # then as if it died before its record:
    parts = _parts(store, r.archive_id)
    store.delete(record_key(r.archive_id))
    report = collect_garbage(store)
    assert set(report.deleted) == parts and report.archives == 0
    assert list(store.list("")) == []


def test_gc_refuses_while_a_record_cannot_be_read(
    mirror_url: str, archive_v1: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _store(mirror_url)
    r = push_file(archive_v1, store, ref="main")
    key = record_key(r.archive_id)
    store.put(key, store.get(key)[:-20], mode="overwrite")
    store.put("blobs/" + "a" * 64 + "/" + "b" * 64, b"orphan", mode="create")
    before = {i.key for i in store.list("")}
    with pytest.raises(GcRefusedError) as info:
        collect_garbage(store)
    assert info.value.archives == (r.archive_id,)
    code, _, err = _run(capsys, "mirror", "gc", mirror_url)
    assert code == 1 and r.archive_id in err and "deleted nothing" in err
    assert {i.key for i in store.list("")} == before


@pytest.mark.parametrize("command", ["pull", "verify", "unpack"])
def test_a_read_of_an_archive_removed_and_collected_midway_fails_cleanly(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pull (or any reading command) that read the record, then lost its
    parts to rm + gc: exit 10, no output, never wrong bytes."""
    import snaparc.mirror.connect as connect_mod
    from snaparc.mirror.remove import remove_archive

    big = {f"f{i}.bin": bytes([i]) * 9_000_000 for i in range(3)}  # several parts
    archive = pack(write_tree(tmp_path / "src", big), tmp_path / "big.dlmsnap")
    url = str(tmp_path / "mirror")
    inner = _store(url)
    r = push_file(archive, inner, ref="main")
    fired: list[str] = []
    race_lock = threading.Lock()

    class Racing:
        def __init__(self, store: Store) -> None:
            self.inner = store

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

        def _race(self, key: str) -> None:
            # The first read of a blob part removes and collects the archive;
            # every read (in any fetch thread) waits for that to be done.
            with race_lock:
                if key.startswith("blobs/") and not fired:
                    fired.append(key)
                    remove_archive(self.inner, r.archive_id, force=True)
                    collect_garbage(self.inner)

        def get(self, key: str) -> bytes:
            self._race(key)
            return self.inner.get(key)

        def get_range(self, key: str, start: int, end: int) -> bytes:
            self._race(key)
            return self.inner.get_range(key, start, end)  # mirror reads are ranged

    import snaparc.mirror.pull as pull_mod

    monkeypatch.setattr(connect_mod, "open_store", lambda *a, **k: Racing(inner))
    monkeypatch.setattr(pull_mod, "open_store", lambda *a, **k: Racing(inner))
    out = tmp_path / "out.dlmsnap"
    dest = tmp_path / "tree"
    calls = {
        "pull": lambda: api.pull(f"{url}:main", out, jobs=1),
        "verify": lambda: api.verify(f"{url}@{r.archive_id}"),
        "unpack": lambda: api.unpack(f"{url}@{r.archive_id}", dest),
    }
    with pytest.raises(ArchiveRemovedError) as info:
        calls[command]()
    assert isinstance(info.value, RemoteNotFoundError) and info.value.exit_code == 10
    assert fired and not out.exists() and not dest.exists()
    assert [p.name for p in tmp_path.iterdir() if "snaparc-tmp" in p.name] == []


# --- check -----------------------------------------------------------------------------


def _damage_setup(mirror_url: str, v1: Path, v2: Path) -> tuple[Store, str, str]:
    store = _store(mirror_url)
    r1 = push_file(v1, store, ref="v1")
    r2 = push_file(v2, store, ref="v2")
    return store, r1.archive_id, r2.archive_id


def test_check_of_a_healthy_mirror(
    mirror_url: str,
    two_versions: tuple[Path, Path, dict[str, bytes]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, _, _ = _damage_setup(mirror_url, *two_versions[:2])
    store.put("junk/file", b"x", mode="create")
    code, doc = _json(capsys, "mirror", "check", mirror_url, "--read-data")
    assert code == 0 and doc["ok"] and doc["archives"] == 2 and doc["refs"] == 2
    assert doc["archives_verified"] == 2 and doc["unexpected_keys"] == ["junk/file"]
    assert doc["parts_read"] == len(list(store.list("blobs"))) + len(list(store.list("manifests")))
    code, out, err = _run(capsys, "mirror", "check", mirror_url)
    assert code == 0 and "mirror is healthy" in out and "junk/file" in err


@pytest.mark.parametrize("damage", ["flip", "delete", "truncate-record", "dangling-ref"])
def test_check_finds_each_kind_of_damage(
    damage: str,
    mirror_url: str,
    two_versions: tuple[Path, Path, dict[str, bytes]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    v1, v2, _ = two_versions
    store, a1, a2 = _damage_setup(mirror_url, v1, v2)
    shared = sorted(k for k in _parts(store, a1) & _parts(store, a2) if k.startswith("blobs/"))[0]
    if damage == "flip":
        data = bytearray(store.get(shared))
        data[len(data) // 2] ^= 0x01
        store.put(shared, bytes(data), mode="overwrite")
        key, archives, structural = shared, [a1, a2], False
    elif damage == "delete":
        store.delete(shared)
        key, archives, structural = shared, [a1, a2], True
    elif damage == "truncate-record":
        key = record_key(a1)
        store.put(key, store.get(key)[:-7], mode="overwrite")
        archives, structural = [a1], True
    else:
        key = "refs/ghost"
        store.put(key, ("f" * 64 + "\n").encode(), mode="overwrite")
        archives, structural = [], True

    code, doc = _json(capsys, "mirror", "check", mirror_url)
    if structural:
        assert code == 1 and not doc["ok"]
        assert key in doc["damaged_objects"]  # type: ignore[operator]
        assert doc["damaged_archives"] == sorted(archives)
    else:
        assert code == 0 and doc["ok"]  # same size: only the bytes can tell
    code, doc = _json(capsys, "mirror", "check", mirror_url, "--read-data")
    assert code == 1 and not doc["ok"] and key in doc["damaged_objects"]  # type: ignore[operator]
    assert doc["damaged_archives"] == sorted(archives)
    code, _, err = _run(capsys, "mirror", "check", mirror_url, "--read-data")
    assert code == 1 and key in err and all(a in err for a in archives)


def test_check_read_data_catches_a_record_that_rebuilds_wrong_content(
    tmp_path: Path, archive_v1: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Parts whose sha256 match their keys, but a record naming another blob's
    part: only the archive reader (blob digests, identity) can tell."""
    url = str(tmp_path / "mirror")
    store = _store(url)
    r = push_file(archive_v1, store, ref="main")
    key = record_key(r.archive_id)
    rec = json.loads(store.get(key))
    small = sorted(rec["blobs"], key=lambda b: b["size"])
    a, b = small[-1], small[-2]
    assert len(a["parts"]) == len(b["parts"]) == 1
    a["parts"], b["parts"] = b["parts"], a["parts"]  # each now lists the other's part
    # keep the record valid: sizes must match frame counts; copy the parts under both keys
    for blob in (a, b):
        part = blob["parts"][0]
        src = next(k for k in take_inventory(store).parts if k.endswith(part["sha256"]))
        dst = f"blobs/{blob['sha256']}/{part['sha256']}"
        if dst != src:
            store.put(dst, store.get(src), mode="overwrite")
    data = json.dumps(rec, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    store.put(key, data, mode="overwrite")
    code, doc = _json(capsys, "mirror", "check", url)
    if code == 1:  # the record no longer decodes (its sizes disagree): found structurally
        assert r.archive_id in doc["damaged_archives"]  # type: ignore[operator]
        return
    code, doc = _json(capsys, "mirror", "check", url, "--read-data")
    assert code == 1 and doc["damaged_archives"] == [r.archive_id]


# --- ls ------------------------------------------------------------------------------------


def test_ls_shows_sizes_shared_bytes_and_logical_vs_stored(
    mirror_url: str,
    two_versions: tuple[Path, Path, dict[str, bytes]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    v1, v2, _ = two_versions
    store, a1, a2 = _damage_setup(mirror_url, v1, v2)
    code, doc = _json(capsys, "mirror", "ls", mirror_url)
    assert code == 0
    sizes = doc["sizes"]
    assert isinstance(sizes, dict)
    assert sizes[a1]["size"] == v1.stat().st_size and sizes[a2]["size"] == v2.stat().st_size
    shared = _parts(store, a1) & _parts(store, a2)
    inv = take_inventory(store)
    assert (
        sizes[a1]["shared_bytes"] == sizes[a2]["shared_bytes"] == sum(inv.parts[k] for k in shared)
    )
    assert doc["logical_bytes"] == v1.stat().st_size + v2.stat().st_size
    assert doc["stored_bytes"] == sum(i.size for i in store.list(""))
    assert doc["stored_bytes"] < doc["logical_bytes"]  # type: ignore[operator]
    code, out, _ = _run(capsys, "mirror", "ls", mirror_url)
    assert code == 0 and "shares" in out and "logical" in out and "stored" in out
