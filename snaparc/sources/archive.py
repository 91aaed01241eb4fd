"""The one way into an archive: classify what a command names, then open it.

`classify_source(text)` decides, once and without reading any archive byte,
what `text` is:

- `-`: standard input (a stream: not seekable, size unknown);
- a split archive (`X.dlmsnap.001`, its index, or the base name `X.dlmsnap`
  when only the volumes exist): seekable, every volume checked as it is read;
- a file (a regular file is seekable; a FIFO such as `<(cat A)` streams);
- a mirror target: `s3://…` or `file://…` with `:REF` or `@ID`, or `DIR:REF`
  / `DIR@ID` where DIR is a directory (a path that exists as a file is always
  a file);
- an OCI artifact: `oci://HOST[:PORT]/REPO:TAG` or `…@sha256:DIGEST`
  (spec/OCI.md), rebuilt from the registry's raw layers.

Malformed input is refused here with a usage error (exit 2) naming the
option: an empty name, a NUL character, a mirror without a ref or id, a `:`
or `@` suffix that is not a ref name or an archive id, a malformed `s3://`
or `file://` URL, another URL scheme (`ftp://…`), a missing path, a
directory. `mirror_url` applies the same rules to a mirror itself (push,
`mirror ls`), where a ref or id is optional.

`open_source(source)` opens it as an `ArchiveInput` (`snaparc.archive.input`):
the stream, its size where known (a mirror knows its record's file size),
whether it can seek, and the identity the user asked for (`URL@ID`, or the id
`URL:REF` resolved to). Every reading function checks that identity on the
manifest it reads, so a mirror record that rebuilds another archive is
refused (exit 1) by every command alike.
"""

from __future__ import annotations

import io
import os
import re
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal, cast

from snaparc.archive.input import ArchiveInput
from snaparc.errors import InputNotFoundError, IOFailure, UsageError
from snaparc.mirror.oci.url import OCITarget, is_oci_url, parse_oci_target
from snaparc.mirror.url import (
    ARCHIVE_ID,
    REF_NAME,
    MirrorTarget,
    S3Settings,
    TransferSettings,
    looks_like_mirror_target,
    parse_target,
)

if TYPE_CHECKING:
    from snaparc.mirror.oci.client import RegistryClient
    from snaparc.mirror.resume import ResumeAt

STDIN = "-"
SourceKind = Literal["stdin", "file", "split", "mirror", "oci"]


@dataclass(frozen=True, slots=True)
class Source:
    """What a command was told to read, classified (nothing opened yet)."""

    text: str
    kind: SourceKind
    path: Path | None = None  # file and split
    target: MirrorTarget | None = None  # mirror
    oci: OCITarget | None = None  # oci

    @property
    def is_local(self) -> bool:
        """A file or split volumes on this machine (what `push` and `sign` take)."""
        return self.kind in ("file", "split")

    def __str__(self) -> str:
        return self.text


def classify_source(text: str | os.PathLike[str], *, option: str = "ARCHIVE") -> Source:
    """Classify an archive argument; `option` names it in messages."""
    text = _check_text(text, option)
    if not text:
        raise UsageError(f"{option} is empty: name an archive file, - for stdin, or URL:REF")
    if text == STDIN:
        return Source(text, "stdin")
    if is_oci_url(text):
        return Source(text, "oci", oci=oci_target(text, option=option))
    if _is_mirror_syntax(text):
        return Source(text, "mirror", target=mirror_target(text, option=option))
    path = Path(text)
    if _is_split(path):
        return Source(text, "split", path=path)
    try:
        st = path.stat()
    except FileNotFoundError:
        _refuse_malformed_suffix(text, option)
        _refuse_other_scheme(text, option)
        raise InputNotFoundError(f"no such archive: {path}", path=text) from None
    except OSError as exc:
        raise IOFailure(f"cannot open {path}: {exc.strerror}", path=text) from None
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(
            f"{option} {path} is a directory, not an archive "
            "(a mirror directory needs :REF or @ID)",
            path=text,
        )
    return Source(text, "file", path=path)


