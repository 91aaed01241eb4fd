"""The layering in pyproject.toml ([tool.importlinter]) holds, and would catch a breach."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(project: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(project))
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_import_contracts_are_kept() -> None:
    r = _lint(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "5 kept, 0 broken" in r.stdout


def test_a_format_module_importing_the_reader_breaks_the_contracts(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "snaparc", tmp_path / "snaparc", ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    victim = tmp_path / "snaparc" / "format" / "constants.py"
    victim.write_text(victim.read_text() + "\nfrom snaparc.archive import reader  # noqa\n")
    r = _lint(tmp_path)
    assert r.returncode != 0
    assert "The format layer is pure" in r.stdout and "BROKEN" in r.stdout
    assert "snaparc.format.constants -> snaparc.archive.reader" in r.stdout
