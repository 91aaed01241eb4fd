"""`snaparc export` through `snaparc.cli.main`: exit 0, JSON output, exit 9."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from snaparc.cli import main
from snaparc.hf.export import Store
from snaparc.hf.manifest import load_snapshot_manifest


def test_export_prints_dir_and_count(fake_store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["export", "--store", str(fake_store.root), "--base", "qwen2-audio-7b-instruct"])
    out = capsys.readouterr().out
    assert code == 0
    export_dir = fake_store.root / "exports/hf-audio-snapshot"
    assert str(export_dir) in out and "(3 artifacts)" in out
    assert load_snapshot_manifest(export_dir).adapter_version == 2


def test_export_json(fake_store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["export", "--store", str(fake_store.root), "--base", "llava-1.5-7b"]
    code = main([*argv, "--adapter-name", "voice", "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0
    assert payload["export_dir"] == str(fake_store.root / "exports/hf-snapshot")
    assert payload["modality"] == "vision-language"
    assert (payload["adapter_version"], payload["adapter_name"]) == (3, "voice")
    assert payload["artifacts"] == 3


def test_export_adapter_path(fake_store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    adapter = fake_store.root / "adapter/versions/v0001"
    argv = ["export", "--store", str(fake_store.root), "--base", "llava-1.5-7b"]
    assert main([*argv, "--adapter-path", str(adapter), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["adapter_version"] == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--base", "nope"], "unknown base model"),
        (["--base", "qwen2.5-0.5b-instruct"], "modality 'text'"),
        (["--base", "llava-1.5-7b", "--adapter-name", "Bad-Name"], "invalid adapter name"),
        (["--base", "llava-1.5-7b", "--adapter-name", "ghost"], "no adapter pointer"),
    ],
)
def test_export_failures_exit_9(
    fake_store: Store, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    code = main(["export", "--store", str(fake_store.root), *extra])
    assert code == 9
    assert message in capsys.readouterr().err


def test_missing_pointer_exits_9(fake_store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    (fake_store.root / "adapter/current.txt").unlink()
    code = main(["export", "--store", str(fake_store.root), "--base", "llava-1.5-7b"])
    assert code == 9
    assert "--adapter-path" in capsys.readouterr().err


def test_missing_required_arguments_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--base", "llava-1.5-7b"]) == 2


def test_export_command_and_hf_package_import_no_heavy_modules() -> None:
    code = (
        "import sys, argparse\n"
        "import snaparc.commands.export as e, snaparc.hf\n"
        "p = argparse.ArgumentParser(); e.register(p.add_subparsers())\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
