"""gc beside pushes in other processes, and gc killed -9 at random points.

Several processes push new versions, remove old records and push them again
(so gc deletes parts that a re-push then needs) while gc runs over and over;
afterwards `mirror check --read-data` passes and every ref pulls
byte-identical. Short leases (about a second) keep it to seconds.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from snaparc_testlib import push_file

import snaparc.api as api
from snaparc.mirror.connect import open_store
from snaparc.mirror.gc import GcReport, collect_garbage
from snaparc.mirror.lock import LockTiming, MirrorBusyError, lock_kind
from snaparc.mirror.store import PutMode, Store
from snaparc.mirror.url import parse_url

from .conftest import pack, write_tree

WORKER = Path(__file__).with_name("lifecycle_worker.py")
LEASE = "0.6"
PUSHERS = 3
VERSIONS = 3


def _archives(
    tmp_path: Path, pushers: int = PUSHERS, versions: int = VERSIONS
) -> dict[str, list[Path]]:
    """Per pusher, VERSIONS archives; blobs shared within and across pushers."""
    rng = random.Random(7)
    common = {f"common/{i}.bin": rng.randbytes(20_000) for i in range(3)}
    out: dict[str, list[Path]] = {}
    for k in range(pushers):
        name = f"p{k}"
        out[name] = []
        for v in range(versions):
            files = dict(common)
            files[f"{name}/base.bin"] = bytes([k]) * 30_000  # shared by a pusher's versions
            files[f"{name}/v.bin"] = rng.randbytes(25_000 + v)  # new in every version
            src = write_tree(tmp_path / f"src-{name}-{v}", files)
            out[name].append(pack(src, tmp_path / f"{name}-{v}.dlmsnap"))
    return out


def _worker(*args: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    tests = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), tests) if p)
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def _finish(proc: subprocess.Popen[bytes]) -> dict[str, object]:
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err.decode()[-3000:]
    doc: dict[str, object] = json.loads(out.decode().strip().splitlines()[-1])
    return doc


def _assert_consistent(url: str, archives: dict[str, list[Path]], tmp_path: Path) -> None:
    checked = api.mirror_check(url, read_data=True, threads=1)
    assert checked.ok, [p.message for p in checked.report.problems]
    listed = api.mirror_ls(url)
    assert set(listed.listing.refs) == set(archives)
    for name, files in archives.items():
        out = tmp_path / f"pulled-{name}.dlmsnap"
        api.pull(f"{url}:{name}", out, force=True, threads=1)
        assert out.read_bytes() == files[-1].read_bytes()


def _push_all(url: str, archives: dict[str, list[Path]]) -> list[subprocess.Popen[bytes]]:
    return [_worker("push", url, LEASE, name, *map(str, files)) for name, files in archives.items()]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_pushes_and_repushes_while_gc_runs_repeatedly(mirror_url: str, tmp_path: Path) -> None:
    archives = _archives(tmp_path)
    open_store(parse_url(mirror_url), create=True)
    pushers = _push_all(mirror_url, archives)
    gcs = [_worker("gc", mirror_url, LEASE, "10", "0.002")]
    results = [_finish(p) for p in pushers]
    gc_results = [_finish(g) for g in gcs]
    assert all(len(r["ids"]) == VERSIONS for r in results)  # type: ignore[arg-type]
    _assert_consistent(mirror_url, archives, tmp_path)
    final = collect_garbage(open_store(parse_url(mirror_url)))
    deleted = sum(int(g["deleted"]) for g in gc_results) + len(final.deleted)  # type: ignore[call-overload]
    assert deleted > 0  # the gcs did have work: removed records left parts behind
    assert api.mirror_check(mirror_url).ok


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_gc_killed_at_random_points_leaves_a_consistent_mirror(
    mirror_url: str, tmp_path: Path
) -> None:
    archives = _archives(tmp_path, pushers=2, versions=3)
    open_store(parse_url(mirror_url), create=True)
    pushers = _push_all(mirror_url, archives)
    rng = random.Random(11)
    kills = 0
    while any(p.poll() is None for p in pushers) or kills < 2:
        gc = _worker("gc", mirror_url, LEASE, "50", "0.01")
        time.sleep(rng.uniform(0.2, 0.7))
        if gc.poll() is None:
            gc.send_signal(signal.SIGKILL)
            kills += 1
        gc.communicate(timeout=60)
    for p in pushers:
        _finish(p)
    store = open_store(parse_url(mirror_url))
    # consistent as the killed gcs left it: every record whole, every ref pulls
    _assert_consistent(mirror_url, archives, tmp_path)
    final = collect_garbage(store)  # waits out a killed gc's lock, finishes the job
    assert collect_garbage(store, dry_run=True).deleted == ()
    assert not final.dry_run
    # at most the lock of the last gc killed is left; it is stale, and the next
    # push or rm waits out its lease and removes it
    assert all(lock_kind(i.key) == "exclusive" for i in store.list("locks"))
    api.mirror_rm(f"{mirror_url}:p0", lease=float(LEASE))
    del archives["p0"]
    _assert_consistent(mirror_url, archives, tmp_path)


# --- the adversarial interleavings, made deterministic in one process -------------------

# long enough that a loaded machine never loses a lock here (these tests never wait
# for one to go stale)
FAST = LockTiming(lease=3.0, wait=30)


class _PauseBefore:
    """A store that stops the first put of a key starting with `prefix` until
    `go` is set (`reached` tells that it got there)."""

    def __init__(self, inner: Store, prefix: str) -> None:
        self.inner, self.prefix = inner, prefix
        self.reached, self.go = threading.Event(), threading.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def put(self, key: str, data: bytes, *, mode: PutMode) -> None:
        if key.startswith(self.prefix) and not self.reached.is_set():
            self.reached.set()
            assert self.go.wait(30)
        self.inner.put(key, data, mode=mode)


def test_parts_written_before_gc_lists_whose_record_lands_later_are_kept(
    mirror_url: str, archive_v1: Path, tmp_path: Path
) -> None:
    store = open_store(parse_url(mirror_url), create=True)
    paused = _PauseBefore(store, "archives/")
    pushed: list[object] = []
    t = threading.Thread(
        target=lambda: pushed.append(push_file(archive_v1, paused, ref="main", lock_timing=FAST))
    )
    t.start()
    assert paused.reached.wait(30)  # every part is written; the record is not
    with pytest.raises(MirrorBusyError):  # gc waits for the push instead of sweeping
        collect_garbage(store, lock_timing=LockTiming(lease=3.0, wait=0.5))
    assert {i.key for i in store.list("blobs")}  # nothing deleted
    gc_done: list[GcReport] = []
    g = threading.Thread(target=lambda: gc_done.append(collect_garbage(store, lock_timing=FAST)))
    g.start()
    time.sleep(0.3)
    assert not gc_done  # still waiting for the push
    paused.go.set()
    t.join(30)
    g.join(30)
    assert pushed and gc_done and gc_done[0].deleted == ()
    out = tmp_path / "out.dlmsnap"
    api.pull(f"{mirror_url}:main", out)
    assert out.read_bytes() == archive_v1.read_bytes()


class _PauseDeletes:
    """A store whose deletes of parts wait until `go` is set."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.started, self.go = threading.Event(), threading.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def delete(self, key: str) -> None:
        if key.startswith(("blobs/", "manifests/")):
            self.started.set()
            assert self.go.wait(30)
        self.inner.delete(key)


