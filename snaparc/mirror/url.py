"""Mirror URLs, refs and S3 settings.

Accepted forms (spec/MIRROR.md, "Addressing"):

- a plain directory path (`./mirror`, `/srv/mirror`): the directory backend;
- `file:///abs/path` (or `file://localhost/abs/path`);
- `s3://bucket` or `s3://bucket/prefix/...`.

A target may end with `:REF` (a ref name) or `@ID` (64 lowercase hex, an
archive id). Only the last path segment is examined, so `s3://` and
directories with `:` earlier in the path parse correctly; a suffix that is
not a valid ref name or id stays part of the URL, and a trailing `/` ends
the URL explicitly (`./odd:name/`).

S3 settings come from flags, then the usual AWS environment variables
(read here, once, by `s3_settings`). Plain-http endpoints are refused unless
they are loopback addresses or `allow_http` is set. The transfer settings
every store request obeys (the idle time after which a request that makes no
progress is abandoned, and how often a failed request is retried) come from
flags, then `SNAPARC_IDLE_TIMEOUT` and `SNAPARC_RETRIES` (`transfer_settings`;
spec/MIRROR.md, "Timeouts and retries").
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote, urlsplit

from snaparc.errors import UsageError

REF_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ARCHIVE_ID = re.compile(r"^[0-9a-f]{64}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX_SEGMENT = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")


@dataclass(frozen=True, slots=True)
class MirrorURL:
    """Where a mirror lives: a local directory or an S3 bucket + prefix."""

    scheme: Literal["file", "s3"]
    path: str = ""  # directory, for scheme "file"
    bucket: str = ""  # for scheme "s3"
    prefix: str = ""  # for scheme "s3"; no leading or trailing "/"

    def __str__(self) -> str:
        if self.scheme == "file":
            return self.path
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


@dataclass(frozen=True, slots=True)
class MirrorTarget:
    """A mirror URL plus at most one of a ref name or an archive id."""

    url: MirrorURL
    ref: str | None = None
    archive_id: str | None = None

    def __str__(self) -> str:
        if self.archive_id:
            return f"{self.url}@{self.archive_id}"
        if self.ref:
            return f"{self.url}:{self.ref}"
        return str(self.url)


def check_ref_name(name: str) -> str:
    if not REF_NAME.match(name):
        raise UsageError(
            f"invalid ref name {name!r}: use letters, digits, '.', '_' and '-' "
            "(at most 128, starting with a letter or digit)"
        )
    return name


def _split_suffix(text: str) -> tuple[str, str | None, str | None]:
    cut = text.rfind("/")
    last = text[cut + 1 :]
    at = last.rfind("@")
    if at > 0 and ARCHIVE_ID.match(last[at + 1 :]):
        return text[: cut + 1 + at], None, last[at + 1 :]
    colon = last.rfind(":")
    if colon > 0 and REF_NAME.match(last[colon + 1 :]):
        return text[: cut + 1 + colon], last[colon + 1 :], None
    return text, None, None


def parse_url(text: str) -> MirrorURL:
    """Parse a mirror URL without any ref or id suffix."""
    if not text:
        raise UsageError("empty mirror URL")
    if "://" not in text:
        return MirrorURL("file", path=text)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise UsageError(f"file URL {text!r} names a remote host; use a local path")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise UsageError(f"file URL {text!r} needs an absolute path (file:///...)")
        return MirrorURL("file", path=path)
    if scheme == "s3":
        bucket = parts.netloc
        if not _BUCKET.match(bucket) or ".." in bucket:
            raise UsageError(f"invalid S3 bucket name {bucket!r} in {text!r}")
        if parts.query or parts.fragment:
            raise UsageError(f"S3 URL {text!r} must not have a query or fragment")
        prefix = parts.path.strip("/")
        for seg in prefix.split("/") if prefix else []:
            if not _PREFIX_SEGMENT.match(seg):
                raise UsageError(f"invalid S3 prefix segment {seg!r} in {text!r}")
        return MirrorURL("s3", bucket=bucket, prefix=prefix)
    raise UsageError(f"unsupported mirror URL scheme {scheme!r} (use a path, file:// or s3://)")


def looks_like_mirror_target(text: str) -> bool:
    """True for `s3://` and `file://` URLs, and for `DIR:REF` / `DIR@ID` where
    DIR is an existing directory; lets a command taking an archive path also
    accept a mirror (`materialize URL:REF DEST`). A path that exists as a
    file is never a mirror target."""
    lowered = text.lower()
    if lowered.startswith(("s3://", "file://")):
        return True
    if os.path.exists(text):
        return False
    base, ref, archive = _split_suffix(text)
    return (ref is not None or archive is not None) and os.path.isdir(base)


def parse_target(text: str) -> MirrorTarget:
    """Parse `URL`, `URL:REF` or `URL@ID`."""
    base, ref, archive = _split_suffix(text)
    return MirrorTarget(parse_url(base), ref=ref, archive_id=archive)


# --- transfer settings -----------------------------------------------------------

DEFAULT_IDLE_TIMEOUT = 30.0
DEFAULT_RETRIES = 5
# An upload slower than this on average is abandoned as stalled: 256 KiB/s,
# so a 64 MiB request gets 256 s beyond the idle time.
DEFAULT_MIN_UPLOAD_RATE = 256.0 * 1024
MAX_IDLE_TIMEOUT = 24 * 3600.0
MAX_RETRIES = 100
IDLE_TIMEOUT_ENV = "SNAPARC_IDLE_TIMEOUT"
MIN_UPLOAD_RATE_ENV = "SNAPARC_MIN_UPLOAD_RATE"
RETRIES_ENV = "SNAPARC_RETRIES"


@dataclass(frozen=True, slots=True)
class TransferSettings:
    """How every store request is bounded (spec/MIRROR.md, "Timeouts and retries").

    `idle_timeout`: seconds a request may make no progress (connect, or no
    byte received) before it is abandoned and retried; `retries`: how many
    times a failed request is retried before the command fails (exit 10).
    """

    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    retries: int = DEFAULT_RETRIES
    min_upload_rate: float = DEFAULT_MIN_UPLOAD_RATE

    def upload_timeout(self, largest_request: int) -> float:
        """Seconds an upload request of at most `largest_request` body bytes
        may take in all: sending a body reads nothing, so the idle time alone
        cannot notice a server that stopped reading it."""
        return self.idle_timeout + largest_request / self.min_upload_rate


def transfer_settings(
    *,
    idle_timeout: float | None = None,
    retries: int | None = None,
    env: Mapping[str, str] | None = None,
) -> TransferSettings:
    """Flags first (`--idle-timeout`, `--retries`), then SNAPARC_IDLE_TIMEOUT
    and SNAPARC_RETRIES, then the defaults (30 s, 5 retries); the minimum
    upload rate from SNAPARC_MIN_UPLOAD_RATE (bytes per second) or 256 KiB/s."""
    env = os.environ if env is None else env
    rate = DEFAULT_MIN_UPLOAD_RATE
    if env.get(MIN_UPLOAD_RATE_ENV):
        rate = _number(env[MIN_UPLOAD_RATE_ENV], MIN_UPLOAD_RATE_ENV, float)
        if not 1 <= rate <= 1e12:
            raise UsageError(
                f"{MIN_UPLOAD_RATE_ENV} must be bytes per second, from 1 to 1e12; got {rate!r}"
            )
    if idle_timeout is None and env.get(IDLE_TIMEOUT_ENV):
        idle_timeout = _number(env[IDLE_TIMEOUT_ENV], IDLE_TIMEOUT_ENV, float)
    if retries is None and env.get(RETRIES_ENV):
        retries = int(_number(env[RETRIES_ENV], RETRIES_ENV, int))
    idle = DEFAULT_IDLE_TIMEOUT if idle_timeout is None else idle_timeout
    count = DEFAULT_RETRIES if retries is None else retries
    return TransferSettings(check_idle_timeout(idle), check_retries(count), rate)


def _number(text: str, name: str, kind: type[float] | type[int]) -> float:
    try:
        return kind(text.strip())
    except ValueError:
        raise UsageError(f"{name} must be a number; got {text!r}") from None


def check_idle_timeout(value: float, *, option: str = "--idle-timeout") -> float:
    """Seconds, more than 0 and at most a day."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not 0 < value <= MAX_IDLE_TIMEOUT:
        raise UsageError(
            f"{option} (or {IDLE_TIMEOUT_ENV}) must be seconds, more than 0 and at most "
            f"{MAX_IDLE_TIMEOUT:.0f}; got {value!r}"
        )
    return float(value)


