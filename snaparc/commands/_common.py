"""Arguments and output helpers shared by the subcommands (light imports only).

The commands only parse: every value is checked by the API function they
call (`snaparc.api`), which names the option in its message.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from snaparc.api import Limits, S3Settings
    from snaparc.progress import Progress

# The defaults of the hostile-input limits (snaparc.format.limits.Limits),
# spelled here so that building the parser imports nothing.
_LIMIT_DEFAULTS = (
    ("--max-manifest-bytes", 64 * 1024 * 1024),
    ("--max-files", 100_000),
    ("--max-total-bytes", 4096 * 1024**3),
)


def add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        metavar="N",
        help="worker threads (default 0 = one per available core)",
    )


def add_oms_ignore(p: argparse.ArgumentParser) -> None:
    """model_signing's ignore options (`--ignore-paths`, `--no-ignore-git-paths`)."""
    p.add_argument(
        "--oms-ignore",
        action="append",
        default=[],
        metavar="PATH",
        help="leave PATH (relative to the snapshot root; a directory: all below it) out of "
        "the OMS signature; repeatable",
    )
    p.add_argument(
        "--oms-include-git-paths",
        action="store_true",
        help="sign/check .git, .gitattributes, .github, .gitignore too "
        "(model_signing's --no-ignore-git-paths)",
    )


def add_no_resume(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--no-resume",
        action="store_true",
        help=f"start afresh: do not reuse what a killed run of {what} had fetched",
    )


def print_transfer(done: Any) -> None:
    """The bytes a mirror read fetched, skipped (resumed) and retried, if any."""
    t = getattr(done, "transfer", None)
    if t is not None:
        print(t.describe())


def add_progress(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quiet", "-q", action="store_true", help="no progress and no summary")
    g.add_argument("--progress", action="store_true", help="show progress even if not a terminal")


def add_limits(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("limits (hostile-input protection; raise only for trusted input)")
    for option, default in _LIMIT_DEFAULTS:
        g.add_argument(option, type=int, default=default, metavar="N", help=f"default {default}")


def limits_from(args: argparse.Namespace) -> Limits:
    from snaparc.api import Limits

    return Limits(
        max_manifest_bytes=args.max_manifest_bytes,
        max_files=args.max_files,
        max_total_bytes=args.max_total_bytes,
    )


def add_allow_http(p: argparse.ArgumentParser) -> None:
    """For the commands that read an archive (or a --base) from anywhere."""
    p.add_argument(
        "--allow-http",
        action="store_true",
        help="speak plain http to an oci:// registry that is not a loopback address "
        "(default: https; spec/OCI.md)",
    )


def add_s3(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "S3 (also from AWS_ENDPOINT_URL, AWS_REGION/AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)"
    )
    g.add_argument("--endpoint", metavar="URL", help="S3 endpoint URL (e.g. a MinIO server)")
    g.add_argument("--region", help="S3 region")
    g.add_argument(
        "--allow-http",
        action="store_true",
        help="allow a plain-http endpoint that is not a loopback address",
    )
    t = p.add_argument_group("transfers (spec/MIRROR.md, 'Timeouts and retries')")
    t.add_argument(
        "--idle-timeout",
        type=float,
        metavar="SECONDS",
        help="abandon and retry a request that receives nothing for this long "
        "(default 30; also SNAPARC_IDLE_TIMEOUT)",
    )
    t.add_argument(
        "--retries",
        type=int,
        metavar="N",
        help="retries of a failed request before giving up with exit 10 "
        "(default 5, 0 = fail at the first error; also SNAPARC_RETRIES)",
    )


def s3_from(args: argparse.Namespace) -> S3Settings | None:
    """S3 and transfer settings from the flags and the environment; None when no
    flag was given (the API then reads the environment when, and only if, it
    opens a mirror)."""
    endpoint = getattr(args, "endpoint", None)
    region = getattr(args, "region", None)
    allow_http = getattr(args, "allow_http", False)
    idle_timeout = getattr(args, "idle_timeout", None)
    retries = getattr(args, "retries", None)
    if (endpoint, region, idle_timeout, retries) == (None,) * 4 and not allow_http:
        return None
    from snaparc.api import s3_settings, transfer_settings
    from snaparc.errors import UsageError

    for option, value in (("--endpoint", endpoint), ("--region", region)):
        if value is not None and not value.strip():
            raise UsageError(f"{option} is empty")
    transfer = transfer_settings(idle_timeout=idle_timeout, retries=retries)
    try:
        return s3_settings(
            endpoint=endpoint, region=region, allow_http=allow_http, transfer=transfer
        )
    except UsageError as exc:
        raise UsageError(f"--endpoint: {exc}") from None


class Meter:
    """The progress factory the API calls; remembers the meter to close it.

    Use it as `with Meter(args, "unpack") as meter: unpack(..., progress=meter)`.
    """

    def __init__(self, args: argparse.Namespace, label: str) -> None:
        self.args = args
        self.label = label
        self.progress: Progress | None = None

    def __call__(self, total: int | None) -> Progress | None:
        if getattr(self.args, "quiet", False):
            return None
        if getattr(self.args, "progress", False) or sys.stderr.isatty():
            from snaparc.progress import Progress

            self.progress = Progress(self.label, total)
        return self.progress

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress = None

    def __enter__(self) -> Meter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def print_json(obj: Any, *, stream: Any = None) -> None:
    out = stream if stream is not None else sys.stdout
    out.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")
