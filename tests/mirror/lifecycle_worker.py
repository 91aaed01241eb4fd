"""A process of the gc concurrency tests (run as a script, never collected).

    lifecycle_worker.py push URL LEASE NAME ARCHIVE...   push each as ref NAME; after
        each, remove the previous record and push it again (a re-push of an archive
        whose parts a gc may be deleting), then remove it once more
    lifecycle_worker.py gc URL LEASE ROUNDS DELAY        run gc ROUNDS times; DELAY
        seconds of sleep after each delete widen the window for kill -9

Every operation that fails with a mirror error (exit 10: the lock was lost or
the mirror stayed busy) is retried, as a user would; anything else fails the
process. Prints one JSON line: what it did.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable
from typing import TypeVar

import snaparc.api as api
from snaparc.errors import SnaparcError

T = TypeVar("T")
retries = 0


def retry(fn: Callable[[], T]) -> T:
    global retries
    for _ in range(200):
        try:
            return fn()
        except SnaparcError as exc:
            if exc.exit_code != 10:
                raise
            retries += 1
            time.sleep(0.05)
    raise SystemExit("gave up after 200 retries")


def push_role(url: str, lease: float, name: str, archives: list[str]) -> dict[str, object]:
    ids: list[str] = []
    for i, archive in enumerate(archives):
        pushed = retry(lambda a=archive: api.push(a, url, ref=name, lease=lease, threads=1))
        ids.append(pushed.archive_id)
        if i == 0:
            continue
        prev, prev_id = archives[i - 1], ids[i - 1]
        retry(lambda p=prev_id: _rm_if_present(url, p, lease))
        retry(lambda a=prev: api.push(a, url, lease=lease, threads=1))  # no ref
        if i % 2 == 0:
            retry(lambda p=prev_id: _rm_if_present(url, p, lease))
    return {"ids": ids, "retries": retries}


def _rm_if_present(url: str, archive_id: str, lease: float) -> None:
    from snaparc.mirror.pull import ArchiveNotFoundError

    with contextlib.suppress(ArchiveNotFoundError):
        api.mirror_rm(f"{url}@{archive_id}", lease=lease)


def gc_role(url: str, lease: float, rounds: int, delay: float) -> dict[str, object]:
    from snaparc.mirror.connect import open_store
    from snaparc.mirror.gc import collect_garbage
    from snaparc.mirror.lock import LockTiming
    from snaparc.mirror.url import parse_url

    store = open_store(parse_url(url))
    deleted = 0
    for _ in range(rounds):
        report = retry(
            lambda: collect_garbage(
                store,
                lock_timing=LockTiming(lease=lease, wait=60),
                on_delete=(lambda _key: time.sleep(delay)) if delay else None,
            )
        )
        deleted += len(report.deleted)
        time.sleep(0.02)
    return {"deleted": deleted, "retries": retries}


def main() -> None:
    role, url, lease = sys.argv[1], sys.argv[2], float(sys.argv[3])
    if role == "push":
        out = push_role(url, lease, sys.argv[4], sys.argv[5:])
    else:
        out = gc_role(url, lease, int(sys.argv[4]), float(sys.argv[5]))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
