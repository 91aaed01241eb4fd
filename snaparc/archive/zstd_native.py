"""Decompress one zstd frame into a caller's buffer with the system libzstd.

The libzstd that python-zstandard bundles is built without zstd's x86-64
assembly Huffman decoder; the distribution's `libzstd.so.1` has it and
decodes bf16 weights about 12 % faster (measured in benchmarks/RESULTS.md's
setting). This module binds the two functions it needs through ctypes
(which releases the GIL during the call) and is used only when the library
loads and is recent enough; otherwise callers fall back to python-zstandard.

Safety: the caller has already checked the frame header (declared content
size <= the buffer, window <= 8 MiB, checksum flag set) and passes exactly
one frame. One-shot decoding writes only into the caller's buffer (it needs
no window buffer of its own), refuses output larger than the capacity, and
checks the declared size and the content checksum; a frame decoding to any
other size than `size` is refused here too.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from typing import Any

_MIN_VERSION = 10400  # 1.4.0: ZSTD_DCtx_setParameter is stable
_D_WINDOW_LOG_MAX = 100  # ZSTD_d_windowLogMax
_WINDOW_LOG_MAX = 23  # 8 MiB, the spec's MAX_WINDOW_SIZE

_local = threading.local()


def _load() -> Any | None:
    name = ctypes.util.find_library("zstd") or "libzstd.so.1"
    try:
        lib = ctypes.CDLL(name)
        lib.ZSTD_versionNumber.restype = ctypes.c_uint
        if lib.ZSTD_versionNumber() < _MIN_VERSION:
            return None
        lib.ZSTD_createDCtx.restype = ctypes.c_void_p
        lib.ZSTD_createDCtx.argtypes = []
        lib.ZSTD_DCtx_setParameter.restype = ctypes.c_size_t
        lib.ZSTD_DCtx_setParameter.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        lib.ZSTD_decompressDCtx.restype = ctypes.c_size_t
        lib.ZSTD_decompressDCtx.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_void_p,
            ctypes.c_size_t,
        ]
        lib.ZSTD_isError.restype = ctypes.c_uint
        lib.ZSTD_isError.argtypes = [ctypes.c_size_t]
        lib.ZSTD_getErrorName.restype = ctypes.c_char_p
        lib.ZSTD_getErrorName.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return lib


_lib = _load()


def available() -> bool:
    return _lib is not None


def _dctx() -> int:
    dctx: int | None = getattr(_local, "dctx", None)
    if dctx is None:
        assert _lib is not None
        dctx = int(_lib.ZSTD_createDCtx())
        if not dctx:
            raise MemoryError("ZSTD_createDCtx failed")
        rc = _lib.ZSTD_DCtx_setParameter(dctx, _D_WINDOW_LOG_MAX, _WINDOW_LOG_MAX)
        if _lib.ZSTD_isError(rc):
            raise MemoryError("ZSTD_DCtx_setParameter failed")
        _local.dctx = dctx
    return dctx


def decompress_frame_into(src: memoryview, dst: bytearray | memoryview, size: int) -> str | None:
    """Decompress the single frame `src` into dst[:size]; None on success,
    else libzstd's error name. The frame must decode to exactly `size` bytes."""
    assert _lib is not None and size <= len(dst)
    src_buf = (ctypes.c_char * len(src)).from_buffer(src)
    dst_buf = (ctypes.c_char * len(dst)).from_buffer(dst)
    rc = _lib.ZSTD_decompressDCtx(
        _dctx(), ctypes.addressof(dst_buf), size, ctypes.addressof(src_buf), len(src)
    )
    if _lib.ZSTD_isError(rc):
        return str(_lib.ZSTD_getErrorName(rc).decode("ascii", "replace"))
    if rc != size:
        return f"frame holds {rc} bytes"
    return None
