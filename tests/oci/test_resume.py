"""A pull, unpack or materialize of an `oci://` artifact killed with SIGKILL
resumes on the next run (spec/OCI.md, section 5, "Resuming"; the mechanism of
spec/MIRROR.md, section 12).

The command runs in a child process against the real registry through the
fault proxy, which drips the blob responses so that the kill lands
mid-transfer: the child is killed once its resume file (a pull's output temp
file; an unpack's `.ID.dlmsnap.snaparc-tmp-…` beside its target) holds N
bytes. The next run takes the file over, reads the whole members in it whose
data has the blob's sha256 instead of fetching their layers, and publishes a
byte-identical result; what the proxy relayed twice is bounded by what was
in flight. `--no-resume` starts afresh; nothing is left after success.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest
from snaparc_testlib import kill_when_grown

from snaparc import api
from snaparc.cli import main
from snaparc.publish.writers import AppendFile
from tests.mirror.faultproxy import Fault, FaultProxy, Request

from .conftest import pack, write_tree

MIB = 1024 * 1024
JOBS = 4
LAYERS = 20
LAYER = 2 * MIB
LARGEST_MEMBER = LAYER + 64 * 1024  # its frame, compressed (incompressible data)
SMALL = 64 * 1024  # the OCI manifest, the archive manifest, the record


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """20 incompressible files of 2 MiB: 20 layers, one frame each."""
    rng = random.Random(5)
    files = {f"w/{i:02d}.bin": rng.randbytes(LAYER) for i in range(LAYERS)}
    return pack(write_tree(tmp_path / "src", files), tmp_path / "a.dlmsnap")


@pytest.fixture
def pushed(repo: str, archive: Path, proxy: FaultProxy) -> str:
    """The artifact's URL through the proxy."""
    api.push(archive, f"{repo}:v1")
    rest = repo.split("/", 3)[3]
    return f"oci://127.0.0.1:{proxy.port}/{rest}:v1"


def _drip(request: Request) -> Fault | None:
    if request.method == "GET" and "/blobs/" in request.path:
        return Fault("drip", chunk=256 * 1024, delay=0.01)
    return None


def _fetched(proxy: FaultProxy) -> int:
    return sum(r.body_relayed for r in proxy.matching("/blobs/") if r.method == "GET")


def _temps(directory: Path, name: str) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.startswith(f".{name}.snaparc-tmp-")]


def _kill_when(argv: list[str], directory: Path, name: str, size: int) -> int:
    """Run `argv`; SIGKILL it once its temp file `.NAME.snaparc-tmp-…` in
    `directory` holds `size` bytes. Returns that file's size at the kill."""
    return kill_when_grown(argv, lambda: _temps(directory, name), size)


def _snaparc(*args: str) -> list[str]:
    return [sys.executable, "-m", "snaparc", *args]


def test_a_killed_oci_pull_resumes_without_fetching_its_layers_again(
    pushed: str, archive: Path, proxy: FaultProxy, tmp_path: Path
) -> None:
    proxy.reset(_drip)
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "a.dlmsnap"
    argv = _snaparc("pull", pushed, "-o", str(out), "--jobs", str(JOBS))
    written = _kill_when(argv, out.parent, out.name, 12 * MIB)
    first = _fetched(proxy)
    assert not out.exists()

    proxy.reset()
    done = api.pull(pushed, out, jobs=JOBS)
    assert out.read_bytes() == archive.read_bytes()
    assert _temps(out.parent, out.name) == []  # the taken-over temp file is gone too
    second = _fetched(proxy)
    layers = LAYERS * LAYER
    r = done.report
    # the whole members the killed pull had written are not fetched again
    assert r.bytes_skipped >= written - 2 * LARGEST_MEMBER
    assert second <= layers - r.bytes_skipped + SMALL
    # fetched twice: at most what was in flight (the layer being read, the
    # frames being compressed, the reader's buffers, the writer's unwritten
    # block, and the member cut by the kill: a member is reused whole)
    in_flight = (JOBS + 2) * LARGEST_MEMBER + AppendFile.BLOCK + 2 * MIB + SMALL
    assert first + second - layers <= in_flight
    assert r.bytes_fetched <= second + SMALL


