"""Smoke test of the benchmark harness: a tiny snapshot and the pure functions.

No timing assertions: only structure and arithmetic.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

safetensors = pytest.importorskip("safetensors")
pytest.importorskip("numpy")

from benchmarks import gen_snapshot, run  # noqa: E402

TINY_GIB = 2 / 1024  # 2 MiB of weights


@pytest.fixture(scope="module")
def tiny_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("snap") / "export"
    gen_snapshot.generate_snapshot(out, TINY_GIB, seed=7)
    return out


def test_safetensors_header_parses_and_sizes_match(tiny_snapshot: Path) -> None:
    path = tiny_snapshot / "adapter" / "adapter_model.safetensors"
    planned = gen_snapshot.plan_tensors(int(TINY_GIB * gen_snapshot.GIB))
    with safetensors.safe_open(str(path), framework="np") as f:
        keys = list(f.keys())
        assert f.metadata() == {"format": "pt"}
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in keys}
    assert sorted(keys) == sorted(t.name for t in planned)
    assert all(".lora_A.weight" in k or ".lora_B.weight" in k for k in keys)
    assert all(k.startswith("base_model.model.model.layers.") for k in keys)
    assert shapes == {t.name: t.shape for t in planned}
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    data_bytes = sum(t.nbytes for t in planned)
    assert path.stat().st_size == 8 + header_len + data_bytes
    assert data_bytes == int(TINY_GIB * gen_snapshot.GIB)


def test_tokenizer_is_duplicated_byte_identically(tiny_snapshot: Path) -> None:
    for name in gen_snapshot.TOKENIZER_FILES:
        a = (tiny_snapshot / "adapter" / name).read_bytes()
        b = (tiny_snapshot / "processor" / name).read_bytes()
        assert a == b
        json.loads(a)
    tok = json.loads((tiny_snapshot / "adapter" / "tokenizer.json").read_bytes())
    assert tok["model"]["type"] == "BPE"
    assert (tiny_snapshot / "adapter" / "tokenizer.json").stat().st_size > 2 * 1024 * 1024


def test_manifest_artifacts_match_the_files(tiny_snapshot: Path) -> None:
    manifest = json.loads((tiny_snapshot / "snapshot_manifest.json").read_text())
    files = sorted(
        p.relative_to(tiny_snapshot).as_posix() for p in tiny_snapshot.rglob("*") if p.is_file()
    )
    listed = [a["path"] for a in manifest["artifacts"]]
    assert listed == [f for f in files if f not in ("snapshot_manifest.json", "README.md")]
    for artifact in manifest["artifacts"]:
        data = (tiny_snapshot / artifact["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == artifact["sha256"]
        assert len(data) == artifact["size_bytes"]
    assert manifest["modality"] == "audio-language"
    assert (tiny_snapshot / "processor" / "preprocessor_config.json").is_file()
    assert (tiny_snapshot / "adapter" / "adapter_config.json").is_file()


def test_generation_is_deterministic(tiny_snapshot: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    gen_snapshot.generate_snapshot(again, TINY_GIB, seed=7)
    for p in tiny_snapshot.rglob("*"):
        if p.is_file():
            assert (again / p.relative_to(tiny_snapshot)).read_bytes() == p.read_bytes()


def test_bf16_conversion_rounds_to_nearest_even() -> None:
    np = pytest.importorskip("numpy")
    values = np.array([1.0, -2.5, 0.02, 1.00390625, 1.01171875], dtype=np.float32)
    bits = gen_snapshot.float32_to_bf16(values)
    back = (bits.astype(np.uint32) << 16).view(np.float32)
    assert back[0] == 1.0 and back[1] == -2.5
    assert back[3] == 1.0  # halfway: ties to the even mantissa
    assert back[4] == np.float32(1.015625)  # halfway: ties up to even
    assert abs(back[2] - 0.02) < 0.0002


def test_median_and_paired_ratios() -> None:
    assert run.summarize([]) is None
    s = run.summarize([3.0, 1.0, 2.0, 10.0])
    assert s == run.Summary(median=2.5, min=1.0, max=10.0, n=4)
    a = [1.0, 2.0, None, 4.0]
    b = [2.0, 2.0, 3.0, 2.0]
    assert run.paired_values(a, b, "ratio") == [0.5, 1.0, 2.0]
    assert run.paired_values(a, b, "speedup") == [2.0, 1.0, 0.5]
    with pytest.raises(ValueError):
        run.paired_values([1.0], [1.0, 2.0], "ratio")


def test_targets_rss_and_imports() -> None:
    s = run.summarize([0.9, 1.1, 0.95])
    assert run.target_met(s, "ratio", 1.0) is True
    assert run.target_met(s, "ratio", 0.9) is False
    assert run.target_met(s, "speedup", 0.9) is True
    assert run.target_met(None, "ratio", 1.0) is None
    assert run.target_met(s, "speedup", None) is None
    assert run.rss_growth_ok({1.0: 100.0}) is None
    assert run.rss_growth_ok({1.0: 100.0, 4.0: 120.0}) is True
    assert run.rss_growth_ok({1.0: 100.0, 4.0: 400.0}) is False
    stderr = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       120 |        120 |   torch._C\n"
        "import time:        80 |         80 | snaparc.cli\n"
        "import time:        10 |         10 |     peft\n"
    )
    assert run.heavy_imports(stderr) == ["peft", "torch"]
    assert run.parse_launcher_output("Command exited with non-zero status 3\n2048 3\n") == 2.0
    assert run.parse_launcher_output("") is None
    assert run.row("a|b", 1) == "| a\\|b | 1 |"


@pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("zstd", "tar", "b3sum", "sha256sum", "bash")),
    reason="needs zstd, tar, b3sum, sha256sum and bash",
)
def test_harness_runs_end_to_end_on_a_tiny_snapshot(tmp_path: Path) -> None:
    code = run.main(
        [
            "--sizes",
            str(TINY_GIB),
            "--rounds",
            "1",
            "--workdir",
            str(tmp_path / "work"),
            "--results-dir",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "results.json").read_text())
    md = (tmp_path / "RESULTS.md").read_text()
    assert "## Targets" in md and "warm page cache" in md.lower()
    commands = {c["command"] for c in report["commands"]}
    assert {"tar | zstd -3 -T0", "zstd -t A", "python tarfile+zstd10+sha256 pack"} <= commands
    assert all(r["exit_code"] == 0 for r in report["runs"] if not r["command"].startswith("snap"))
    assert report["sizes"][0]["archive_bytes"]["tar | zstd -3"] > 0
    assert all(r["other_cpu_s"] is not None and r["other_cpu_s"] >= 0 for r in report["runs"])
    assert "other work during the timed runs" in md


def test_contention_is_measured_from_other_work_cpu() -> None:
    def report(other: list[float | None]) -> dict[str, object]:
        runs = [{"round": 1, "wall_s": 10.0, "other_cpu_s": o} for o in other] + [
            {"round": 0, "wall_s": 10.0, "other_cpu_s": 50.0}
        ]  # warm-up: not counted
        return {"machine": {"cores": "2 logical, 2 usable"}, "runs": runs}

    quiet = run.contention_note(report([0.1, 0.2]))
    assert "0.3 CPU-s over 20 s" in quiet and "competed" not in quiet
    busy = run.contention_note(report([4.0, 2.0]))  # 6 of 40 CPU-s = 15 %
    assert "15.0%" in busy and "competed" in busy
    assert run.contention_note(report([None])) == ""


def test_codec_bench_runs_end_to_end_on_a_tiny_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks import codec

    argv = ["--size", str(TINY_GIB), "--dtypes", "BF16,F32", "--runs", "1"]
    assert codec.main([*argv, "--workdir", str(tmp_path / "w")]) == 0
    out = capsys.readouterr().out
    assert "| BF16 | --codec bytegroup (level 1) |" in out and "| F32 | default |" in out
    assert not (tmp_path / "w").exists()
