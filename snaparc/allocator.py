"""Keep the C allocator from holding on to freed big buffers (glibc).

snaparc moves data in buffers of megabytes (8 MiB frames, parts of up to
36 MiB). glibc's malloc serves blocks of at least its mmap threshold with
`mmap` and returns them to the system on `free`, but that threshold is
*dynamic*: each time such a block is freed, the threshold rises to its size
(up to 32 MiB on 64-bit). After the first frames, every later buffer comes
from the heap, whose freed pieces stay in the process, fragmented, so peak
RSS grows with the number of buffers a command goes through: a push of a
4 GiB archive peaked at 315 MiB, 183 MiB with the threshold held at 1 MiB
(benchmarks/RESULTS.md). `bound_allocator` holds it there (`mallopt`), once,
for the command-line process; what the user set in `MALLOC_MMAP_THRESHOLD_`
wins, and other C libraries are left as they are.
"""

from __future__ import annotations

import os
import sys

__all__ = ["MMAP_THRESHOLD", "bound_allocator"]

MMAP_THRESHOLD = 1024 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
_done = False


def bound_allocator(threshold: int = MMAP_THRESHOLD) -> bool:
    """Set glibc's mmap threshold to `threshold` (which also stops it from
    moving); True if it was set by this call or an earlier one."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (or no mallopt): nothing to do
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _done = bool(mallopt(_M_MMAP_THRESHOLD, threshold) == 1)
    return _done
