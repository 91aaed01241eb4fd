"""`open_store`: the store a mirror URL names, with the retry policy around it.

Apart from `snaparc.mirror.store` so that the store protocol does not import
its S3 implementation (which imports the protocol): the S3 client (obstore)
is imported only when an `s3://` URL is opened.
"""

from __future__ import annotations

from pathlib import Path

from snaparc.mirror.store import DirStore, RetryingStore, Store
from snaparc.mirror.url import (
    MirrorURL,
    S3Settings,
    TransferSettings,
    s3_settings,
    transfer_settings,
)

__all__ = ["open_store"]


def open_store(
    url: MirrorURL, *, settings: S3Settings | None = None, create: bool = False
) -> RetryingStore:
    """The store for `url`, wrapped in `RetryingStore`.

    `create` makes a missing mirror directory (push); buckets are never
    created. `settings` defaults to `s3_settings()` from the environment; its
    transfer settings (idle timeout, retries) apply to every request.
    """
    inner: Store
    transfer: TransferSettings
    if url.scheme == "file":
        transfer = settings.transfer if settings is not None else transfer_settings()
        inner = DirStore(Path(url.path), create=create)
    else:
        from snaparc.mirror.s3 import S3Store

        settings = settings or s3_settings()
        transfer = settings.transfer
        inner = S3Store(url.bucket, url.prefix, settings)
    return RetryingStore(inner, retries=transfer.retries)
