"""unpack and materialize from a mirror resume after SIGKILL (spec/MIRROR.md, section 12).

The command runs in a child process against the moto server through the
test proxy, which drips the parts so that the kill lands mid-transfer: the
child is killed once the resume file it keeps beside its target
(`.ID.dlmsnap.snaparc-tmp-…`, written by the fetch workers) holds N bytes.
The next run of the same command takes that file over, reads the parts in it
that match their sha256 instead of fetching them, and publishes a tree
byte-identical to one unpacked from the local archive; what was fetched twice
is bounded by what was in flight (the ranges of the read-ahead window and the
part they cut). The resume file is gone after success; `--no-resume` starts
afresh. A directory mirror resumes the same way.
"""

from __future__ import annotations

import hashlib
import io
import json
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
from snaparc.progress import Progress

from .conftest import HF_TESTS
from .faultproxy import Fault, FaultProxy, Request

MIB = 1024 * 1024
JOBS = 4  # the read-ahead of unpack and materialize (sources.open_source)
LARGEST_PART = 2 * MIB + 64 * 1024
# Fetched twice at most: the ranges in the read-ahead window, and the part
# the oldest of them belongs to (its earlier ranges were written, but a part
# is reused whole or not at all).
IN_FLIGHT = JOBS * fetch.CHUNK + LARGEST_PART
# The record, the ref, the end frame and the seek table: not parts.
SMALL = 64 * 1024


class _BigProcessor:
    """A processor whose `save_pretrained` writes 12 incompressible 2 MiB files
    (one frame and one part of about 2 MiB each)."""

    def save_pretrained(self, out: str) -> None:
        rng = random.Random(7)
        Path(out, "processor_config.json").write_text('{"processor_class": "Big"}')
        for i in range(12):
            Path(out, f"vocab-{i:02d}.bin").write_bytes(rng.randbytes(2 * MIB))


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An HF snapshot export of about 24 MiB, in parts of about 2 MiB."""
    if str(HF_TESTS) not in sys.path:
        sys.path.insert(0, str(HF_TESTS))
    hf_fakes = pytest.importorskip("hf_fakes")
    from snaparc.hf.export import Store, export_snapshot, load_base_spec

    root = tmp_path_factory.mktemp("hf")
    store = root / "store"
    hf_fakes.write_fake_adapter(store / "adapter/versions/v0001", payload=os.urandom(1 * MIB))
    (store / "adapter/current.txt").write_text("adapter/versions/v0001\n")
    spec = load_base_spec("qwen2-audio-7b-instruct")
    result = export_snapshot(Store(store), spec, processor=_BigProcessor())
    out = root / "snap.dlmsnap"
    api.pack(result.export_dir, out)
    return out


@pytest.fixture(scope="module")
def local(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """What each command publishes from the local archive file."""
    root = tmp_path_factory.mktemp("local")
    api.unpack(archive, root / "unpack")
    api.materialize(archive, root / "materialize")
    api.materialize_cache(archive, repo_id="org/adapter", cache_dir=root / "hub")
    return {"unpack": root / "unpack", "materialize": root / "materialize", "cache": root / "hub"}


def _settings(endpoint: str) -> S3Settings:
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }
    return s3_settings(env=env, transfer=TransferSettings(5.0, 3))


def _tree(root: Path) -> dict[str, tuple[str, str]]:
    """Every entry under `root`: kind and content (a symlink's target, a file's sha256)."""
    out: dict[str, tuple[str, str]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath, name)
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir", oct(p.stat().st_mode & 0o777))
            else:
                out[rel] = ("file", hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def _resume_files(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if ".dlmsnap.snaparc-tmp-" in p.name]


def _fetched(proxy: FaultProxy, bucket: str) -> int:
    return sum(r.body_relayed for r in proxy.matching(f"/{bucket}/") if "/blobs/" in r.path)


def _drip(request: Request) -> Fault | None:
    return Fault("drip", chunk=256 * 1024, delay=0.01) if "/blobs/" in request.path else None


def _argv(command: str, source: str, out: Path) -> list[str]:
    """The command line of `command` reading `source`, publishing under `out`."""
    words = {
        "unpack": ["unpack", source, "-C", str(out / "tree")],
        "materialize": ["materialize", source, str(out / "tree")],
        "cache": [
            "materialize",
            source,
            "--hf-cache",
            str(out / "hub"),
            "--repo-id",
            "org/adapter",
        ],
    }[command]
    return [*words, "--quiet"]


def _published(command: str, out: Path) -> Path:
    return out / ("hub" if command == "cache" else "tree")


def _kill_when_kept(argv: list[str], env: dict[str, str], where: Path, size: int) -> int:
    """Run snaparc with `argv`; SIGKILL it once its resume file in `where`
    holds `size` bytes. Returns the file's size at the kill."""
    return kill_when_grown(
        [sys.executable, "-m", "snaparc", *argv],
        lambda: _resume_files(where) if where.is_dir() else [],
        size,
        env=env,
    )


