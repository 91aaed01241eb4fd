"""Byte-mutation fuzzing of small valid archives (issue #5).

Hypothesis mutates forged archives (flip, insert, delete, splice, truncate,
overwrite) and runs each through verify, unpack, ls (file and pipe) and cat
(file and pipe) in-process. A finding is any exception that is not a
`SnaparcError`, a run slower than the deadline, a Python heap peak over the
bound, a write outside the target (canary), staging left behind, or cat
output from a rejected archive. Every crash found becomes a regression case
in tests/hostile/gen_corpus.py.

`make test` runs ~200 examples. `make fuzz` sets SNAPARC_FUZZ_SECONDS and
this scales the example count (and relaxes the deadline) to fill that time.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import tracemalloc
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snaparc.archive.catfile import cat_file
from snaparc.archive.listing import read_listing
from snaparc.archive.reader import read_archive
from snaparc.archive.unpack import unpack_archive
from snaparc.errors import SnaparcError
from tests.hostile import forge as F
from tests.hostile.conftest import NonSeekable, make_canary, snapshot

FUZZ_SECONDS = float(os.environ.get("SNAPARC_FUZZ_SECONDS", "0") or 0)
# ~200 examples by default; about 30 examples a second when asked to run long.
MAX_EXAMPLES = max(200, int(FUZZ_SECONDS * 30)) if FUZZ_SECONDS else 200
DEADLINE = timedelta(seconds=10 if FUZZ_SECONDS else 5)
# Python heap bound for one command on a tiny archive: the frame splitter's
# buffers (max_frame_bytes + 1 MiB each) and a few decompressed frames.
HEAP_BOUND = 160 * 1024 * 1024

SEEDS = [
    F.forge().data,
    F.forge(
        [F.FileSpec("a/b/c.txt", b"abc" * 100), F.FileSpec("run.sh", b"#!/bin/sh\n", True)],
        dirs=("empty",),
        metadata={"k": "v", "n": 1},
    ).data,
    F.forge([F.FileSpec("run.sh", b""), F.FileSpec("z", bytes(3000))]).data,
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "splice", "truncate"]))
        n = len(data)
        if n == 0:
            break
        pos = draw(st.integers(0, n - 1))
        if kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[pos] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0x30, 0x22, 0x5C]))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif kind == "splice":
            other = draw(st.sampled_from(SEEDS))
            a = draw(st.integers(0, len(other) - 1))
            data[pos : pos + draw(st.integers(0, 64))] = other[a : a + draw(st.integers(1, 256))]
        else:
            del data[pos:]
    return bytes(data)


def _run(what: str, fn: object) -> None:
    tracemalloc.start()
    try:
        fn()  # type: ignore[operator]
    except SnaparcError:
        pass
    except Exception as exc:  # a finding: not one of snaparc's errors
        raise AssertionError(f"{what}: {type(exc).__name__}: {exc}") from exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < HEAP_BOUND, f"{what}: Python heap peaked at {peak} bytes"


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=DEADLINE,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None if not FUZZ_SECONDS else settings.default.database,
)
@given(mutated())
def test_fuzz_mutated_archives(data: bytes) -> None:
    root = Path(tempfile.mkdtemp(prefix="snaparc-fuzz-"))
    try:
        make_canary(root)
        canary = snapshot(root / "canary")
        names = set(os.listdir(root))
        target = root / "out"

        ok = True

        def unpack() -> None:
            nonlocal ok
            try:
                unpack_archive(io.BytesIO(data), target, threads=2)
            except BaseException:
                ok = False
                raise

        _run("verify", lambda: read_archive(io.BytesIO(data), threads=2))
        _run("unpack", unpack)
        if ok:  # a mutation that kept the archive valid (e.g. in a skippable frame)
            names.add("out")
        assert set(os.listdir(root)) == names, "unpack left something behind"
        assert snapshot(root / "canary") == canary, "unpack touched the canary"
        _run("ls", lambda: read_listing(io.BytesIO(data)))
        _run("ls pipe", lambda: read_listing(NonSeekable(data)))  # type: ignore[arg-type]
        for path in ("run.sh", "a/b/c.txt"):
            for name, stream in (("cat", io.BytesIO(data)), ("cat pipe", NonSeekable(data))):
                out = io.BytesIO()
                failed = True

                def cat(stream: object = stream, out: io.BytesIO = out, path: str = path) -> None:
                    nonlocal failed
                    cat_file(stream, path, out, threads=2)  # type: ignore[arg-type]
                    failed = False

                _run(name, cat)
                if failed:
                    assert out.getvalue() == b"", f"{name} wrote bytes of a rejected archive"
    finally:
        for dirpath, dirnames, _ in os.walk(root):
            for d in dirnames:
                os.chmod(os.path.join(dirpath, d), 0o700)
        shutil.rmtree(root)
