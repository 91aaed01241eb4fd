"""Store requests off the main thread, so that a signal always gets through.

A request to a network store may block for as long as the network decides
(a stalled socket), inside native code that does not return to Python. Two
rules keep Ctrl-C and SIGTERM prompt whatever the network does:

- the main thread never makes a store request itself and never waits
  without a timeout: it waits in short slices (`wait`), so a signal handler
  runs at once and its exception (KeyboardInterrupt, the CLI's Terminated)
  propagates, and the usual cleanup (temp files, staging) runs;
- requests run on daemon threads (`DaemonPool`, `off_main`), which the
  interpreter does not join at exit: a request stuck in a stalled socket
  cannot hold the process after the main thread is done. (The workers of
  `concurrent.futures.ThreadPoolExecutor` are joined at exit, which is how a
  stalled pull used to outlive its "terminated" message.)

An abandoned request keeps its thread until its socket times out or closes;
nothing it returns is used.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

T = TypeVar("T")

# How long the main thread blocks at most before it looks at signals again.
WAIT_SLICE = 0.2

_Job = tuple[Future[object], Callable[[], object]]


def wait(future: Future[T]) -> T:
    """`future.result()`, interruptible by signals (waits in slices)."""
    while True:
        try:
            return future.result(timeout=WAIT_SLICE)
        except FutureTimeout:
            continue


def _run(future: Future[T], fn: Callable[[], T]) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        result = fn()
    except BaseException as exc:
        future.set_exception(exc)
    else:
        future.set_result(result)


def off_main(fn: Callable[[], T]) -> T:
    """Run `fn` on a daemon thread when called on the main thread (and wait
    for it interruptibly); call it directly on any other thread."""
    if threading.current_thread() is not threading.main_thread():
        return fn()
    future: Future[T] = Future()
    threading.Thread(target=_run, args=(future, fn), name="snaparc-store", daemon=True).start()
    return wait(future)


class DaemonPool:
    """A fixed number of daemon worker threads taking jobs in order.

    `submit` returns a `Future`; `shutdown` cancels the jobs not started and
    lets the workers end, without waiting for a running one.
    """

    def __init__(self, workers: int, *, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._workers = max(1, workers)
        self._closed = False
        for i in range(self._workers):
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True).start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, fn = job
            _run(future, fn)

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        if self._closed:
            raise RuntimeError("submit to a pool that was shut down")
        future: Future[T] = Future()
        self._jobs.put((future, fn))  # type: ignore[arg-type]
        return future

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job[0].cancel()
        for _ in range(self._workers):
            self._jobs.put(None)

    def __enter__(self) -> DaemonPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