def test_a_repush_never_skips_a_part_gc_is_deleting(
    mirror_url: str, archive_v1: Path, tmp_path: Path
) -> None:
    store = open_store(parse_url(mirror_url), create=True)
    r = push_file(archive_v1, store, ref="main")
    api.mirror_rm(f"{mirror_url}@{r.archive_id}", force=True)  # its parts are garbage now
    deleting = _PauseDeletes(store)
    collected: list[GcReport] = []
    gc = threading.Thread(
        target=lambda: collected.append(collect_garbage(deleting, lock_timing=FAST))
    )
    gc.start()
    assert deleting.started.wait(30)  # gc is sweeping: its deletes of parts are under way
    pushed: list[object] = []
    t = threading.Thread(
        target=lambda: pushed.append(push_file(archive_v1, store, ref="main", lock_timing=FAST))
    )
    t.start()
    t.join(1.5)  # time enough for a push that would not wait: it would head, skip, record
    assert t.is_alive() and not pushed  # the re-push waits instead of heading doomed parts
    deleting.go.set()
    gc.join(30)
    t.join(30)
    assert pushed and collected and collected[0].deleted  # gc finished its sweep first
    out = tmp_path / "out.dlmsnap"
    api.pull(f"{mirror_url}:main", out)
    assert out.read_bytes() == archive_v1.read_bytes()
    assert api.mirror_check(mirror_url, read_data=True).ok
