"""Mirror lifecycle at scale: `mirror ls`, `check` and `gc` over many records.

    python -m benchmarks.mirror_lifecycle [--archives 1000] [--objects 10000]
                                          [--also 250] [--workdir DIR]

Builds a directory mirror of `--archives` synthetic archive records over
`--objects` objects in all (records, manifest parts and blob parts: small
random parts, each archive naming 20 blobs from a shared pool, so blobs are
shared about 2.4 times), valid in every way `check` looks at without
`--read-data` (canonical records, parts of the recorded sizes, refs). Then it
runs each operation in a fresh process, through a store that counts
requests, and prints (and with `--markdown`, appends to RESULTS.md) wall
time, peak RSS and the number of list calls, heads, gets, puts and deletes.
`gc` runs after 10 % of the records were removed, so it has work to do.
`--also N` repeats everything for a mirror of N archives (and
objects scaled alike), to show that RSS does not grow with the archives and
requests grow linearly with the objects.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from snaparc.format.seektable import seek_table_size
from snaparc.mirror.layout import (
    ArchiveRecord,
    MemberRecord,
    Part,
    blob_part_key,
    encode_record,
    encode_ref,
    manifest_part_key,
    record_key,
    ref_key,
)
from snaparc.mirror.store import DirStore, ObjectInfo, PutMode, Store

BLOBS_PER_ARCHIVE = 20
END_FRAME = bytes.fromhex("28b52ffd2000010000")


class CountingStore:
    """Counts every request a store receives; list calls count pages of 1,000
    keys, as S3's ListObjectsV2 returns them."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.counts: Counter[str] = Counter()

    def describe(self, key: str = "") -> str:
        return self.inner.describe(key)

    def get(self, key: str) -> bytes:
        self.counts["get"] += 1
        return self.inner.get(key)

    def get_range(self, key: str, start: int, end: int) -> bytes:
        self.counts["get"] += 1
        return self.inner.get_range(key, start, end)

    def head(self, key: str) -> ObjectInfo | None:
        self.counts["head"] += 1
        return self.inner.head(key)

    def put(self, key: str, data: bytes, *, mode: PutMode) -> None:
        self.counts["put"] += 1
        self.inner.put(key, data, mode=mode)

    def delete(self, key: str) -> None:
        self.counts["delete"] += 1
        self.inner.delete(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        items = list(self.inner.list(prefix))
        self.counts["list"] += max(1, -(-len(items) // 1000))
        return iter(items)


def _part(rng: random.Random, store: _Writer, key_for: Any, size: int) -> Part:
    data = rng.randbytes(size)
    sha = hashlib.sha256(data).hexdigest()
    store.put(key_for(sha), data, mode="create")
    return Part(sha, len(data), (len(data),))


class _Writer:
    """Writes objects as a DirStore lays them out, without its fsyncs (setup only)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, key: str, data: bytes, *, mode: PutMode) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def build_mirror(root: Path, archives: int, objects: int, seed: int = 0) -> None:
    """`archives` records + `archives` manifest parts + the rest blob parts."""
    rng = random.Random(seed)
    store = _Writer(root)
    n_blobs = objects - 2 * archives
    if n_blobs < BLOBS_PER_ARCHIVE:
        raise SystemExit("--objects must leave room for blob parts")
    pool: list[MemberRecord] = []
    for _ in range(n_blobs):
        c = rng.randbytes(32).hex()
        size = rng.randrange(200, 2000)
        part = _part(rng, store, lambda sha, c=c: blob_part_key(c, sha), size)
        pool.append(MemberRecord(c, size, (part,)))
    for i in range(archives):
        chosen = sorted(rng.sample(pool, BLOBS_PER_ARCHIVE), key=lambda m: m.blob or "")
        # the archive id is any 64-hex name here: check without --read-data never
        # rebuilds the manifest, so it need not hash to the id
        aid = hashlib.sha256(f"archive {seed} {i}".encode()).hexdigest()
        msize = rng.randrange(300, 900)
        mpart = _part(rng, store, lambda sha, aid=aid: manifest_part_key(aid, sha), msize)
        manifest = MemberRecord(None, msize, (mpart,))
        frames = 1 + len(chosen) + 1
        file_size = (
            mpart.size
            + sum(m.parts[0].size for m in chosen)
            + len(END_FRAME)
            + seek_table_size(frames)
        )
        rec = ArchiveRecord(aid, manifest, tuple(chosen), END_FRAME, file_size, "0" * 64)
        store.put(record_key(aid), encode_record(rec), mode="create")
        if i % 10 == 0:
            store.put(ref_key(f"r{i}"), encode_ref(aid), mode="overwrite")


def run_op(root: Path, op: str) -> dict[str, Any]:
    """One operation, in this process; returns its figures."""
    from snaparc.mirror.check import check_mirror
    from snaparc.mirror.gc import collect_garbage
    from snaparc.mirror.pull import list_mirror
    from snaparc.mirror.remove import remove_archive
    from snaparc.mirror.usage import mirror_usage

    store = CountingStore(DirStore(root))
    detail: dict[str, Any] = {}
    if op == "gc":  # remove 10 % of the records first (not counted), then collect
        plain = DirStore(root)
        ids = sorted(i.key[9:-5] for i in plain.list("archives"))
        for aid in ids[: len(ids) // 10]:
            remove_archive(plain, aid, force=True)
    t0 = time.perf_counter()
    if op == "ls":
        listing = list_mirror(store)
        usage = mirror_usage(store)
        detail = {"archives": len(listing.archives), "logical": usage.logical_bytes}
    elif op == "check":
        report = check_mirror(store)
        detail = {"ok": report.ok, "archives": report.archives, "objects": report.objects}
        assert report.ok, report.problems[:3]
    elif op == "gc":
        gc = collect_garbage(store)
        detail = {"deleted": len(gc.deleted), "archives": gc.archives}
    wall = time.perf_counter() - t0
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"op": op, "wall_s": round(wall, 3), "rss_mib": round(rss_kib / 1024, 1),
            "requests": dict(store.counts), **detail}  # fmt: skip


def measure(workdir: Path, archives: int, objects: int) -> list[dict[str, Any]]:
    root = workdir / f"mirror-{archives}"
    if root.exists():
        shutil.rmtree(root)
    t0 = time.perf_counter()
    build_mirror(root, archives, objects)
    build_s = time.perf_counter() - t0
    rows = []
    for op in ("ls", "check", "gc"):
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.mirror_lifecycle", "--op", op, str(root)],
            capture_output=True,
            check=True,
            text=True,
        )
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row.update(archive_records=archives, objects=objects, build_s=round(build_s, 1))
        rows.append(row)
        print(json.dumps(row), flush=True)
    shutil.rmtree(root)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out = [
        "",
        "## Mirror lifecycle at scale (`python -m benchmarks.mirror_lifecycle`)",
        "",
        f"Directory mirror on the local disk, warm cache; {stamp}, "
        f"{os.cpu_count()} cores ({cpu}), shared with other work. Synthetic records: each archive "
        f"names {BLOBS_PER_ARCHIVE} small blob parts from a shared pool and its own manifest part. "
        "Each operation runs in a fresh process through a request-counting store (a list call "
        "counts one per page of 1,000 keys, as S3 pages). `gc` runs after 10 % of the records "
        "were removed. Peak RSS is the whole process (the Python interpreter included).",
        "",
        "| records | objects | operation | wall s | peak RSS MiB | list | head | get | put "
        "| delete | result |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]  # fmt: skip
    for r in rows:
        q = r["requests"]
        result = ", ".join(f"{k} {r[k]}" for k in ("archives", "deleted", "ok") if k in r)
        out.append(
            f"| {r['archive_records']} | {r['objects']} | {r['op']} | {r['wall_s']} | "
            f"{r['rss_mib']} | {q.get('list', 0)} | {q.get('head', 0)} | {q.get('get', 0)} | "
            f"{q.get('put', 0)} | {q.get('delete', 0)} | {result} |"
        )
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archives", type=int, default=1000)
    ap.add_argument("--objects", type=int, default=10_000)
    ap.add_argument("--also", type=int, default=250, help="a smaller scale too (0: none)")
    ap.add_argument("--workdir", type=Path, default=Path(__file__).parent / "work")
    ap.add_argument("--markdown", action="store_true", help="append the table to RESULTS.md")
    ap.add_argument("--op", help=argparse.SUPPRESS)
    ap.add_argument("root", nargs="?", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.op:
        print(json.dumps(run_op(args.root, args.op)))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    scales = [(args.also, args.objects * args.also // args.archives)] if args.also else []
    for archives, objects in [*scales, (args.archives, args.objects)]:
        rows += measure(args.workdir, archives, objects)
    table = markdown(rows)
    print(table)
    if args.markdown:
        with open(Path(__file__).parent / "RESULTS.md", "a") as f:
            f.write(table)


if __name__ == "__main__":
    main()
