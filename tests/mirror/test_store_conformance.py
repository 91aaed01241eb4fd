"""One suite every store passes: memory, directory, and S3 (moto)."""

from __future__ import annotations

import os
import threading

import pytest

from snaparc.mirror.store import ObjectExistsError, ObjectNotFoundError, Store


def test_get_missing_raises_not_found(store: Store) -> None:
    with pytest.raises(ObjectNotFoundError) as info:
        store.get("no/such/key")
    assert info.value.key == "no/such/key"
    assert info.value.exit_code == 10
    assert "no/such/key" in str(info.value)


def test_head_missing_is_none(store: Store) -> None:
    assert store.head("absent") is None


def test_put_get_head_roundtrip(store: Store) -> None:
    store.put("a/b/c", b"hello world", mode="create")
    assert store.get("a/b/c") == b"hello world"
    info = store.head("a/b/c")
    assert info is not None and info.size == 11 and info.key == "a/b/c"


def test_empty_object(store: Store) -> None:
    store.put("empty", b"", mode="create")
    assert store.get("empty") == b""
    info = store.head("empty")
    assert info is not None and info.size == 0


def test_get_range(store: Store) -> None:
    store.put("r", b"0123456789", mode="create")
    assert store.get_range("r", 2, 5) == b"234"
    assert store.get_range("r", 0, 10) == b"0123456789"
    assert store.get_range("r", 4, 4) == b""
    with pytest.raises(ObjectNotFoundError):
        store.get_range("missing", 0, 1)


def test_create_refuses_existing_and_keeps_it(store: Store) -> None:
    store.put("k", b"first", mode="create")
    with pytest.raises(ObjectExistsError) as info:
        store.put("k", b"second", mode="create")
    assert info.value.key == "k"
    assert store.get("k") == b"first"


def test_overwrite_replaces(store: Store) -> None:
    store.put("k", b"first", mode="create")
    store.put("k", b"second!", mode="overwrite")
    assert store.get("k") == b"second!"
    store.put("new", b"x", mode="overwrite")
    assert store.get("new") == b"x"


def test_big_overwrite_multipart(store: Store) -> None:
    data = os.urandom(7 * 1024 * 1024 + 123)
    store.put("big/one", data, mode="overwrite")
    assert store.get("big/one") == data
    info = store.head("big/one")
    assert info is not None and info.size == len(data)


def test_list_prefix_is_segment_based(store: Store) -> None:
    for key in ("refs/main", "refs/v1", "refsx/other", "blobs/aa/bb", "top"):
        store.put(key, key.encode(), mode="create")
    assert sorted(i.key for i in store.list("refs")) == ["refs/main", "refs/v1"]
    assert sorted(i.key for i in store.list("refs/")) == ["refs/main", "refs/v1"]
    assert sorted(i.key for i in store.list("blobs")) == ["blobs/aa/bb"]
    every = {i.key: i.size for i in store.list("")}
    assert every == {
        k: len(k) for k in ("refs/main", "refs/v1", "refsx/other", "blobs/aa/bb", "top")
    }
    assert list(store.list("nothing")) == []


def test_invalid_keys_refused(store: Store) -> None:
    for bad in ("../x", "/abs", "a//b", ".hidden", "a/./b", "a/../b", ""):
        with pytest.raises(ValueError):
            store.put(bad, b"x", mode="create")


def test_concurrent_create_exactly_one_wins(store: Store) -> None:
    n = 6
    results: list[str] = []
    barrier = threading.Barrier(n)

    def writer(i: int) -> None:
        barrier.wait()
        try:
            store.put("race", b"payload-%d" % i, mode="create")
            results.append("won")
        except ObjectExistsError:
            results.append("exists")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("won") == 1
    assert results.count("exists") == n - 1
    assert store.get("race").startswith(b"payload-")


def test_delete_removes_and_is_idempotent(store: Store) -> None:
    store.put("blobs/aa/p1", b"one", mode="create")
    store.put("blobs/aa/p2", b"two", mode="create")
    store.delete("blobs/aa/p1")
    assert store.head("blobs/aa/p1") is None
    with pytest.raises(ObjectNotFoundError):
        store.get("blobs/aa/p1")
    assert [i.key for i in store.list("blobs")] == ["blobs/aa/p2"]
    store.delete("blobs/aa/p1")  # absent: no error
    store.delete("never/there")
    store.delete("blobs/aa/p2")
    assert list(store.list("blobs")) == []
    store.put("blobs/aa/p1", b"again", mode="create")  # a deleted key can be created again
    assert store.get("blobs/aa/p1") == b"again"


def test_delete_refuses_invalid_keys(store: Store) -> None:
    for bad in ("../x", "/abs", ".hidden", ""):
        with pytest.raises(ValueError):
            store.delete(bad)