def mirror_target(text: str, *, option: str = "URL:REF|URL@ID") -> MirrorTarget:
    """A mirror target that names one archive (`URL:REF` or `URL@ID`)."""
    text = _check_text(text, option)
    target = _parse_target(text, option)
    if target.ref is None and target.archive_id is None:
        _refuse_malformed_suffix(text, option, always=True)
        raise UsageError(
            f"{option}: {text!r} names a mirror but no archive: append :REF or @ID "
            "(URL:REF or URL@ID; `snaparc mirror ls URL` lists them)"
        )
    return target


def oci_target(text: str, *, option: str = "URL:REF|URL@ID") -> OCITarget:
    """An `oci://` target that names one artifact (`:TAG` or `@sha256:DIGEST`)."""
    target = parse_oci_target(_check_text(text, option), option=option)
    if target.reference is None:
        raise UsageError(
            f"{option}: {text!r} names a repository but no artifact: append :TAG or @sha256:DIGEST"
        )
    return target


def mirror_url(text: str, *, option: str = "URL") -> MirrorTarget:
    """A mirror, which may also name an archive (`URL`, `URL:REF`, `URL@ID`),
    as push and `mirror ls` take it.

    `DIR:` or `DIR@xyz` after an existing directory DIR is refused (unless that
    whole name exists), where the URL grammar alone would take it for a new
    directory named `DIR:` and push there.
    """
    text = _check_text(text, option)
    if not text:
        raise UsageError(f"{option} is empty: give a directory, file:///path or s3://bucket/prefix")
    target = _parse_target(text, option)
    if target.ref is None and target.archive_id is None and not os.path.exists(text):
        _refuse_malformed_suffix(text, option)
    return target


def _check_text(text: object, option: str) -> str:
    if not isinstance(text, str | os.PathLike):
        raise UsageError(f"{option} must be a path or URL; got {text!r}")
    text = os.fspath(text)
    if not isinstance(text, str):
        raise UsageError(f"{option} must be a path or URL; got {text!r}")
    if "\0" in text:
        raise UsageError(f"{option} contains a NUL character")
    return text


def _parse_target(text: str, option: str) -> MirrorTarget:
    try:
        return parse_target(text)
    except UsageError as exc:
        raise UsageError(f"{option}: {exc}") from None


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def _refuse_other_scheme(text: str, option: str) -> None:
    """`ftp://host/x` that is no path: say the scheme is unknown, not 'not found'."""
    match = _SCHEME.match(text)
    if match:
        raise UsageError(
            f"{option}: unsupported mirror URL scheme {match.group(1)!r} in {text!r} "
            "(use a path, file://, s3:// or oci://)"
        )


def _refuse_malformed_suffix(text: str, option: str, *, always: bool = False) -> None:
    """`DIR:` or `DIR@xyz`: say what is wrong with the suffix instead of 'not found'."""
    last = text.rstrip("/") if always else text
    if last != text:
        return  # a trailing '/' ends the URL explicitly
    segment = last[last.rfind("/") + 1 :]
    base = last[: last.rfind("/") + 1]
    for sep, rule, kind in (
        ("@", ARCHIVE_ID, "an archive id (64 lowercase hex)"),
        (":", REF_NAME, "a ref name"),
    ):
        cut = segment.rfind(sep)
        if cut <= 0:
            continue
        suffix = segment[cut + 1 :]
        where = base + segment[:cut]
        if rule.match(suffix) or not (always or os.path.isdir(where)):
            continue
        shown = repr(suffix) if suffix else "nothing"
        raise UsageError(
            f"{option}: {text!r}: {sep} is followed by {shown}, not {kind} "
            "(use URL:REF or URL@ID; end a directory name that holds "
            f"'{sep}' with '/')"
        )


