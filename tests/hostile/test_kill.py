"""SIGKILL and Ctrl-C at random moments: the target is absent, the old tree, or
the complete new tree, never anything in between; the next run removes the
staging a killed process left; a killed `pack -o` never leaves a truncated
file under the final name; SIGINT exits 130 and cleans up.

The archive is ~33 MiB of incompressible data in 44 files so that an unpack
takes long enough (~0.5 s) for kill points to land inside it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from snaparc.cli import main
from tests.hostile.conftest import tree_files

SNAPARC = [sys.executable, "-m", "snaparc"]
SEEDS = range(8)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, float]:
    """(source tree, archive, seconds a full unpack takes)."""
    root = tmp_path_factory.mktemp("kill")
    src = root / "src"
    (src / "sub").mkdir(parents=True)
    rng = random.Random(5)
    for i in range(4):
        (src / f"w{i}.bin").write_bytes(rng.randbytes(8 * 1024 * 1024))
    for i in range(40):
        (src / "sub" / f"s{i:02d}").write_bytes(rng.randbytes(20_000 + i))
    os.chmod(src / "sub" / "s00", 0o755)
    archive = root / "a.dlmsnap"
    assert main(["pack", str(src), "-o", str(archive), "--quiet"]) == 0
    start = time.monotonic()
    r = subprocess.run(
        [*SNAPARC, "unpack", str(archive), "-C", str(root / "probe"), "--quiet"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    return src, archive, time.monotonic() - start


def _leftovers(parent: Path, name: str) -> list[str]:
    return sorted(n for n in os.listdir(parent) if n.startswith(f".{name}.snaparc-"))


def _kill_at(argv: list[str], delay: float) -> int:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    return proc.wait(timeout=60)


def _old_tree(target: Path) -> dict[str, tuple[int, bytes | None]]:
    (target / "old").mkdir(parents=True)
    (target / "old" / "weights.bin").write_bytes(b"old weights\n" * 1000)
    (target / "w0.bin").write_bytes(b"old w0\n")
    return tree_files(target)


@pytest.mark.parametrize("force", [False, True], ids=["fresh", "force"])
def test_sigkill_unpack(big: tuple[Path, Path, float], tmp_path: Path, force: bool) -> None:
    src, archive, duration = big
    expected = tree_files(src)
    parent = tmp_path / "dest"
    parent.mkdir()
    target = parent / "out"
    outcomes = []
    for seed in SEEDS:
        rng = random.Random(seed)
        old = _old_tree(target) if force else None
        argv = [*SNAPARC, "unpack", str(archive), "-C", str(target), "--quiet"]
        argv += ["--force"] if force else []
        code = _kill_at(argv, rng.uniform(0.05, duration * 1.1))
        state = tree_files(target) if target.exists() else None
        if state == expected:
            outcomes.append("new")
        elif state == old:
            outcomes.append("old" if force else "absent")
        else:
            raise AssertionError(f"seed {seed}: target is neither old nor new (rc {code})")
        # The next run completes and removes what the killed one left behind.
        r = subprocess.run([*argv, "--force"], capture_output=True, timeout=120, check=False)
        assert r.returncode == 0, r.stderr
        assert tree_files(target) == expected
        assert _leftovers(parent, "out") == [], f"seed {seed}: staging left behind"
        if force:
            continue
        for p in sorted(target.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        target.rmdir()
    # Not a correctness condition, but a sign the kill points were useful.
    print("kill outcomes:", outcomes)


def test_sigkill_pack(big: tuple[Path, Path, float], tmp_path: Path) -> None:
    src, _archive, duration = big
    out = tmp_path / "x.dlmsnap"
    for seed in range(4):
        rng = random.Random(100 + seed)
        if out.exists():
            out.unlink()
        argv = [*SNAPARC, "pack", str(src), "-o", str(out), "--quiet"]
        _kill_at(argv, rng.uniform(0.05, duration * 1.2))
        if out.exists():  # a file under the final name is a complete archive
            assert main(["verify", str(out), "--quiet"]) == 0, f"seed {seed}: truncated archive"
        r = subprocess.run([*argv, "--force"], capture_output=True, timeout=120, check=False)
        assert r.returncode == 0, r.stderr
        assert _leftovers(tmp_path, "x.dlmsnap") == [], f"seed {seed}: temp file left behind"
        assert main(["verify", str(out), "--quiet"]) == 0


def _wait_for(parent: Path, name: str, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if _leftovers(parent, name):
            return True
        time.sleep(0.002)
    return False


@pytest.mark.parametrize("force", [False, True], ids=["fresh", "force"])
def test_sigint_unpack_exits_130_and_cleans_up(
    big: tuple[Path, Path, float], tmp_path: Path, force: bool
) -> None:
    _src, archive, _ = big
    target = tmp_path / "out"
    old = _old_tree(target) if force else None
    argv = [*SNAPARC, "unpack", str(archive), "-C", str(target), "--quiet"]
    argv += ["--force"] if force else []
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if not _wait_for(tmp_path, "out", proc):
        proc.kill()
        proc.wait()
        pytest.fail("unpack finished before its staging directory was seen")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert _leftovers(tmp_path, "out") == []
    if force:
        assert tree_files(target) == old
    else:
        assert not target.exists()


def test_sigint_pack_exits_130_and_cleans_up(big: tuple[Path, Path, float], tmp_path: Path) -> None:
    src, _archive, _ = big
    out = tmp_path / "x.dlmsnap"
    proc = subprocess.Popen(
        [*SNAPARC, "pack", str(src), "-o", str(out), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    if not _wait_for(tmp_path, "x.dlmsnap", proc):
        proc.kill()
        proc.wait()
        pytest.fail("pack finished before its temp file was seen")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert _leftovers(tmp_path, "x.dlmsnap") == []
    assert not out.exists()


@pytest.mark.parametrize("command", ["unpack", "pack"])
def test_sigterm_exits_143_and_cleans_up(
    big: tuple[Path, Path, float], tmp_path: Path, command: str
) -> None:
    """A scheduler's SIGTERM cleans up like Ctrl-C (exit 143, nothing left)."""
    src, archive, _ = big
    if command == "unpack":
        name = "out"
        argv = [*SNAPARC, "unpack", str(archive), "-C", str(tmp_path / name), "--quiet"]
    else:
        name = "x.dlmsnap"
        argv = [*SNAPARC, "pack", str(src), "-o", str(tmp_path / name), "--quiet"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if not _wait_for(tmp_path, name, proc):
        proc.kill()
        proc.wait()
        pytest.fail(f"{command} finished before its staging/temp output was seen")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert _leftovers(tmp_path, name) == []
    assert not (tmp_path / name).exists()


def _interrupt(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("where", "command"),
    [
        ("snaparc.publish.staging.StagingDir.__enter__", "unpack"),  # between creating and `with`
        ("snaparc.publish.files.AtomicFile.__enter__", "pack"),
        ("snaparc.publish.directio.enter_direct", "pack"),  # inside creation, after the file exists
        ("snaparc.publish.directio.enter_direct", "unpack"),
    ],
)
def test_ctrl_c_right_after_a_temp_path_is_created_leaves_nothing(
    big: tuple[Path, Path, float],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
    command: str,
) -> None:
    """Python may deliver the signal between creating a temp path and entering the
    block that would remove it: the CLI removes every path the process claimed."""
    src, archive, _ = big
    monkeypatch.setattr(where, _interrupt)
    if command == "unpack":
        argv = ["unpack", str(archive), "-C", str(tmp_path / "out"), "--quiet"]
    else:
        argv = ["pack", str(src), "-o", str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 130
    assert os.listdir(tmp_path) == [], "a temp file or staging directory was left behind"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_force_swap_without_renameat2(
    big: tuple[Path, Path, float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where RENAME_EXCHANGE is unsupported (NFS, old kernels) --force swaps with two renames."""
    src, archive, _ = big
    monkeypatch.setattr("snaparc.publish.staging.rename_with_flags", lambda *a: False)
    target = tmp_path / "out"
    _old_tree(target)
    assert main(["unpack", str(archive), "-C", str(target), "--force", "--quiet"]) == 0
    assert tree_files(target) == tree_files(src)
    assert os.listdir(tmp_path) == ["out"]


def test_old_tree_left_aside_by_a_dead_swap_is_put_back(
    big: tuple[Path, Path, float], tmp_path: Path
) -> None:
    """Killed between the two renames of such a swap: the next run restores the old
    tree before anything else, so the target is the old state, never missing."""
    src, archive, _ = big
    target = tmp_path / "out"
    old = _old_tree(target)
    aside = tmp_path / f".out.snaparc-old-{_dead_pid()}-0123abcd"
    os.rename(target, aside)
    # Without --force the restored old tree is refused as any non-empty target is.
    assert main(["unpack", str(archive), "-C", str(target), "--quiet"]) == 5
    assert tree_files(target) == old
    assert os.listdir(tmp_path) == ["out"]
    assert main(["unpack", str(archive), "-C", str(target), "--force", "--quiet"]) == 0
    assert tree_files(target) == tree_files(src)
    assert os.listdir(tmp_path) == ["out"]


def test_old_tree_aside_after_a_completed_swap_is_removed(
    big: tuple[Path, Path, float], tmp_path: Path
) -> None:
    """Killed after the new tree was in place: the old tree aside is removed, the new one kept."""
    src, archive, _ = big
    target = tmp_path / "out"
    assert main(["unpack", str(archive), "-C", str(target), "--quiet"]) == 0
    aside = tmp_path / f".out.snaparc-old-{_dead_pid()}-0123abcd"
    _old_tree(aside)
    assert main(["unpack", str(archive), "-C", str(target), "--force", "--quiet"]) == 0
    assert tree_files(target) == tree_files(src)
    assert os.listdir(tmp_path) == ["out"]
