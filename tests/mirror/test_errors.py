"""Remote errors that are not about content: exit 10 with a clear message."""

from __future__ import annotations

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
    import os

    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    mirror = tmp_path / "ro"
    mirror.mkdir()
    mirror.chmod(0o500)
    try:
        assert main(["mirror", "push", str(archive_v1), str(mirror)]) == 10
        assert "permission denied" in capsys.readouterr().err
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
