"""Mirror transfers through a faulty network (spec/MIRROR.md, "Timeouts and retries").

A fault-injecting proxy on 127.0.0.1 (tests/mirror/faultproxy.py) sits
between snaparc and the moto S3 server: responses cut after N bytes, stalled
after N bytes (socket kept open), connections reset on connect, a slow drip,
a 503 SlowDown on every k-th request, a 403. For each: the command succeeds,
or fails with exit 10 after the documented retries, with nothing published
and no temp file left; the bytes fetched are counted and bounded; a broken
read resumes with a range request. Idle timeouts are short (fractions of a
second) so that the tests are quick.
"""

from __future__ import annotations

import dataclasses
import io
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from snaparc import api
from snaparc.cli import main
from snaparc.mirror.layout import decode_record, decode_ref, record_key, ref_key
from snaparc.mirror.s3 import READ_CHUNK
from snaparc.mirror.store import open_store
from snaparc.mirror.url import S3Settings, TransferSettings, parse_url, s3_settings
from snaparc.progress import Progress

from .conftest import write_tree
from .faultproxy import Fault, FaultProxy, Request

IDLE = 1.0  # seconds; long enough for a loaded test machine, short for a test
BIG = 3 * 1024 * 1024  # one incompressible blob: a part of ~3 MiB


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    rng = random.Random(10)
    files = {"w/big.bin": rng.randbytes(BIG), "a.json": b'{"r": 8}\n', "b.txt": b"x" * 1000}
    src = write_tree(tmp_path / "src", files)
    out = tmp_path / "a.dlmsnap"
    assert main(["pack", str(src), "-o", str(out), "--quiet"]) == 0
    return out


def _settings(endpoint: str, *, idle: float = IDLE, retries: int = 3) -> S3Settings:
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }
    return s3_settings(env=env, transfer=TransferSettings(idle, retries))


@pytest.fixture
def mirror(s3_bucket: str, archive: Path, moto_endpoint: str) -> str:
    """The archive pushed (straight to the server) as ref `r`; the mirror URL."""
    url = f"s3://{s3_bucket}/m"
    api.push(archive, url, ref="r", s3=_settings(moto_endpoint))
    return url


def _parts(url: str, moto_endpoint: str) -> dict[str, int]:
    """Key -> size of every part the record of ref `r` names."""
    store = open_store(parse_url(url), settings=_settings(moto_endpoint))
    record = decode_record(
        store.get(record_key(aid := decode_ref(store.get(ref_key("r")), name="r"))),
        archive_id=aid,
    )
    return {m.key(aid, p): p.size for m in record.members for p in m.parts}


def _first(
    kind: str, *, after: int = 0, match: str = "/blobs/"
) -> Callable[[Request], Fault | None]:
    """A fault on the first request for each matching object."""
    seen: set[str] = set()

    def rule(request: Request) -> Fault | None:
        if match in request.path and request.method == "GET" and request.path not in seen:
            seen.add(request.path)
            return Fault(kind, after=after)  # type: ignore[arg-type]
        return None

    return rule


def _pull(url: str, proxy: FaultProxy, out: Path, **kw: float) -> api.Pulled:
    return api.pull(f"{url}:r", out, s3=_settings(proxy.endpoint, **kw))  # type: ignore[arg-type]


def _out(tmp_path: Path) -> Path:
    (tmp_path / "out").mkdir()
    return tmp_path / "out" / "pulled.dlmsnap"


def _assert_nothing_left(out: Path) -> None:
    assert not out.exists()
    assert [n for n in os.listdir(out.parent) if "snaparc" in n] == []


def _hit(proxy: FaultProxy) -> list[Request]:
    """The part requests whose cut or stall struck (the response was long enough)."""
    return [
        r for r in proxy.matching("/blobs/") if r.fault is not None and r.relayed == r.fault.after
    ]


def _body_bytes(proxy: FaultProxy, bucket: str, text: str = "/blobs/") -> int:
    return sum(r.body_relayed for r in proxy.matching(f"/{bucket}/") if text in r.path)


