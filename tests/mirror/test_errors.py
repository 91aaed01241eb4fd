"""Remote errors that are not about content: exit 10 with a clear message."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from snaparc.cli import main


def test_missing_bucket_exit_10(
    s3_env: dict[str, str], archive_v1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "s3://no-such-bucket-here/x"
    assert main(["mirror", "push", str(archive_v1), url, "--ref", "main"]) == 10
    assert "no-such-bucket-here" in capsys.readouterr().err
    assert main(["mirror", "pull", f"{url}:main", "-o", str(tmp_path / "o")]) == 10
    assert "bucket 'no-such-bucket-here' does not exist" in capsys.readouterr().err
    assert main(["mirror", "ls", url]) == 10


def test_missing_mirror_directory_exit_10(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = str(tmp_path / "nowhere")
    assert main(["mirror", "pull", f"{url}:main", "-o", str(tmp_path / "o")]) == 10
    assert "does not exist" in capsys.readouterr().err
    assert main(["mirror", "ls", url]) == 10


def test_permission_denied_directory_exit_10(
    tmp_path: Path, archive_v1: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mirror directory we may not write to: exit 10, "permission denied".

    Root ignores directory permissions, so as root the push runs in a child
    without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH (util-linux `setpriv`),
    which makes permissions bind again, as they do for every other user.
    """
    mirror = tmp_path / "ro"
    mirror.mkdir()
    mirror.chmod(0o500)
    try:
        if os.geteuid() != 0:
            assert main(["mirror", "push", str(archive_v1), str(mirror)]) == 10
            assert "permission denied" in capsys.readouterr().err
        else:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("setpriv is missing (util-linux): it drops root's DAC override")
            caps = "-dac_override,-dac_read_search"
            r = subprocess.run(
                [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}", sys.executable,
                 "-m", "snaparc", "mirror", "push", str(archive_v1), str(mirror)],
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert r.returncode == 10, r.stderr
            assert "permission denied" in r.stderr
        assert list(mirror.iterdir()) == []
    finally:
        mirror.chmod(0o700)


def test_http_endpoint_refused_unless_loopback(
    archive_v1: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["mirror", "ls", "s3://bucket/x", "--endpoint", "http://example.com:9000"])
    assert code == 2
    assert "--allow-http" in capsys.readouterr().err


def test_help_and_mirror_help_do_not_import_obstore() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from snaparc.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "    try:\n"
        "        main(['mirror', 'push', '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert 'obstore' not in sys.modules, 'obstore imported'\n"
        "assert 'snaparc.mirror.s3' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
