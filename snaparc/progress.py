"""Progress on stderr: bytes done, rate, ETA. Silent unless enabled.

The CLI enables it when stderr is a terminal (or with --progress) and never
with --quiet. Operations only call `advance`; they never print.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


class Progress:
    """A one-line progress meter, redrawn at most every `interval` seconds.

    `detail`, if set, returns more to show at the end of the line (a mirror
    transfer's bytes fetched or sent, skipped and retried).
    """

    def __init__(
        self,
        label: str,
        total: int | None,
        *,
        stream: TextIO | None = None,
        interval: float = 0.25,
    ) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._interval = interval
        self._start = time.monotonic()
        self._last = 0.0
        self.detail: Callable[[], str] | None = None

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._start, 1e-6)
        rate = self.done / elapsed
        text = f"{self.label}: {human_bytes(self.done)}"
        if self.total:
            pct = 100.0 * self.done / self.total
            left = (self.total - self.done) / rate if rate > 0 else 0.0
            text += f" / {human_bytes(self.total)} ({pct:.0f}%), ETA {left:.0f}s"
        text += f", {human_bytes(rate)}/s"
        if self.detail is not None:
            text += f"; {self.detail()}"
        self._stream.write("\r" + text.ljust(78))
        self._stream.flush()

    def close(self) -> None:
        self._draw(time.monotonic())
        self._stream.write("\n")
        self._stream.flush()
