"""The one retry policy of every remote transfer (spec/MIRROR.md, section 11;
spec/OCI.md, section 7): mirror stores (`RetryingStore`) and OCI
registries (`RegistryClient`) both use it.

- `RetryPolicy`: how many times a failed request is retried (`retries`, from
  `--retries` / `SNAPARC_RETRIES`, default 5) and how long to wait before
  each retry: exponential backoff with full jitter (a uniform draw from 0 to
  `base_delay x 2^attempt`, at most `max_delay`). `pause` sleeps with the
  sleep function it is given (tests pass one that records).
- `TransferStats`: what the requests of one command moved and how often they
  were retried (thread-safe counters, reported by push and pull).

Which failures are transient (a retry may cure them) is the caller's
knowledge: connection failures, idle timeouts, a body cut short, HTTP 408,
429 and 5xx; never not-found, unauthorized or forbidden.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from snaparc.mirror.url import DEFAULT_RETRIES

BASE_DELAY = 0.2
MAX_DELAY = 5.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = DEFAULT_RETRIES
    base_delay: float = BASE_DELAY
    max_delay: float = MAX_DELAY

    def delay(self, attempt: int) -> float:
        """The wait before retry number `attempt + 1` (full jitter)."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))

    def pause(self, attempt: int, sleep: Callable[[float], None]) -> None:
        sleep(self.delay(attempt))


@dataclass(slots=True)
class TransferStats:
    """What the remote calls of one command moved (thread-safe counters)."""

    bytes_received: int = 0  # payload bytes handed back by gets, retried ones included
    bytes_sent: int = 0  # payload bytes of puts that succeeded
    requests: int = 0
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, *, received: int = 0, sent: int = 0, requests: int = 0, retries: int = 0) -> None:
        with self._lock:
            self.bytes_received += received
            self.bytes_sent += sent
            self.requests += requests
            self.retries += retries
