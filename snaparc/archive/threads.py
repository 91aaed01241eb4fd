"""How many worker threads: the one default and the one check.

`threads=0` (or None) means one per core available to this process;
negative counts are refused before any work starts.
"""

from __future__ import annotations

import os

from snaparc.errors import UsageError


def default_threads() -> int:
    """The cores this process may run on (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def worker_count(threads: int | None) -> int:
    """Threads to start for a `--threads` value that `check_threads` accepted."""
    return threads or default_threads()


def check_threads(threads: int | None, *, option: str = "--threads") -> int:
    """Validate a thread count: a whole number, 0 (= all cores) or more."""
    if threads is None:
        return 0
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise UsageError(f"{option} must be a whole number, 0 (all cores) or more; got {threads!r}")
    return threads
