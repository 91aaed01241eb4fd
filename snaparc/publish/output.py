"""The shape every output being written shares.

An `Output` is published by `finish()` and leaves no trace after `abort()`.
Used as a context manager it aborts when the block raises (Ctrl-C included)
and finishes when it exits cleanly, so a caller cannot leave a half-built
output behind by forgetting either. Both methods must be idempotent: a
writer that failed may only be aborted, and aborting twice does nothing.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Output:
    def finish(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.finish()
