"""Chunked uploads that outlive a killed push (spec/OCI.md, section 4).

While a push uploads a blob in chunks, the upload's URL (the registry's
`Location`, which names the session and, for CNCF distribution, the offset
it expects) is kept in a temp file beside the archive, under the temp-naming
scheme of `snaparc.publish.names`:

    .ARCHIVE.oci-upload.snaparc-tmp-PID@HOST-TOKEN

It holds one JSON object: the registry, the repository, the blob digest and
the URL, rewritten before every PATCH. The file follows the rules of every
temp file: this process claims it (Ctrl-C and SIGTERM remove it, with the
rest of the command's temp files), and a push that finishes removes it. A
push killed with SIGKILL (or a power cut) leaves it; the next push of the
same archive takes it over (`adopt_stale`: only a dead process's file of
this host, renamed to this process's name), removes any other stale ones,
and, when it reaches the same blob for the same repository, asks the
registry how much of that session it holds (`GET` of the URL, its `Range`)
and continues from there. A session the registry no longer knows (expired,
or moved past the saved URL because the kill came after a chunk arrived but
before its answer was saved) is dropped and the blob starts over. The file
is a hint only: nothing in it is trusted beyond where to ask, and every byte
still goes up under the registry's digest check.

A directory where the file cannot be written (a read-only mount) just means
no resume.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from snaparc.publish.claims import disown, own
from snaparc.publish.names import adopt_stale, clean_stale, temp_name

MAX_SESSION_BYTES = 64 * 1024
SUFFIX = ".oci-upload"


class UploadSessions:
    """The upload sessions file of one push of `archive` to `registry`/`repository`."""

    def __init__(self, archive: Path, registry: str, repository: str) -> None:
        self.parent = archive.parent
        self.name = archive.name + SUFFIX
        self.registry, self.repository = registry, repository
        self._path: Path | None = None
        self._saved: dict[str, str] = {}
        try:
            self._path = adopt_stale(self.parent, self.name)
            clean_stale(self.parent, self.name)
        except OSError:
            self._path = None
        if self._path is not None:
            self._saved = self._read(self._path)

    def _read(self, path: Path) -> dict[str, str]:
        try:
            with open(path, "rb") as f:
                obj = json.loads(f.read(MAX_SESSION_BYTES))
        except (OSError, ValueError):
            return {}
        if not isinstance(obj, dict) or not all(isinstance(v, str) for v in obj.values()):
            return {}
        if (obj.get("registry"), obj.get("repository")) != (self.registry, self.repository):
            return {}
        return obj

    def find(self, digest: str) -> str | None:
        """The saved upload URL of `digest`, if the killed push was uploading it here."""
        if self._saved.get("digest") == digest:
            return self._saved.get("location")
        return None

    def save(self, digest: str, location: str) -> None:
        record = {
            "registry": self.registry,
            "repository": self.repository,
            "digest": digest,
            "location": location,
        }
        try:
            if self._path is None:
                self._path = temp_name(self.parent, self.name, "tmp")
                own(self._path, is_dir=False)
            with open(self._path, "w", encoding="utf-8") as f:
                f.write(json.dumps(record, sort_keys=True))
        except OSError:
            self.close()  # no resume from here, nothing else lost
        self._saved = record

    def done(self, digest: str) -> None:
        """The blob is complete: its session is no longer worth keeping."""
        if self._saved.get("digest") == digest:
            self.close()

    def close(self) -> None:
        """Remove the file (a finished push, or one that failed cleanly)."""
        path, self._path, self._saved = self._path, None, {}
        if path is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)
            disown(path)