def check_retries(value: int, *, option: str = "--retries") -> int:
    """A whole number from 0 to MAX_RETRIES."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRIES:
        raise UsageError(
            f"{option} (or {RETRIES_ENV}) must be a whole number from 0 to {MAX_RETRIES}; "
            f"got {value!r}"
        )
    return value


# --- S3 settings ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class S3Settings:
    """Connection settings for S3 (never printed: it holds secrets)."""

    endpoint: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    allow_http: bool = False
    transfer: TransferSettings = field(default_factory=TransferSettings)

    def __repr__(self) -> str:
        return (
            f"S3Settings(endpoint={self.endpoint!r}, region={self.region!r}, "
            f"transfer={self.transfer!r}, ...)"
        )


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def s3_settings(
    *,
    endpoint: str | None = None,
    region: str | None = None,
    allow_http: bool = False,
    transfer: TransferSettings | None = None,
    env: Mapping[str, str] | None = None,
) -> S3Settings:
    """Flags first, then AWS_ENDPOINT_URL, AWS_REGION / AWS_DEFAULT_REGION,
    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN."""
    env = os.environ if env is None else env
    endpoint = endpoint or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
    region = region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None
    http = False
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"S3 endpoint {endpoint!r} must be an http(s) URL")
        if parts.scheme == "http":
            if not (allow_http or _is_loopback(parts.hostname)):
                raise UsageError(
                    f"S3 endpoint {endpoint!r} is plain http and not a loopback address; "
                    "pass --allow-http to use it anyway"
                )
            http = True
    return S3Settings(
        endpoint=endpoint,
        region=region,
        access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
        secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
        session_token=env.get("AWS_SESSION_TOKEN") or None,
        allow_http=http,
        transfer=transfer if transfer is not None else transfer_settings(env=env),
    )
