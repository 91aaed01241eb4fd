"""Resource limits a reader enforces before spending memory, disk or time."""

from __future__ import annotations

from dataclasses import dataclass

GiB = 1024**3


@dataclass(frozen=True, slots=True)
class Limits:
    """Safe defaults; every one can be raised from the CLI (`--max-*`)."""

    max_manifest_bytes: int = 64 * 1024 * 1024
    max_files: int = 100_000
    max_total_bytes: int = 4096 * GiB
    # Compressed bytes one frame may take (a frame holds at most FRAME_SIZE
    # decompressed bytes; incompressible data grows by a few bytes per block).
    max_frame_bytes: int = 9 * 1024 * 1024
    # Frames in the seek table (a 4 TiB archive has ~524k frames of 8 MiB).
    max_frames: int = 1_000_000


DEFAULT_LIMITS = Limits()
