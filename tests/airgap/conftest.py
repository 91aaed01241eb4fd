"""Shared fixtures for the air-gap tests: stock tools and a runner for them."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

Run = Callable[..., subprocess.CompletedProcess[str]]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(
            f"{name} not installed: `make test` installs it as root "
            f"(apt-get install {name}); install it to run the interop tests"
        )
    return path


@pytest.fixture
def minisign() -> str:
    return _tool("minisign")


@pytest.fixture
def run() -> Run:
    def _run(
        args: Sequence[str | Path], *, cwd: Path | None = None, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in args],
            cwd=cwd,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return _run


@pytest.fixture
def tool() -> Callable[[str], str]:
    return _tool