def _is_mirror_syntax(text: str) -> bool:
    if "://" not in text and ":" not in text and "@" not in text:
        return False  # a plain path: no need to look further
    return looks_like_mirror_target(text)


def _is_split(path: Path) -> bool:
    from snaparc.airgap.volumes import is_split_archive

    return is_split_archive(path)


@contextmanager
def open_source(
    source: Source | str | os.PathLike[str],
    *,
    s3: S3Settings | None = None,
    jobs: int = 4,
    allow_http: bool = False,
    resume: ResumeAt | None = None,
) -> Iterator[ArchiveInput]:
    """Open a source for reading. `s3` (default: the AWS environment), `jobs`
    (parts fetched ahead) and `resume` (where a killed run's parts are found
    and this run's kept, `snaparc.mirror.resume`) matter for mirror targets;
    `jobs`, `resume`, `allow_http` (plain http to a registry that is not
    loopback) and the transfer settings of `s3` (idle timeout, retries) for
    OCI."""
    if not isinstance(source, Source):
        source = classify_source(source)
    if source.kind == "stdin":
        yield _open_stdin()
        return
    if source.kind == "oci":
        from snaparc.mirror.oci.pull import open_oci_input

        assert source.oci is not None
        with open_oci_input(
            source.oci,
            client=registry_client(source.oci, allow_http, s3.transfer if s3 else None),
            jobs=jobs,
            resume=resume,
        ) as opened:
            yield opened
        return
    if source.kind == "mirror":
        from snaparc.mirror.pull import open_mirror_input

        assert source.target is not None
        with open_mirror_input(source.target, settings=s3, jobs=jobs, resume=resume) as opened:
            yield opened
        return
    assert source.path is not None
    if source.kind == "split":
        from snaparc.airgap.volumes import open_volumes

        with open_volumes(source.path) as volumes:
            stream = cast(BinaryIO, volumes)
            yield ArchiveInput(stream, source.text, volumes.size, True)
        return
    with _open_file(source.path) as f:
        st = os.fstat(f.fileno())
        regular = stat.S_ISREG(st.st_mode)
        yield ArchiveInput(f, source.text, st.st_size if regular else None, f.seekable())


def registry_client(
    target: OCITarget, allow_http: bool = False, transfer: TransferSettings | None = None
) -> RegistryClient:
    """A client for `target`'s registry with the credentials the environment
    holds for it (spec/OCI.md, "Authentication"); `transfer` (idle timeout,
    retries) defaults to the environment's (`transfer_settings`)."""
    from snaparc.mirror.oci.client import RegistryClient, credentials_for

    return RegistryClient(
        target,
        credentials=credentials_for(target.netloc),
        allow_http=allow_http,
        transfer=transfer,
    )


def _open_stdin() -> ArchiveInput:
    fd = os.dup(sys.stdin.fileno())
    _grow_pipe(fd)
    stream = io.FileIO(fd, "rb", closefd=True)
    return ArchiveInput(cast(BinaryIO, stream), "stdin", None, stream.seekable())


def _open_file(path: Path) -> BinaryIO:
    try:
        return open(path, "rb", buffering=0)
    except FileNotFoundError:
        raise InputNotFoundError(f"no such archive: {path}", path=str(path)) from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not an archive", path=str(path)) from None
    except OSError as exc:
        raise IOFailure(f"cannot open {path}: {exc.strerror}", path=str(path)) from None


_F_SETPIPE_SZ = 1031  # Linux fcntl: resize a pipe's buffer


def _grow_pipe(fd: int, size: int = 1 << 20) -> None:
    """Ask for a 1 MiB pipe buffer (default 64 KiB): fewer, larger reads and
    fewer context switches with the writer. Harmless where unsupported."""
    try:
        import fcntl

        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, _F_SETPIPE_SZ, size)
    except OSError:
        pass
