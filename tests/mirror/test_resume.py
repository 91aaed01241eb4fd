"""A pull killed with SIGKILL resumes on the next run (spec/MIRROR.md, section 12).

The pull runs in a child process against the moto server through the test
proxy, which drips the parts so that the kill lands mid-transfer: the child
is killed once its temp file holds N bytes. The next pull of the same output
takes the temp file over, reads the parts in it that still match their
sha256 instead of fetching them, and publishes a byte-identical, fully
verified archive; what was fetched twice is bounded by what was in flight.
`--no-resume` starts afresh; a temp file of another archive, or a damaged
one, is reused only as far as its parts match.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from snaparc_testlib import kill_when_grown

from snaparc import api
from snaparc.cli import main
from snaparc.mirror import fetch
from snaparc.mirror.url import S3Settings, TransferSettings, s3_settings
from snaparc.publish.writers import AppendFile

from .conftest import write_tree
from .faultproxy import Fault, FaultProxy, Request

MIB = 1024 * 1024
JOBS = 4


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """12 incompressible blobs of 2 MiB (parts of about 2 MiB)."""
    rng = random.Random(11)
    files = {f"w/{i:02d}.bin": rng.randbytes(2 * MIB) for i in range(12)}
    src = write_tree(tmp_path / "src", files)
    out = tmp_path / "a.dlmsnap"
    assert main(["pack", str(src), "-o", str(out), "--quiet"]) == 0
    return out


def _settings(endpoint: str) -> S3Settings:
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }
    return s3_settings(env=env, transfer=TransferSettings(5.0, 3))


@pytest.fixture
def mirror(s3_bucket: str, archive: Path, moto_endpoint: str) -> str:
    url = f"s3://{s3_bucket}/m"
    api.push(archive, url, ref="r", s3=_settings(moto_endpoint))
    return url


def _temps(out: Path) -> list[Path]:
    return [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.snaparc-")]


def _fetched(proxy: FaultProxy, bucket: str) -> int:
    return sum(r.body_relayed for r in proxy.matching(f"/{bucket}/") if "/blobs/" in r.path)


def _drip(request: Request) -> Fault | None:
    return Fault("drip", chunk=256 * 1024, delay=0.01) if "/blobs/" in request.path else None


@pytest.mark.parametrize("kill_at", [8 * MIB, 16 * MIB])
def test_a_killed_pull_resumes_without_fetching_its_parts_again(
    kill_at: int, mirror: str, archive: Path, fault_proxy: FaultProxy, s3_bucket: str,
    s3_env: dict[str, str], tmp_path: Path,
) -> None:  # fmt: skip
    fault_proxy.reset(_drip)
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "a.dlmsnap"
    env = dict(os.environ, AWS_ENDPOINT_URL=fault_proxy.endpoint)
    argv = [sys.executable, "-m", "snaparc", "pull", f"{mirror}:r", "-o", str(out),
            "--jobs", str(JOBS)]  # fmt: skip
    written = kill_when_grown(argv, lambda: _temps(out), kill_at, env=env)
    first = _fetched(fault_proxy, s3_bucket)
    assert not out.exists()

    fault_proxy.reset()
    done = api.pull(f"{mirror}:r", out, jobs=JOBS, s3=_settings(fault_proxy.endpoint))
    assert out.read_bytes() == archive.read_bytes()
    assert _temps(out) == []  # the taken-over temp file is gone too
    second = _fetched(fault_proxy, s3_bucket)
    largest_part = 2 * MIB + 64 * 1024
    size = archive.stat().st_size
    # the whole parts the killed pull had written are not fetched again
    assert done.report.bytes_skipped >= written - largest_part
    assert second <= size - done.report.bytes_skipped
    # fetched twice: at most what was in flight (read ahead, the writer's
    # unwritten block, the part being written, the reader's buffers)
    in_flight = JOBS * fetch.CHUNK + AppendFile.BLOCK + largest_part + 2 * MIB
    assert first + second - size <= in_flight


def test_no_resume_starts_afresh_and_removes_the_killed_pulls_temp(
    mirror: str, archive: Path, fault_proxy: FaultProxy, s3_bucket: str,
    s3_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    fault_proxy.reset(_drip)
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "a.dlmsnap"
    env = dict(os.environ, AWS_ENDPOINT_URL=fault_proxy.endpoint)
    argv = [sys.executable, "-m", "snaparc", "pull", f"{mirror}:r", "-o", str(out)]
    kill_when_grown(argv, lambda: _temps(out), 8 * MIB, env=env)
    fault_proxy.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", fault_proxy.endpoint)
    assert main(["pull", f"{mirror}:r", "-o", str(out), "--no-resume", "--json"]) == 0
    assert '"bytes_skipped": 0' in capsys.readouterr().out
    assert out.read_bytes() == archive.read_bytes()
    assert _temps(out) == []
    assert _fetched(fault_proxy, s3_bucket) >= archive.stat().st_size - 64 * 1024


def _dead_temp(out: Path, data: bytes) -> Path:
    """A temp file of `out` as a killed process (a PID that is not running) left it."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    from snaparc.publish.names import owner_tag

    tag = owner_tag().replace(str(os.getpid()), dead.stdout.strip(), 1)
    path = out.parent / f".{out.name}.snaparc-tmp-{tag}-00000000"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("kind", ["damaged", "other"])
def test_a_temp_file_is_reused_only_as_far_as_its_parts_match(
    kind: str, archive: Path, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    api.push(archive, str(mirror), ref="r")
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "a.dlmsnap"
    data = bytearray(archive.read_bytes()[: 16 * MIB])
    if kind == "damaged":
        data[10 * MIB] ^= 0x01
    else:
        data = bytearray(random.Random(1).randbytes(len(data)))
    _dead_temp(out, bytes(data))
    done = api.pull(f"{mirror}:r", out)
    assert out.read_bytes() == archive.read_bytes()
    assert _temps(out) == []
    if kind == "damaged":
        assert 6 * MIB <= done.report.bytes_skipped <= 10 * MIB
    else:
        assert done.report.bytes_skipped == 0
