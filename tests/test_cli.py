"""The CLI: stable exit codes, messages naming the culprit, JSON output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from snaparc_testlib import run_snaparc, write_tree

from snaparc.cli import main
from snaparc.errors import ALL_ERROR_CLASSES, SnaparcError


def test_every_error_class_has_a_documented_exit_code() -> None:
    documented = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
    for cls in ALL_ERROR_CLASSES:
        assert issubclass(cls, SnaparcError)
        assert cls.exit_code in documented, cls


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify"]) == 2
    assert main(["nonsense-command"]) == 2
    assert main(["verify", str(tmp_path / "missing.dlmsnap")]) == 2
    assert "missing.dlmsnap" in capsys.readouterr().err
    assert main([]) == 2


def test_pack_refuses_symlink_and_leaves_no_output(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "s", {"a.txt": b"a"})
    os.symlink("a.txt", src / "link")
    out = tmp_path / "o.dlmsnap"
    proc = run_snaparc("pack", str(src), "-o", str(out))
    assert proc.returncode == 7
    assert b"link" in proc.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["s"]


def test_pack_refuses_fifo(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "s", {"a.txt": b"a"})
    os.mkfifo(src / "pipe")
    assert main(["pack", str(src), "-o", str(tmp_path / "o.dlmsnap")]) == 7
    assert not (tmp_path / "o.dlmsnap").exists()


def test_pack_refuses_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_tree(tmp_path / "s", {"a.txt": b"a", "b.txt": b"b"})
    os.chmod(src / "b.txt", 0)
    if os.geteuid() == 0:  # root reads any file: make access() answer as for a user
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, m: real(p, m) and not str(p).endswith("b.txt"))
    proc_code = main(["pack", str(src), "-o", str(tmp_path / "o.dlmsnap")])
    assert proc_code == 7
    assert not (tmp_path / "o.dlmsnap").exists()


def test_pack_refuses_to_overwrite_without_force(sample_tree: Path, packed: Path) -> None:
    before = packed.read_bytes()
    assert main(["pack", str(sample_tree), "-o", str(packed), "-q"]) == 5
    assert packed.read_bytes() == before
    assert main(["pack", str(sample_tree), "-o", str(packed), "-q", "--force"]) == 0


def test_pack_refuses_colliding_names(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "s", {"Readme.md": b"a", "README.md": b"b"})
    assert main(["pack", str(src), "-o", str(tmp_path / "o.dlmsnap")]) == 7


def test_unpack_refuses_non_empty_dest_then_force_replaces(packed: Path, tmp_path: Path) -> None:
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    assert main(["unpack", str(packed), "-C", str(dest), "-q"]) == 5
    assert (dest / "old.txt").read_text() == "old"
    assert main(["unpack", str(packed), "-C", str(dest), "-q", "--force"]) == 0
    assert not (dest / "old.txt").exists()
    assert (dest / "scripts/run.sh").exists()
    assert not [p for p in tmp_path.iterdir() if "snaparc-staging" in p.name]


def test_corrupted_blob_exit_1_names_blob(packed: Path, tmp_path: Path) -> None:
    data = bytearray(packed.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad = tmp_path / "bad.dlmsnap"
    bad.write_bytes(bytes(data))
    proc = run_snaparc("verify", str(bad))
    assert proc.returncode == 1
    assert b"offset" in proc.stderr or b"blob" in proc.stderr
    dest = tmp_path / "never"
    assert run_snaparc("unpack", str(bad), "-C", str(dest)).returncode == 1
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a.dlmsnap", "bad.dlmsnap", "src"])


def test_verify_json_report(packed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(packed), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert report["digests"] == ["sha256", "blake3"]
    assert report["blobs_verified"] == report["blobs"]
    assert len(report["archive_id"]) == 64


def test_ls_table_and_json(packed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls", str(packed)]) == 0
    out = capsys.readouterr().out
    assert "archive id" in out and "scripts/run.sh" in out and "logs/empty/" in out
    assert main(["ls", str(packed), "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    paths = {f["path"]: f for f in listing["files"]}
    assert paths["scripts/run.sh"]["executable"] is True
    assert listing["compressed_bytes"] == packed.stat().st_size


def test_cat_writes_exact_bytes(packed: Path, sample_tree: Path) -> None:
    proc = run_snaparc("cat", str(packed), "adapter/adapter_model.safetensors")
    assert proc.returncode == 0
    assert proc.stdout == (sample_tree / "adapter/adapter_model.safetensors").read_bytes()
    proc = run_snaparc("cat", str(packed), "no/such/file")
    assert proc.returncode == 2 and b"no/such/file" in proc.stderr


def test_newer_major_version_exit_4(tmp_path: Path) -> None:
    import io

    from snaparc.archive.pack import plan_pack, write_archive
    from snaparc.format import manifest as mf

    src = write_tree(tmp_path / "s", {"a": b"a"})
    plan = plan_pack(src)
    newer = plan.manifest.model_copy(update={"format_version": "2.0"})
    data = mf.encode_manifest(newer)
    from snaparc.archive.pack import PackPlan
    from snaparc.format.layout import plan_layout

    forged = PackPlan(newer, data, plan_layout(newer, len(data)), plan.sources, plan.tree)
    buf = io.BytesIO()
    write_archive(forged, buf)
    out = tmp_path / "v2.dlmsnap"
    out.write_bytes(buf.getvalue())
    proc = run_snaparc("verify", str(out))
    assert proc.returncode == 4
    assert b"2.0" in proc.stderr


def test_help_and_ls_and_verify_do_not_import_heavy_modules(packed: Path) -> None:
    heavy = ("torch", "transformers", "peft", "obstore")
    for argv in (["--help"], ["ls", str(packed)], ["verify", str(packed)]):
        code = (
            "import sys, runpy\n"
            f"sys.argv = ['snaparc', *{argv!r}]\n"
            "try:\n    runpy.run_module('snaparc', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            f"bad = [m for m in {heavy!r} if m in sys.modules]\n"
            "print('HEAVY', bad, file=sys.stderr)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
        assert b"HEAVY []" in proc.stderr, (argv, proc.stderr[-500:])


def test_python_dash_m_works(packed: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "snaparc", "--version"], capture_output=True)
    assert proc.returncode == 0 and proc.stdout.startswith(b"snaparc ")


def test_split_sums_sign_verify_cli(sample_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "v.dlmsnap"
    assert main(["pack", str(sample_tree), "-o", str(out), "--split", "1M", "--sums", "-q"]) == 0
    vols = sorted(tmp_path.glob("v.dlmsnap.0*"))
    assert len(vols) >= 1 and (tmp_path / "v.dlmsnap.index.json").exists()
    assert main(["verify", str(vols[0]), "-q"]) == 0
    assert main(["keygen", "-p", str(tmp_path / "k.pub"), "-s", str(tmp_path / "k.key")]) == 0
    assert main(["sign", str(out), "-s", str(tmp_path / "k.key")]) == 0
    assert main(["verify", str(vols[0]), "--key", str(tmp_path / "k.pub"), "-q"]) == 0
    assert main(["verify", str(vols[0]), "--require-signature", "-q"]) == 2
    other = tmp_path / "o"
    other.mkdir()
    assert main(["keygen", "-p", str(other / "k.pub"), "-s", str(other / "k.key")]) == 0
    assert main(["verify", str(vols[0]), "--key", str(other / "k.pub"), "-q"]) == 11
    dest = tmp_path / "u"
    assert main(["unpack", str(vols[0]), "-C", str(dest), "-q"]) == 0
    assert (dest / "scripts/run.sh").read_bytes() == (sample_tree / "scripts/run.sh").read_bytes()


def test_thin_archive_round_trip(sample_tree: Path, packed: Path, tmp_path: Path) -> None:
    (sample_tree / "adapter/adapter_config.json").write_bytes(b'{"r": 16}\n')
    thin = tmp_path / "thin.dlmsnap"
    assert main(["pack", str(sample_tree), "-o", str(thin), "--base", str(packed), "-q"]) == 0
    assert thin.stat().st_size < packed.stat().st_size / 2
    assert main(["verify", str(thin), "-q"]) == 0
    assert main(["unpack", str(thin), "-C", str(tmp_path / "no"), "-q"]) == 1
    assert not (tmp_path / "no").exists()
    assert (
        main(["unpack", str(thin), "-C", str(tmp_path / "yes"), "--base", str(packed), "-q"]) == 0
    )
    for p in sample_tree.rglob("*"):
        if p.is_file():
            assert (tmp_path / "yes" / p.relative_to(sample_tree)).read_bytes() == p.read_bytes()


def test_progress_only_when_asked_or_on_a_terminal(
    packed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", str(packed)]) == 0
    assert "ETA" not in capsys.readouterr().err  # stderr is not a terminal here
    assert main(["verify", str(packed), "--progress"]) == 0
    err = capsys.readouterr().err
    assert "verify:" in err and "ETA" in err and "/s" in err
    assert main(["unpack", str(packed), "-C", str(tmp_path / "u"), "--progress", "-q"]) == 2
    assert main(["unpack", str(packed), "-C", str(tmp_path / "u"), "--progress"]) == 0
    assert "unpack:" in capsys.readouterr().err
    assert main(["verify", str(packed), "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")
