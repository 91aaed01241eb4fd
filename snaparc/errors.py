"""One error hierarchy for snaparc; every class carries its process exit code.

The CLI is the only layer that prints or exits: it catches `SnaparcError`
and exits with `err.exit_code`. The table is normative (spec/FORMAT.md,
"Exit codes") and stable: a code never changes meaning. A script must treat
any code it does not know as a failure.

| code | class                    | meaning                                              |
|------|--------------------------|------------------------------------------------------|
| 0    | -                        | success                                              |
| 1    | IntegrityError           | digest mismatch, corrupt/truncated data, missing blob |
| 2    | UsageError               | bad arguments, missing input                          |
| 3    | UnsafeArchiveError       | refused: paths, member types, limits, unlisted data   |
| 4    | UnsupportedVersionError  | archive needs a newer snaparc                         |
| 5    | DestinationError         | target exists / is a symlink / not usable             |
| 6    | DiskFullError            | not enough space (checked before, or ENOSPC)          |
| 7    | SourceError              | pack input cannot be archived as it is                |
| 8    | IOFailure                | an operating-system I/O error not covered above       |
| 9    | ExportError              | HF snapshot export / store / base-model problems      |
| 10   | RemoteError              | mirror: not found, permission, bucket missing         |
| 11   | SignatureError           | signature missing, malformed, or not valid            |
| 70   | (internal)               | a bug in snaparc: please report it                    |
| 130  | (interrupted)            | SIGINT / Ctrl-C; outputs cleaned up                   |
| 141  | (broken pipe)            | stdout's reader exited early (e.g. `cat ... | head`)  |
| 143  | (terminated)             | SIGTERM; outputs cleaned up as for Ctrl-C             |
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # stdout's reader went away (as if killed by SIGPIPE)
EXIT_TERMINATED = 143  # SIGTERM; outputs cleaned up as for Ctrl-C


class SnaparcError(Exception):
    """Root of every error snaparc raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return self.message


# --- 1: integrity ------------------------------------------------------------


class IntegrityError(SnaparcError):
    """Content does not match what the archive promises."""

    exit_code = 1


class CorruptArchiveError(IntegrityError):
    """Damaged zstd/tar data, bad checksums, or internal disagreement."""


class TruncatedArchiveError(CorruptArchiveError):
    """The stream ended before the archive did."""


class DigestMismatchError(IntegrityError):
    """A blob's bytes do not match its sha256 or blake3 digest."""

    def __init__(
        self, message: str, *, blob: str, algorithm: str, expected: str, actual: str
    ) -> None:
        super().__init__(message)
        self.blob = blob
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual


class FrameDigestMismatchError(DigestMismatchError):
    """One frame's content bytes do not match the blob's frame digest (format 1.2)."""

    def __init__(
        self, message: str, *, blob: str, algorithm: str, expected: str, actual: str, frame: int
    ) -> None:
        super().__init__(message, blob=blob, algorithm=algorithm, expected=expected, actual=actual)
        self.frame = frame


class MissingBlobError(IntegrityError):
    """A blob listed in the manifest is not where it must be."""


class IdentityMismatchError(IntegrityError):
    """The archive read is not the one asked for (`URL@ID`, or a ref naming ID)."""

    def __init__(self, message: str, *, expected: str, actual: str) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


# --- 2: usage ----------------------------------------------------------------


class UsageError(SnaparcError):
    """Bad arguments or missing input."""

    exit_code = 2


class InputNotFoundError(UsageError, FileNotFoundError):
    """The input archive or directory does not exist."""


class NotRegularFileError(UsageError):
    """A path that must name a regular file names a FIFO, directory, socket or device.

    `kind` says what it is ("FIFO", "directory", ...). Raised before the
    path is read, so a FIFO cannot block the command (snaparc.sidefiles).
    """

    def __init__(self, message: str, *, path: str, kind: str) -> None:
        super().__init__(message, path=path)
        self.kind = kind


# --- 3: refused as unsafe ----------------------------------------------------


class UnsafeArchiveError(SnaparcError):
    """The archive is outside the spec's profile; refused, never repaired."""

    exit_code = 3


class UnsafePathError(UnsafeArchiveError):
    """A path that could escape, collide, or is not a canonical name."""


class UnsafeMemberError(UnsafeArchiveError):
    """A tar member type or header field the profile does not allow."""


class UnlistedMemberError(UnsafeArchiveError):
    """A member present in the stream but not listed in the manifest."""


class TrailingDataError(UnsafeArchiveError):
    """Bytes or frames after the end of the archive."""


class UnexpectedFrameError(UnsafeArchiveError):
    """A zstd frame (skippable or not) where the spec allows none."""


class ManifestError(UnsafeArchiveError):
    """The embedded manifest is missing, unparsable, ill-shaped or not canonical."""


class NonCanonicalError(UnsafeArchiveError):
    """Bytes that carry the right meaning in a form the spec does not allow."""


class SafetensorsError(UnsafeArchiveError):
    """A `*.safetensors` file outside the strict safetensors profile; `rule` names
    the rule it breaks (spec/FORMAT.md, "Safetensors profile")."""

    def __init__(self, message: str, *, rule: str, path: str | None = None) -> None:
        super().__init__(message, path=path)
        self.rule = rule


class LimitExceededError(UnsafeArchiveError):
    """A resource limit would be exceeded; raise it with the named flag."""

    def __init__(self, message: str, *, limit: str, value: int, maximum: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.value = value
        self.maximum = maximum


# --- 4: version --------------------------------------------------------------


class UnsupportedVersionError(SnaparcError):
    """The archive's major format version is newer than this reader."""

    exit_code = 4


# --- 5..11 -------------------------------------------------------------------


class DestinationError(SnaparcError, FileExistsError):
    """The output target exists, is a symlink, or cannot be used."""

    exit_code = 5


class DiskFullError(SnaparcError, OSError):
    """Not enough free space, found before writing or as ENOSPC while writing."""

    exit_code = 6


class SourceError(SnaparcError):
    """The tree given to `pack` cannot be archived as it is."""

    exit_code = 7


class IOFailure(SnaparcError, OSError):
    """An operating-system I/O error with no more specific class."""

    exit_code = 8


class ExportError(SnaparcError):
    """HF snapshot export, store layout or base-model spec problems."""

    exit_code = 9


class ExportManifestError(ExportError):
    """A snapshot_manifest.json that is missing, unparsable, ill-shaped or unmet."""


class RemoteError(SnaparcError):
    """A mirror could not be used: not found, permission, bucket missing."""

    exit_code = 10


class RemoteNotFoundError(RemoteError, FileNotFoundError):
    """An object, ref or archive id is not in the mirror."""


class SignatureError(SnaparcError):
    """A signature is required but missing, malformed, or does not verify."""

    exit_code = 11


ALL_ERROR_CLASSES: tuple[type[SnaparcError], ...] = (
    IntegrityError,
    CorruptArchiveError,
    TruncatedArchiveError,
    DigestMismatchError,
    FrameDigestMismatchError,
    MissingBlobError,
    IdentityMismatchError,
    UsageError,
    InputNotFoundError,
    NotRegularFileError,
    UnsafeArchiveError,
    UnsafePathError,
    UnsafeMemberError,
    UnlistedMemberError,
    TrailingDataError,
    UnexpectedFrameError,
    ManifestError,
    NonCanonicalError,
    SafetensorsError,
    LimitExceededError,
    UnsupportedVersionError,
    DestinationError,
    DiskFullError,
    SourceError,
    IOFailure,
    ExportError,
    ExportManifestError,
    RemoteError,
    RemoteNotFoundError,
    SignatureError,
)