def test_no_resume_starts_afresh_and_removes_the_killed_pulls_temp(
    pushed: str, archive: Path, proxy: FaultProxy, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    proxy.reset(_drip)
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "a.dlmsnap"
    _kill_when(_snaparc("pull", pushed, "-o", str(out)), out.parent, out.name, 8 * MIB)
    proxy.reset()
    assert main(["pull", pushed, "-o", str(out), "--no-resume", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bytes_skipped"] == 0
    assert out.read_bytes() == archive.read_bytes()
    assert _temps(out.parent, out.name) == []
    assert _fetched(proxy) >= LAYERS * LAYER


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_killed_oci_unpack_resumes_from_the_file_it_kept(
    pushed: str, archive: Path, proxy: FaultProxy, tmp_path: Path
) -> None:
    # materialize keeps its file the same way (`Reading.resume_in`); it needs
    # an HF snapshot archive, which tests/mirror/test_resume_trees.py builds
    expected = tmp_path / "expected"
    api.unpack(archive, expected)
    archive_id = api.verify(archive).archive_id
    proxy.reset(_drip)
    work = tmp_path / "work"
    work.mkdir()
    dest = work / "tree"
    argv = _snaparc("unpack", pushed, "-C", str(dest))
    name = f"{archive_id}.dlmsnap"
    kept = _kill_when(argv, work, name, 12 * MIB)
    first = _fetched(proxy)
    assert not dest.exists()

    proxy.reset()
    done = api.unpack(pushed, dest)
    assert _tree(dest) == _tree(expected)
    assert _temps(work, name) == []
    second = _fetched(proxy)
    layers = LAYERS * LAYER
    # the members the killed run had kept are not fetched again; fetched
    # twice at most: the frames being compressed, the layer being read, the
    # reader's read-ahead, and the member the kill cut
    assert second <= layers - kept + 2 * LARGEST_MEMBER + SMALL
    in_flight = (JOBS + 2) * LARGEST_MEMBER + 2 * MIB + SMALL
    assert first + second - layers <= in_flight
    assert done.transfer is not None and done.transfer.skipped >= kept - 2 * LARGEST_MEMBER


def test_an_unpack_resumes_from_what_a_killed_oci_pull_left(
    pushed: str, archive: Path, proxy: FaultProxy, tmp_path: Path
) -> None:
    proxy.reset(_drip)
    work = tmp_path / "work"
    work.mkdir()
    out = work / "a.dlmsnap"
    _kill_when(_snaparc("pull", pushed, "-o", str(out)), work, out.name, 12 * MIB)
    proxy.reset()
    dest = work / "tree"
    done = api.unpack(pushed, dest)
    assert done.transfer is not None and done.transfer.skipped >= 4 * MIB
    expected = tmp_path / "expected"
    api.unpack(archive, expected)
    assert _tree(dest) == _tree(expected)
    assert _temps(work, out.name) == []


def test_a_damaged_resume_file_is_reused_only_as_far_as_its_members_match(
    pushed: str, archive: Path, proxy: FaultProxy, tmp_path: Path
) -> None:
    from tests.mirror.test_resume import _dead_temp

    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "a.dlmsnap"
    data = bytearray(archive.read_bytes()[: 16 * MIB])
    data[9 * MIB] ^= 0x01  # inside the fifth member
    _dead_temp(out, bytes(data))
    done = api.pull(pushed, out)
    assert out.read_bytes() == archive.read_bytes()
    assert _temps(out.parent, out.name) == []
    assert 3 * LAYER <= done.report.bytes_skipped <= 4 * LAYER


BIG_LAYER = 48 * MIB  # six frames


@pytest.fixture
def big_pushed(repo: str, tmp_path: Path) -> tuple[str, Path]:
    rng = random.Random(6)
    files = {f"w/{i}.bin": rng.randbytes(BIG_LAYER) for i in range(2)}
    archive = pack(write_tree(tmp_path / "big-src", files), tmp_path / "big.dlmsnap")
    api.push(archive, f"{repo}:big")
    return repo.split("/", 3)[3] + ":big", archive


def test_a_large_layer_cut_by_the_kill_is_fetched_from_its_last_whole_frame(
    big_pushed: tuple[str, Path], proxy: FaultProxy, tmp_path: Path
) -> None:
    """The frames of the layer being read when the pull was killed are kept:
    the rest of the layer is fetched with a Range request, not the layer again."""
    rest, archive = big_pushed
    url = f"oci://127.0.0.1:{proxy.port}/{rest}"
    proxy.reset(_drip)
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "a.dlmsnap"
    argv = _snaparc("pull", url, "-o", str(out), "--jobs", "1")
    written = _kill_when(argv, out.parent, out.name, BIG_LAYER + 16 * MIB)
    first = _fetched(proxy)
    assert written < 2 * BIG_LAYER
    proxy.reset()
    done = api.pull(url, out, jobs=1)
    assert out.read_bytes() == archive.read_bytes()
    assert _temps(out.parent, out.name) == []
    second = _fetched(proxy)
    layers = 2 * BIG_LAYER
    # in flight with one job: the frame being compressed, the one being read,
    # the reader's buffer, the writer's block; never the whole second layer
    in_flight = 2 * 8 * MIB + AppendFile.BLOCK + 2 * MIB + SMALL
    assert done.report.bytes_skipped > BIG_LAYER
    assert second <= layers - done.report.bytes_skipped + SMALL
    assert first + second - layers <= in_flight < BIG_LAYER
    assert any(r.range for r in proxy.matching("/blobs/"))  # the rest, by Range


@pytest.fixture
def coded_pushed(repo: str, tmp_path: Path) -> tuple[str, Path]:
    """A `--codec bytegroup` archive of one 64 MiB BF16 safetensors file: its
    frames in a resume file hold planes, the registry holds the file."""
    import json

    from snaparc.archive.pack import plan_pack, write_archive

    n = 32 * MIB  # BF16 elements: 64 MiB, eight frames
    header = json.dumps(
        {"base_model.model.q_proj.lora_A.weight": {
            "dtype": "BF16", "shape": [n], "data_offsets": [0, 2 * n]}},
        separators=(",", ":"),
    ).encode()  # fmt: skip
    header += b" " * (-len(header) % 8)
    weights = len(header).to_bytes(8, "little") + header + random.Random(7).randbytes(2 * n)
    src = write_tree(tmp_path / "coded-src", {"adapter/adapter_model.safetensors": weights})
    plan = plan_pack(src, threads=2, metadata={"export_target": "hf_snapshot"}, codec="bytegroup")
    archive = tmp_path / "coded.dlmsnap"
    with open(archive, "xb") as f:
        write_archive(plan, f, level=1, threads=2)
    api.push(archive, f"{repo}:coded")
    return repo.split("/", 3)[3] + ":coded", archive


def test_a_coded_layer_cut_by_the_kill_resumes_from_its_decoded_frames(
    coded_pushed: tuple[str, Path], proxy: FaultProxy, tmp_path: Path
) -> None:
    """The kept frames of a coded blob hold planes; they are decoded before
    they join the rest of the layer fetched by Range, so the layer's sha256
    matches and the pull completes byte-identical (not exit 1)."""
    rest, archive = coded_pushed
    url = f"oci://127.0.0.1:{proxy.port}/{rest}"
    proxy.reset(_drip)
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "a.dlmsnap"
    _kill_when(_snaparc("pull", url, "-o", str(out), "--jobs", "1"), out.parent, out.name, 40 * MIB)
    proxy.reset()
    done = api.pull(url, out, jobs=1)
    assert out.read_bytes() == archive.read_bytes()
    assert done.report.bytes_skipped > 16 * MIB
    assert any(r.range for r in proxy.matching("/blobs/"))
