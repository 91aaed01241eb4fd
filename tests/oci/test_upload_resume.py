"""A chunked upload survives `kill -9` of the push (spec/OCI.md, section 4).

A `snaparc push` subprocess uploads the ~9 MiB weights in 1 MiB chunks
(`SNAPARC_OCI_CHUNK_SIZE`) through the fault proxy, which holds every PATCH
a second before forwarding it; once the fourth PATCH is held (three chunks
are in the registry), the push is killed with SIGKILL, so the fourth never
reaches the registry. The next push takes over the session file the dead
one left, asks the registry for the session's offset and sends only the
rest: the proxy counts the chunk bytes forwarded by each run. The artifact
then pulls byte for byte, and no session file is left.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import snaparc
from snaparc.mirror.oci.sessions import UploadSessions
from snaparc.mirror.oci.url import parse_oci_target
from snaparc.publish.names import temp_name
from tests.mirror.faultproxy import Fault, FaultProxy, Request

CHUNK = 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]


def _patches(proxy: FaultProxy) -> list[Request]:
    return [r for r in proxy.matching("/blobs/uploads/") if r.method == "PATCH"]


def _sessions(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if ".oci-upload.snaparc-tmp-" in p.name)


def test_a_killed_push_resumes_its_chunked_upload(
    repo: str, proxy: FaultProxy, archive_big: Path, big_files: dict[str, bytes],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    size = len(big_files["adapter/adapter_model.safetensors"])
    assert size > 8 * CHUNK
    monkeypatch.setenv("SNAPARC_OCI_CHUNK_SIZE", str(CHUNK))
    proxy.reset(lambda r: Fault("hold", delay=1.0) if r.method == "PATCH" else None)
    target = f"oci://127.0.0.1:{proxy.port}/{repo.split('/', 3)[3]}:v1"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    argv = [sys.executable, "-m", "snaparc", "push", str(archive_big), target, "--quiet"]
    push = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(_patches(proxy)) < 4:
            assert push.poll() is None, push.communicate()
            assert time.monotonic() < deadline, "the push never reached its fourth chunk"
            time.sleep(0.01)
        push.kill()
    finally:
        push.kill()
        push.wait(30)
    assert push.returncode == -9
    time.sleep(1.5)  # the held fourth PATCH: dropped, its client is gone
    first = [r.body_sent for r in _patches(proxy)]
    assert first[:3] == [CHUNK] * 3 and sum(first) == 3 * CHUNK, first
    assert len(_sessions(archive_big.parent)) == 1  # what the dead push left

    proxy.reset()
    snaparc.push(archive_big, target)
    second = _patches(proxy)
    assert sum(r.body_sent for r in second) == size - 3 * CHUNK  # only the rest went up
    asked = [r for r in proxy.matching("/blobs/uploads/") if r.method == "GET"]
    assert asked, "the registry was asked for the session's offset"
    assert _sessions(archive_big.parent) == []

    out = tmp_path / "pulled.dlmsnap"
    snaparc.pull(target, out)
    assert out.read_bytes() == archive_big.read_bytes()


def test_a_session_the_registry_lost_starts_the_blob_over(
    repo: str, archive_big: Path, big_files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    """A saved session the registry does not know (a URL of an upload that
    expired, or one the kill left behind the registry's offset) is dropped:
    the blob goes up whole in a new session, and the push succeeds."""
    monkeypatch.setenv("SNAPARC_OCI_CHUNK_SIZE", str(CHUNK))
    t = parse_oci_target(repo)
    digest = "sha256:" + hashlib.sha256(big_files["adapter/adapter_model.safetensors"]).hexdigest()
    bogus = f"http://{t.netloc}/v2/{t.repository}/blobs/uploads/0123-not-a-session?_state=x"
    record = {"registry": t.netloc, "repository": t.repository, "digest": digest, "location": bogus}
    # the session file of a dead process of this host
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    mine = temp_name(archive_big.parent, archive_big.name + ".oci-upload", "tmp")
    stale = mine.with_name(mine.name.replace(f"-{os.getpid()}@", f"-{dead}@"))
    stale.write_text(json.dumps(record))
    sessions = UploadSessions(archive_big, t.netloc, t.repository)
    assert sessions.find(digest) == bogus and not stale.exists()  # taken over
    sessions.close()
    assert _sessions(archive_big.parent) == []

    stale.write_text(json.dumps(record))
    snaparc.push(archive_big, f"{repo}:v1")
    assert _sessions(archive_big.parent) == []
    out = tmp_path / "pulled.dlmsnap"
    snaparc.pull(f"{repo}:v1", out)
    assert out.read_bytes() == archive_big.read_bytes()
