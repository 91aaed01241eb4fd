"""The mirror lock: pushes share, maintenance excludes, leases expire by observation."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from snaparc_testlib import push_file

from snaparc.mirror.lock import (
    LockLostError,
    LockTiming,
    MirrorBusyError,
    MirrorLock,
    lock_kind,
)
from snaparc.mirror.store import MemoryStore, PutMode, Store, TransientStoreError

from .conftest import pack, write_tree

FAST = LockTiming(lease=0.4, wait=5.0)
# Where a test asserts that a lock stays live, its holder's lease leaves room
# for a heartbeat delayed by a loaded machine (a slow fsync, a busy S3 server):
# a short wait against it cannot outlast the lease, whatever the scheduler does.
LIVE = LockTiming(lease=1.5, wait=5.0)
GIVE_UP = LockTiming(lease=1.5, wait=0.3)


def _locks(store: Store) -> list[str]:
    return sorted(i.key for i in store.list("locks"))


def test_pushes_share_and_a_maintainer_waits_for_them(store: Store) -> None:
    a = MirrorLock(store, "push", "push", timing=LIVE).acquire()
    b = MirrorLock(store, "push", "push", timing=LIVE).acquire()  # shared: no wait
    assert [lock_kind(k) for k in _locks(store)] == ["push", "push"]
    with pytest.raises(MirrorBusyError):
        MirrorLock(store, "exclusive", "gc", timing=GIVE_UP).acquire()
    assert len(_locks(store)) == 2  # the one that gave up removed its lock
    a.release()
    b.release()
    with MirrorLock(store, "exclusive", "gc", timing=LIVE) as gc:
        gc.check()
        with pytest.raises(MirrorBusyError):  # a push gives way while gc holds
            MirrorLock(store, "push", "push", timing=GIVE_UP).acquire()
        assert [lock_kind(k) for k in _locks(store)] == ["exclusive"]
    assert _locks(store) == []


def test_a_maintainer_proceeds_when_the_push_ends(store: Store) -> None:
    push = MirrorLock(store, "push", "push", timing=FAST).acquire()
    threading.Timer(0.3, push.release).start()
    t0 = time.monotonic()
    with MirrorLock(store, "exclusive", "gc", timing=FAST):
        assert time.monotonic() - t0 >= 0.25
        assert [lock_kind(k) for k in _locks(store)] == ["exclusive"]


def test_a_heartbeat_keeps_a_long_holder_alive(store: Store) -> None:
    """Past two leases the holder is still valid, and a comer that watches it
    for longer than a lease sees the beats and never deems it stale. The lease
    (1 s, beats every 0.25 s) tolerates a heartbeat delayed by 0.7 s."""
    timing = LockTiming(lease=1.0, wait=5.0)
    with MirrorLock(store, "exclusive", "gc", timing=timing) as gc:
        time.sleep(2.1)
        gc.check()
        comer = MirrorLock(store, "push", "push", timing=LockTiming(lease=1.0, wait=1.5))
        with pytest.raises(MirrorBusyError):
            comer.acquire()
        assert comer.stale_removed == []
        gc.check()


def test_a_dead_holders_lock_goes_stale_after_its_lease(store: Store) -> None:
    """A lock nobody refreshes (a process killed -9) is removed by the next comer,
    once that one saw it unchanged for the lease the lock declares."""
    dead = MirrorLock(store, "exclusive", "gc", timing=LockTiming(lease=0.3))
    dead.acquire()
    dead._stop_heartbeat()  # as if killed: the lock object stays, unrefreshed
    t0 = time.monotonic()
    with MirrorLock(store, "push", "push", timing=FAST) as push:
        assert time.monotonic() - t0 >= 0.3
        assert dead.key in push.stale_removed
    with pytest.raises(LockLostError):
        dead.check()


def test_garbage_in_the_locks_prefix_counts_as_a_live_lock(store: Store) -> None:
    store.put("locks/exclusive-" + "0" * 32, b"not json", mode="create")
    with pytest.raises(MirrorBusyError):
        MirrorLock(store, "push", "push", timing=LockTiming(lease=0.4, wait=0.3)).acquire()
    assert _locks(store) == ["locks/exclusive-" + "0" * 32]  # kept: the default lease applies


class _FlakyLocks(MemoryStore):
    """Lock heartbeats fail after `fail` is set (a partitioned holder)."""

    fail = False

    def put(self, key: str, data: bytes, *, mode: PutMode) -> None:
        if self.fail and key.startswith("locks/"):
            raise TransientStoreError("injected")
        super().put(key, data, mode=mode)


def test_a_holder_that_cannot_beat_stops_before_its_lease_ends() -> None:
    store = _FlakyLocks()
    lock = MirrorLock(store, "exclusive", "gc", timing=LockTiming(lease=0.4)).acquire()
    lock.check()
    store.fail = True
    time.sleep(0.3)  # more than lease/2 without a successful beat
    with pytest.raises(LockLostError) as info:
        lock.check()
    assert info.value.exit_code == 10
    store.fail = False
    time.sleep(0.25)
    with pytest.raises(LockLostError):  # lost for good, even once beats could succeed
        lock.check()
    lock.release()
    assert _locks(store) == []


def test_a_push_whose_lock_was_removed_writes_no_record(tmp_path: Path) -> None:
    """Someone removed the push lock (as stale, or by hand) while it uploaded:
    it stops before the record, so no record names parts a gc may have taken."""
    archive = pack(write_tree(tmp_path / "src", {"a.bin": b"a" * 5000}), tmp_path / "a.dlmsnap")

    class RemovesLock(MemoryStore):
        def put(self, key: str, data: bytes, *, mode: PutMode) -> None:
            super().put(key, data, mode=mode)
            if key.startswith("blobs/"):
                for info in self.list("locks"):
                    self.delete(info.key)

    store = RemovesLock()
    with pytest.raises(LockLostError):
        push_file(archive, store, ref="main", lock_timing=FAST)
    assert not list(store.list("archives")) and not list(store.list("refs"))