def _resume_dir(command: str, out: Path) -> Path:
    return out / "hub" if command == "cache" else out


def _run(command: str, source: str, out: Path, s3: S3Settings, *, resume: bool = True) -> object:
    if command == "unpack":
        return api.unpack(source, out / "tree", s3=s3, resume=resume)
    if command == "materialize":
        return api.materialize(source, out / "tree", s3=s3, resume=resume)
    return api.materialize_cache(
        source, repo_id="org/adapter", cache_dir=out / "hub", s3=s3, resume=resume
    )


@pytest.fixture
def mirror(s3_bucket: str, archive: Path, moto_endpoint: str) -> str:
    url = f"s3://{s3_bucket}/m"
    api.push(archive, url, ref="r", s3=_settings(moto_endpoint))
    return url


@pytest.mark.parametrize(
    ("command", "kill_at"),
    [("unpack", 6 * MIB), ("unpack", 16 * MIB), ("materialize", 10 * MIB), ("cache", 12 * MIB)],
)
def test_a_killed_tree_command_resumes_without_fetching_its_parts_again(
    command: str, kill_at: int, mirror: str, archive: Path, local: dict[str, Path],
    fault_proxy: FaultProxy, s3_bucket: str, s3_env: dict[str, str], tmp_path: Path,
) -> None:  # fmt: skip
    fault_proxy.reset(_drip)
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, AWS_ENDPOINT_URL=fault_proxy.endpoint)
    kept = _kill_when_kept(
        _argv(command, f"{mirror}:r", out), env, _resume_dir(command, out), kill_at
    )
    first = _fetched(fault_proxy, s3_bucket)
    if command != "cache":
        assert not _published(command, out).exists()

    fault_proxy.reset()
    done = _run(command, f"{mirror}:r", out, _settings(fault_proxy.endpoint))
    transfer = done.transfer  # type: ignore[attr-defined]
    assert _tree(_published(command, out)) == _tree(local[command])
    # the resume file (and the dead run's staging) are gone
    assert _resume_files(_resume_dir(command, out)) == []
    assert sorted(p.name for p in out.iterdir()) == [_published(command, out).name]
    if command == "cache":
        assert [p.name for p in (out / "hub").iterdir()] == ["models--org--adapter"]
    second = _fetched(fault_proxy, s3_bucket)
    size = archive.stat().st_size
    # the whole parts the killed run had kept are not fetched again
    assert transfer.skipped >= kept - IN_FLIGHT
    assert second <= size - transfer.skipped
    # what the command reports fetched: those parts, with the record and the ref
    assert second <= transfer.fetched <= second + SMALL
    # fetched twice: at most what was in flight
    assert first + second - size <= IN_FLIGHT