def test_a_cut_response_is_resumed_with_a_range_request(
    mirror: str, archive: Path, fault_proxy: FaultProxy, s3_bucket: str, moto_endpoint: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    parts = _parts(mirror, moto_endpoint)
    big = [k for k, n in parts.items() if n > 2 * READ_CHUNK and k.startswith("blobs/")]
    assert big, parts
    fault_proxy.reset(_first("cut", after=2 * READ_CHUNK + 1000))
    out = _out(tmp_path)
    done = _pull(mirror, fault_proxy, out)
    assert out.read_bytes() == archive.read_bytes()
    cut = _hit(fault_proxy)
    assert len(cut) == len(big)
    assert done.report.retries == len(cut)
    for key in big:  # the retry asked only for the rest
        ranges = [r.range or "" for r in fault_proxy.matching(key)]
        assert len(ranges) == 2 and ranges[0].startswith("bytes=0-"), ranges
        assert ranges[1].startswith("bytes=") and not ranges[1].startswith("bytes=0-"), ranges
    blob_bytes = sum(n for k, n in parts.items() if k.startswith("blobs/"))
    # What was relayed: every part once, plus at most one unread chunk per cut.
    assert blob_bytes <= _body_bytes(fault_proxy, s3_bucket) <= blob_bytes + len(cut) * READ_CHUNK


def test_a_stalled_response_is_abandoned_after_the_idle_time_and_resumed(
    mirror: str, archive: Path, fault_proxy: FaultProxy, s3_bucket: str, moto_endpoint: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    parts = _parts(mirror, moto_endpoint)
    fault_proxy.reset(_first("stall", after=2 * READ_CHUNK + 1000))
    out = _out(tmp_path)
    done = _pull(mirror, fault_proxy, out)
    assert fault_proxy.stalled.is_set()
    assert out.read_bytes() == archive.read_bytes()
    stalled = _hit(fault_proxy)
    assert done.report.retries == len(stalled) >= 1
    blob_bytes = sum(n for k, n in parts.items() if k.startswith("blobs/"))
    assert _body_bytes(fault_proxy, s3_bucket) <= blob_bytes + len(stalled) * READ_CHUNK


def test_connections_reset_on_connect_are_retried(
    mirror: str, archive: Path, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    fault_proxy.reset()
    fault_proxy.reset_connections = 3
    out = _out(tmp_path)
    done = _pull(mirror, fault_proxy, out)
    assert out.read_bytes() == archive.read_bytes()
    assert done.report.retries == 3


def test_a_slow_drip_that_keeps_making_progress_is_not_abandoned(
    mirror: str, archive: Path, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    def drip(request: Request) -> Fault | None:
        # 3 MiB in 64 KiB steps 50 ms apart: 2.4 s in all, more than the idle time
        return Fault("drip", chunk=64 * 1024, delay=0.05) if "/blobs/" in request.path else None

    fault_proxy.reset(drip)
    out = _out(tmp_path)
    done = _pull(mirror, fault_proxy, out, idle=1.0)
    assert out.read_bytes() == archive.read_bytes()
    assert done.report.retries == 0


def test_503_slowdown_on_every_third_request_is_retried(
    mirror: str, archive: Path, fault_proxy: FaultProxy, s3_bucket: str, tmp_path: Path
) -> None:
    count = iter(range(1, 1000))

    def every_third(request: Request) -> Fault | None:
        return Fault("status", status=503) if next(count) % 3 == 0 else None

    fault_proxy.reset(every_third)
    out = _out(tmp_path)
    shown = io.StringIO()
    done = api.pull(
        f"{mirror}:r",
        out,
        s3=_settings(fault_proxy.endpoint),
        progress=lambda total: Progress("pull", total, stream=shown, interval=0),
    )
    assert out.read_bytes() == archive.read_bytes()
    slowed = [r for r in fault_proxy.matching(f"/{s3_bucket}") if r.fault is not None]
    assert done.report.retries == len(slowed) >= 1
    # progress shows the bytes fetched and the requests retried
    last = shown.getvalue().split("\r")[-1]
    assert f"{done.report.retries} retried" in last and "fetched 3.0 MiB" in last, last


def test_a_persistent_stall_fails_with_exit_10_after_the_retries(
    mirror: str, fault_proxy: FaultProxy, s3_env: dict[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    def stall(request: Request) -> Fault | None:
        return Fault("stall", after=1000) if "/blobs/" in request.path else None

    fault_proxy.reset(stall)
    monkeypatch.setenv("AWS_ENDPOINT_URL", fault_proxy.endpoint)
    out = _out(tmp_path)
    code = main(
        ["pull", f"{mirror}:r", "-o", str(out), "--idle-timeout", "0.3", "--retries", "2",
         "--jobs", "1"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 10, err
    assert "/blobs/" in err and "broke off" in err  # names the object
    _assert_nothing_left(out)
    tries: dict[str, int] = {}
    for r in fault_proxy.matching("/blobs/"):
        tries[r.path] = tries.get(r.path, 0) + 1
    assert max(tries.values()) == 3  # the first request and 2 retries


@pytest.mark.parametrize("status", [403, 404])
def test_a_4xx_is_not_retried_and_names_the_object(
    status: int, mirror: str, fault_proxy: FaultProxy, s3_env: dict[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    def refuse(request: Request) -> Fault | None:
        return Fault("status", status=status) if "/blobs/" in request.path else None

    fault_proxy.reset(refuse)
    monkeypatch.setenv("AWS_ENDPOINT_URL", fault_proxy.endpoint)
    out = _out(tmp_path)
    code = main(["pull", f"{mirror}:r", "-o", str(out), "--jobs", "1"])
    err = capsys.readouterr().err
    # A part the record names but the mirror does not serve is an integrity
    # failure (exit 1, spec/MIRROR.md section 8); a refusal is exit 10.
    assert code == (10 if status == 403 else 1), err
    assert "/blobs/" in err, err
    _assert_nothing_left(out)
    assert len(fault_proxy.matching("/blobs/")) == 1


def test_push_through_resets_cuts_and_503s_completes(
    archive: Path, s3_bucket: str, fault_proxy: FaultProxy, moto_endpoint: str, tmp_path: Path
) -> None:
    """The first request of each kind for each object fails: a 503 for a HEAD
    or a GET, a lost answer (the put landed, the connection closed before the
    reply) for a PUT; and the first connection is reset."""
    seen: set[tuple[str, str]] = set()

    def first_fails(request: Request) -> Fault | None:
        if (request.method, request.path) in seen:
            return None
        seen.add((request.method, request.path))
        return Fault("cut", after=0) if request.method == "PUT" else Fault("status", status=503)

    fault_proxy.reset(first_fails)
    fault_proxy.reset_connections = 1
    url = f"s3://{s3_bucket}/m"
    done = api.push(archive, url, ref="r", s3=_settings(fault_proxy.endpoint))
    faulted = [r for r in fault_proxy.matching(f"/{s3_bucket}") if r.fault is not None]
    # Every faulted request was retried, and the reset connection too unless it
    # hit the push lock's heartbeat (which retries on its next beat, uncounted).
    assert len(faulted) <= done.report.retries <= len(faulted) + 1
    out = _out(tmp_path)
    api.pull(f"{url}:r", out, s3=_settings(moto_endpoint))
    assert out.read_bytes() == archive.read_bytes()


def test_an_upload_the_server_stops_reading_is_abandoned_and_retried(
    s3_bucket: str, fault_proxy: FaultProxy, moto_endpoint: str, tmp_path: Path
) -> None:
    """The server reads 1 MiB of a 24 MiB part and then nothing: the client's
    sends block and no byte comes back, which the idle time cannot see while
    the body is being sent. The upload timeout (idle + largest body / minimum
    rate) abandons it, the put is retried and the push completes."""
    big = random.Random(11).randbytes(24 * 1024 * 1024)
    src = write_tree(tmp_path / "src", {"w/big.bin": big, "a.json": b"{}"})
    archive = tmp_path / "big.dlmsnap"
    api.pack(src, archive)
    stalled: list[Request] = []

    def stall_first_big_put(request: Request) -> Fault | None:
        big_put = request.method == "PUT" and request.length > 16 * 1024 * 1024
        if big_put and "/blobs/" in request.path and not stalled:
            stalled.append(request)
            return Fault("stall_upload", after=1024 * 1024)
        return None

    fault_proxy.reset(stall_first_big_put)
    settings = _settings(fault_proxy.endpoint)
    transfer = TransferSettings(IDLE, 3, min_upload_rate=16 * 1024 * 1024)
    settings = dataclasses.replace(settings, transfer=transfer)
    url = f"s3://{s3_bucket}/up"
    done: list[api.Pushed] = []
    t = threading.Thread(target=lambda: done.append(api.push(archive, url, ref="r", s3=settings)))
    t.start()
    t.join(120)  # without an upload bound the push waits for the socket: hours
    assert not t.is_alive(), "the stalled upload was never abandoned"
    assert done and done[0].report.retries >= 1
    assert fault_proxy.stalled.is_set() and len(stalled) == 1
    puts = [r for r in fault_proxy.matching(stalled[0].path) if r.method == "PUT"]
    assert len(puts) == 2  # the stalled one and its retry
    out = _out(tmp_path)
    api.pull(f"{url}:r", out, s3=_settings(moto_endpoint))
    assert out.read_bytes() == archive.read_bytes()


def test_a_slow_upload_that_keeps_sending_is_not_abandoned(
    s3_bucket: str, fault_proxy: FaultProxy, moto_endpoint: str, tmp_path: Path
) -> None:
    """A slow uplink: the server reads a 24 MiB part 1 MiB at a time, 0.15 s
    apart (about 4 s for the body, four times the idle time, and no byte of
    answer until it ends). It keeps making progress, so it is not abandoned:
    no retry, one PUT."""
    big = random.Random(12).randbytes(24 * 1024 * 1024)
    src = write_tree(tmp_path / "src", {"w/big.bin": big})
    archive = tmp_path / "big.dlmsnap"
    api.pack(src, archive)

    def drip_big_puts(request: Request) -> Fault | None:
        if request.method == "PUT" and request.length > 16 * 1024 * 1024:
            return Fault("drip_upload", chunk=1024 * 1024, delay=0.15)
        return None

    fault_proxy.reset(drip_big_puts)
    transfer = TransferSettings(IDLE, 3, min_upload_rate=1024 * 1024)
    settings = dataclasses.replace(_settings(fault_proxy.endpoint), transfer=transfer)
    url = f"s3://{s3_bucket}/slow"
    done = api.push(archive, url, ref="r", s3=settings)
    dripped = [r for r in fault_proxy.matching("/blobs/") if r.fault is not None]
    assert len(dripped) == 1 and done.report.retries == 0
    out = _out(tmp_path)
    api.pull(f"{url}:r", out, s3=_settings(moto_endpoint))
    assert out.read_bytes() == archive.read_bytes()


# --- prompt cancellation ----------------------------------------------------------


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_a_stall_exits_at_once_and_cleans_up(
    sig: int, code: int, mirror: str, fault_proxy: FaultProxy, s3_env: dict[str, str],
    tmp_path: Path,
) -> None:  # fmt: skip
    """The idle timeout is a minute: only the signal can end the command, and
    it must not wait for the stalled socket."""

    def stall(request: Request) -> Fault | None:
        return Fault("stall", after=1000) if "/blobs/" in request.path else None

    fault_proxy.reset(stall)
    out = _out(tmp_path)
    env = dict(os.environ, AWS_ENDPOINT_URL=fault_proxy.endpoint, SNAPARC_IDLE_TIMEOUT="60")
    proc = subprocess.Popen(
        [sys.executable, "-m", "snaparc", "pull", f"{mirror}:r", "-o", str(out)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert fault_proxy.stalled.wait(30), "the pull never reached the stall"
        time.sleep(0.2)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=15)  # far less than the 60 s idle timeout
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert "Traceback" not in err, err
    _assert_nothing_left(out)


def test_the_minimum_upload_rate_comes_from_the_environment() -> None:
    from snaparc.errors import UsageError
    from snaparc.mirror.url import DEFAULT_MIN_UPLOAD_RATE, transfer_settings

    assert transfer_settings(env={}).min_upload_rate == DEFAULT_MIN_UPLOAD_RATE
    slow = transfer_settings(env={"SNAPARC_MIN_UPLOAD_RATE": "4096"})
    assert slow.upload_timeout(64 * 1024 * 1024) == 30 + 16384
    for bad in ("0", "-5", "fast", "1e13"):
        with pytest.raises(UsageError, match="SNAPARC_MIN_UPLOAD_RATE"):
            transfer_settings(env={"SNAPARC_MIN_UPLOAD_RATE": bad})
