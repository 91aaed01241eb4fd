"""OCI transfers through a faulty network: the mirrors' contract (spec/OCI.md,
section 7; spec/MIRROR.md, "Timeouts and retries").

The fault-injecting proxy of the mirror tests (tests/mirror/faultproxy.py)
sits between snaparc and the real registry: a blob response cut mid-body,
stalled mid-body (socket kept open), a 503 on every k-th request, a response
that never comes, a 401 / 403 / 404. For each: the command succeeds with the
archive byte for byte, or fails with exit 10 after the documented retries,
with nothing published and no temp file left. A broken blob GET resumes with
a `Range` request; what the proxy relayed is counted. Idle timeouts are short
(a second) so that the tests are quick; nothing asserts a duration.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import snaparc
from snaparc.cli import main
from snaparc.errors import SnaparcError
from snaparc.mirror.oci.pull import READ_CHUNK
from tests.mirror.faultproxy import Fault, FaultProxy, Request

ROOT = Path(__file__).resolve().parents[2]
IDLE = "1"  # seconds: long enough for a loaded machine, short for a test
WEIGHTS = "adapter/adapter_model.safetensors"


@pytest.fixture(autouse=True)
def _short_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNAPARC_IDLE_TIMEOUT", IDLE)
    monkeypatch.setenv("SNAPARC_RETRIES", "3")
    from snaparc.mirror.oci import client as client_mod

    monkeypatch.setattr(client_mod, "_sleep", lambda s: None)


def _via(proxy: FaultProxy, url: str) -> str:
    """`url` (oci://127.0.0.1:REGISTRY/...) through the proxy."""
    rest = url.split("/", 3)[3]
    return f"oci://127.0.0.1:{proxy.port}/{rest}"


@pytest.fixture
def pushed(repo: str, archive_big: Path) -> str:
    snaparc.push(archive_big, f"{repo}:v1")
    return f"{repo}:v1"


def _weights(big_files: dict[str, bytes]) -> tuple[str, int]:
    data = big_files[WEIGHTS]
    return "sha256:" + hashlib.sha256(data).hexdigest(), len(data)


def _first_get(path: str, fault: Fault) -> Callable[[Request], Fault | None]:
    seen: list[Request] = []

    def rule(request: Request) -> Fault | None:
        if request.method == "GET" and path in request.path and not seen:
            seen.append(request)
            return fault
        return None

    return rule


def _out(tmp_path: Path) -> Path:
    (tmp_path / "out").mkdir()
    return tmp_path / "out" / "pulled.dlmsnap"


def _nothing_left(out: Path) -> None:
    assert not out.exists()
    assert [n for n in os.listdir(out.parent) if "snaparc" in n] == []


@pytest.mark.parametrize("kind", ["cut", "stall"])
def test_a_broken_blob_response_is_resumed_with_a_range_request(
    pushed: str, proxy: FaultProxy, archive_big: Path, big_files: dict[str, bytes],
    tmp_path: Path, kind: str,
) -> None:  # fmt: skip
    """Cut (FIN after 2 MiB) or stalled (nothing more, socket open) mid-body:
    the pull asks for the rest with a Range request and gets every byte once."""
    digest, size = _weights(big_files)
    proxy.reset(_first_get(f"/blobs/{digest}", Fault(kind, after=2 * READ_CHUNK)))  # type: ignore[arg-type]
    out = _out(tmp_path)
    argv = ["pull", _via(proxy, pushed), "-o", str(out), "--quiet", "--idle-timeout", IDLE]
    assert main(argv) == 0
    assert out.read_bytes() == archive_big.read_bytes()
    if kind == "stall":
        assert proxy.stalled.is_set()
    gets = proxy.matching(f"/blobs/{digest}")
    assert len(gets) == 2 and gets[0].range is None
    # The rest from where the pull got to: at most one read short of what was
    # relayed (a read that timed out in the socket's buffer loses its bytes).
    resumed = int((gets[1].range or "").removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed <= gets[0].body_relayed < size
    assert gets[0].body_relayed - resumed <= READ_CHUNK
    assert gets[1].body_relayed == size - resumed


def test_a_503_on_every_third_request_is_retried(
    repo: str, proxy: FaultProxy, archive_big: Path, tmp_path: Path
) -> None:
    """Push (the streamed PUT of a blob starts over) and pull both succeed."""
    counter = itertools.count(1)

    def rule(request: Request) -> Fault | None:
        return Fault("status", status=503) if next(counter) % 3 == 0 else None

    proxy.reset(rule)
    target = _via(proxy, f"{repo}:v1")
    pushed = snaparc.push(archive_big, target)
    assert pushed.report.retries > 0
    assert any(r.fault and r.method == "PUT" for r in proxy.requests)  # a PUT was refused too
    out = _out(tmp_path)
    pulled = snaparc.pull(target, out)
    assert out.read_bytes() == archive_big.read_bytes()
    assert pulled.report.retries > 0
    assert snaparc.verify(target).archive_id == pulled.report.archive_id


def test_a_lost_answer_to_a_blob_put_restarts_the_blob(
    repo: str, proxy: FaultProxy, archive_big: Path, tmp_path: Path
) -> None:
    """The registry got the whole PUT but its answer never arrived (cut
    before a byte of it): the blob is uploaded again in a new session."""
    first: list[Request] = []

    def rule(request: Request) -> Fault | None:
        if request.method == "PUT" and "/blobs/uploads/" in request.path and not first:
            first.append(request)
            return Fault("cut", after=0)
        return None

    proxy.reset(rule)
    target = _via(proxy, f"{repo}:v1")
    assert snaparc.push(archive_big, target).report.retries >= 1
    assert first and first[0].relayed == 0
    out = _out(tmp_path)
    snaparc.pull(target, out)
    assert out.read_bytes() == archive_big.read_bytes()


def test_retries_spent_is_exit_10_and_nothing_is_published(
    pushed: str, proxy: FaultProxy, big_files: dict[str, bytes], tmp_path: Path
) -> None:
    digest, _ = _weights(big_files)

    def rule(request: Request) -> Fault | None:
        return Fault("status", status=503) if f"/blobs/{digest}" in request.path else None

    proxy.reset(rule)
    out = _out(tmp_path)
    argv = ["pull", _via(proxy, pushed), "-o", str(out), "--quiet", "--retries", "2"]
    assert main(argv) == 10
    _nothing_left(out)
    assert len(proxy.matching(f"/blobs/{digest}")) == 3  # the first try and 2 retries


def test_a_response_that_never_comes_is_abandoned_then_given_up(
    pushed: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    """The manifest GET stalls before its first byte, every time: each
    attempt is abandoned after the idle timeout, then the command fails."""
    proxy.reset(lambda r: Fault("stall", after=0) if "/manifests/" in r.path else None)
    out = _out(tmp_path)
    with pytest.raises(SnaparcError) as info:
        snaparc.pull(_via(proxy, pushed), out)
    assert info.value.exit_code == 10
    assert "idle timeout" in str(info.value)
    assert len(proxy.matching("/manifests/")) == 4  # SNAPARC_RETRIES=3
    _nothing_left(out)


@pytest.mark.parametrize("status", [401, 403, 404])
def test_refusals_are_not_retried(
    pushed: str, proxy: FaultProxy, big_files: dict[str, bytes], tmp_path: Path, status: int
) -> None:
    digest, _ = _weights(big_files)
    proxy.reset(lambda r: Fault("status", status=status) if f"/blobs/{digest}" in r.path else None)
    out = _out(tmp_path)
    with pytest.raises(SnaparcError) as info:
        snaparc.pull(_via(proxy, pushed), out)
    assert info.value.exit_code == 10
    assert len(proxy.matching(f"/blobs/{digest}")) == 1
    _nothing_left(out)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
@pytest.mark.parametrize("command", ["pull", "verify"])
def test_a_signal_during_a_stall_exits_at_once_and_cleans_up(
    pushed: str, proxy: FaultProxy, big_files: dict[str, bytes], tmp_path: Path,
    sig: int, code: int, command: str,
) -> None:  # fmt: skip
    """The idle timeout is a minute: only the signal can end the command, and
    it must not wait for the stalled socket."""
    digest, _ = _weights(big_files)
    proxy.reset(_first_get(f"/blobs/{digest}", Fault("stall", after=1000)))
    out = _out(tmp_path)
    argv = [sys.executable, "-m", "snaparc", command, _via(proxy, pushed)]
    argv += ["-o", str(out)] if command == "pull" else []
    env = dict(os.environ, SNAPARC_IDLE_TIMEOUT="60", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proxy.stalled.wait(60), "the command never reached the stall"
        time.sleep(0.2)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)  # far less than the 60 s idle timeout
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert "Traceback" not in err, err
    _nothing_left(out)