def test_no_resume_starts_afresh_and_removes_the_killed_runs_file(
    mirror: str, archive: Path, local: dict[str, Path], fault_proxy: FaultProxy, s3_bucket: str,
    s3_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    fault_proxy.reset(_drip)
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, AWS_ENDPOINT_URL=fault_proxy.endpoint)
    _kill_when_kept(_argv("materialize", f"{mirror}:r", out), env, out, 8 * MIB)
    fault_proxy.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", fault_proxy.endpoint)
    argv = ["materialize", f"{mirror}:r", str(out / "tree"), "--no-resume", "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["bytes_skipped"] == 0 and report["retries"] == 0
    assert 0 <= report["bytes_fetched"] - _fetched(fault_proxy, s3_bucket) <= SMALL
    assert _fetched(fault_proxy, s3_bucket) >= archive.stat().st_size - 64 * 1024
    assert _tree(out / "tree") == _tree(local["materialize"])
    assert sorted(p.name for p in out.iterdir()) == ["tree"]


def _dead_file(directory: Path, archive_id: str, data: bytes, *, name: str = "") -> Path:
    """A resume file as a killed process (a PID that is not running) left it
    (`name`: the temp file of that output instead, as a killed pull left it)."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    from snaparc.publish.names import owner_tag

    tag = owner_tag().replace(str(os.getpid()), dead.stdout.strip(), 1)
    path = directory / f".{name or archive_id + '.dlmsnap'}.snaparc-tmp-{tag}-00000000"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("kind", ["whole", "damaged", "no-resume"])
def test_a_directory_mirror_resumes_from_what_a_killed_unpack_kept(
    kind: str, archive: Path, local: dict[str, Path], tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    aid = api.push(archive, str(mirror), ref="r").archive_id
    out = tmp_path / "out"
    out.mkdir()
    data = bytearray(archive.read_bytes()[: 16 * MIB])
    if kind == "damaged":
        data[10 * MIB] ^= 0x01
    _dead_file(out, aid, bytes(data))
    done = api.unpack(f"{mirror}:r", out / "tree", resume=kind != "no-resume")
    assert _tree(out / "tree") == _tree(local["unpack"])
    assert _resume_files(out) == []
    assert done.transfer is not None
    size = archive.stat().st_size
    if kind == "whole":
        assert 16 * MIB - LARGEST_PART <= done.transfer.skipped <= 16 * MIB
    elif kind == "damaged":
        assert 10 * MIB - LARGEST_PART <= done.transfer.skipped <= 10 * MIB
    else:
        assert done.transfer.skipped == 0
    assert abs(done.transfer.fetched - (size - done.transfer.skipped)) <= SMALL


def test_a_killed_pulls_file_serves_an_unpack_and_an_unpacks_file_serves_a_pull(
    archive: Path, local: dict[str, Path], tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    aid = api.push(archive, str(mirror), ref="r").archive_id
    out = tmp_path / "out"
    out.mkdir()
    data = archive.read_bytes()
    other = random.Random(3).randbytes(20 * MIB)  # another archive's killed pull: not taken
    _dead_file(out, aid, other, name="big.dlmsnap")
    _dead_file(out, aid, data[: 12 * MIB], name="a.dlmsnap")
    done = api.unpack(f"{mirror}:r", out / "tree")
    assert done.transfer is not None
    assert 12 * MIB - LARGEST_PART <= done.transfer.skipped <= 12 * MIB
    assert _tree(out / "tree") == _tree(local["unpack"])
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 2 and names[1] == "tree" and names[0].startswith(".big.dlmsnap.")

    _dead_file(out, aid, data[: 8 * MIB])  # as a killed unpack left it
    pulled = api.pull(f"{mirror}:r", out / "a.dlmsnap")
    assert 8 * MIB - LARGEST_PART <= pulled.report.bytes_skipped <= 8 * MIB
    assert (out / "a.dlmsnap").read_bytes() == data
    assert _resume_files(out) == [p for p in out.iterdir() if p.name.startswith(".big.")]


def test_progress_and_the_summary_show_bytes_fetched_skipped_and_retried(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = tmp_path / "mirror"
    aid = api.push(archive, str(mirror), ref="r").archive_id
    out = tmp_path / "out"
    out.mkdir()
    _dead_file(out, aid, archive.read_bytes()[: 8 * MIB])
    shown = io.StringIO()
    meters: list[Progress] = []

    def meter(total: int | None) -> Progress:
        meters.append(Progress("unpack", total, stream=shown, interval=0.0))
        return meters[-1]

    done = api.unpack(f"{mirror}:r", out / "tree", progress=meter)
    meters[0].close()
    assert done.transfer is not None
    last = shown.getvalue().split("\r")[-1]
    assert done.transfer.describe() in last, last
    assert "skipped 0 B" not in last and "0 retried" in last, last
    assert done.to_json()["bytes_skipped"] == done.transfer.skipped > 0

    assert main(["unpack", f"{mirror}:r", "-C", str(out / "again")]) == 0
    assert "fetched " in capsys.readouterr().out
    # a local archive has nothing to fetch: no counts, in JSON or the summary
    assert "bytes_fetched" not in api.unpack(archive, out / "local").to_json()


def test_no_resume_file_is_started_without_room_for_it_beside_the_output(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resuming must never be why a tree does not fit: a directory without
    room for the archive's bytes beside the output gets no resume file (the
    command still runs), one with room gets it."""
    from snaparc.mirror import resume
    from snaparc.mirror.layout import decode_record, record_key

    mirror = tmp_path / "mirror"
    aid = api.push(archive, str(mirror), ref="r").archive_id
    record = decode_record((mirror / record_key(aid)).read_bytes(), archive_id=aid)
    out = tmp_path / "out"
    out.mkdir()
    with resume.open_resume_file(resume.ResumeAt.keyed(out), record) as kept:
        assert kept is not None and kept.kept is not None
        assert _resume_files(out) == [kept.path]
    monkeypatch.setattr(resume, "SPARE", 1 << 62)
    with resume.open_resume_file(resume.ResumeAt.keyed(out), record) as kept:
        assert kept is None
        assert _resume_files(out) == []
    done = api.unpack(f"{mirror}:r", out / "tree")
    assert done.transfer is not None and done.transfer.skipped == 0
    assert _resume_files(out) == []
