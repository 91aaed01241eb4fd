"""Tensor-aware compression side by side: `pack --codec bytegroup` against the default.

    python -m benchmarks.codec [--size GIB] [--dtypes BF16,F16,F32] [--runs N]
                               [--zipnn-path DIR] [--workdir DIR]

For each dtype, generates a snapshot export of random-normal LoRA weights
(`gen_snapshot --dtype`, the bench's bf16 snapshot and its fp16 and fp32
variants) and measures, in the same run:

- the weights' compressed size / their raw bytes: `zstd -3` of the raw file
  (the CLI, one stream), the weights member of a default archive (level 3),
  of a `--level 1` one and of `--codec bytegroup` ones (level 1, the codec's
  default, and level 3),
  and `zipnn` (the PyPI package, in-process) when it imports
  (`--zipnn-path` for a `pip install --target` directory);
- the whole archive / the tree's raw bytes, for each variant;
- `snaparc pack` and `snaparc verify` wall (the CLI, warm cache), every
  variant in each round, and the median of the per-round ratios variant /
  default.

Every archive is checked: `snaparc verify` passes, and `snaparc cat` of the
weights gives the generated file back; zipnn's output is decompressed and
compared (and the result recorded, not assumed). Prints Markdown for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
SNAPARC = [sys.executable, "-m", "snaparc"]
WEIGHTS = "adapter/adapter_model.safetensors"
ZIPNN_DTYPES = {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}


def _wall(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + sys) seconds of one command; CPU seconds move less
    than wall when other work shares the cores."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def _weights_member_bytes(archive: Path) -> int:
    """Compressed bytes of the frames of the weights file's blob member."""
    from snaparc.archive.index import open_index

    with archive.open("rb") as f:
        index = open_index(f)
    blob = next(x.blob for x in index.manifest.files if x.path == WEIGHTS)
    start, end = index.member_range(index.layout.blob_member(blob))
    return end - start


def _load_zipnn(path: Path | None) -> ModuleType | str:
    if path is not None:
        sys.path.insert(0, str(path))
    try:
        return importlib.import_module("zipnn")
    except ImportError as exc:
        return f"not importable ({exc})"


def _zipnn(module: ModuleType, data: bytes, dtype: str) -> dict[str, float]:
    codec = module.ZipNN(input_format="byte", bytearray_dtype=ZIPNN_DTYPES[dtype], threads=0)
    t0 = time.perf_counter()
    packed = codec.compress(data)
    t1 = time.perf_counter()
    back = codec.decompress(packed)
    t2 = time.perf_counter()
    return {
        "ratio": len(packed) / len(data),
        "compress_s": t1 - t0,
        "decompress_s": t2 - t1,
        "lossless": bytes(back) == data,  # recorded, not assumed (0.5.4 here: False)
    }


def _version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "(version unknown)"


def _tree_bytes(src: Path) -> int:
    return sum(p.stat().st_size for p in src.rglob("*") if p.is_file())


def measure(
    dtype: str, size_gib: float, runs: int, work: Path, zipnn: ModuleType | str
) -> dict[str, Any]:
    from benchmarks.gen_snapshot import generate_snapshot

    src = work / f"export-{dtype}"
    generate_snapshot(src, size_gib, seed=0, dtype=dtype)
    weights = src / WEIGHTS
    raw = weights.stat().st_size
    zst = work / "weights.zst"
    subprocess.run(["zstd", "-3", "-T0", "-q", "-f", str(weights), "-o", str(zst)], check=True)
    zstd_ratio = zst.stat().st_size / raw
    zst.unlink()

    variants = {  # name -> extra pack options
        "none": [],
        "none-l1": ["--level", "1"],
        "bytegroup": ["--codec", "bytegroup"],  # level 1, the codec's default
        "bytegroup-l3": ["--codec", "bytegroup", "--level", "3"],
    }
    archives = {v: work / f"{dtype}-{v}.dlmsnap" for v in variants}
    walls: dict[str, list[float]] = {f"{op} {v}": [] for op in ("pack", "verify") for v in variants}
    cpus: dict[str, list[float]] = {k: [] for k in walls}
    for round_ in [None, *range(runs)]:  # one warm-up round, not counted
        this: dict[str, tuple[float, float]] = {}
        for v, extra in variants.items():
            argv = [*SNAPARC, "pack", str(src), "-o", str(archives[v]), "--force", "-q", *extra]
            this[f"pack {v}"] = _wall(argv)
        for v in variants:
            this[f"verify {v}"] = _wall([*SNAPARC, "verify", str(archives[v]), "-q"])
        if round_ is not None:
            for k, (wall, cpu) in this.items():
                walls[k].append(wall)
                cpus[k].append(cpu)
    for archive in archives.values():
        out = subprocess.run(
            [*SNAPARC, "cat", str(archive), WEIGHTS], check=True, capture_output=True
        ).stdout
        if out != weights.read_bytes():
            raise AssertionError(f"{archive}: cat does not give the weights back")
    tree = _tree_bytes(src)

    def ratio(op: str, v: str, of: dict[str, list[float]]) -> float:
        pairs = zip(of[f"{op} none"], of[f"{op} {v}"], strict=True)
        return statistics.median(b / a for a, b in pairs)

    result: dict[str, Any] = {
        "dtype": dtype,
        "weights_bytes": raw,
        "tree_bytes": tree,
        "zstd3": zstd_ratio,
        **{v: _weights_member_bytes(a) / raw for v, a in archives.items()},
        **{f"archive {v}": a.stat().st_size / tree for v, a in archives.items()},
        "walls": walls,
        "cpus": cpus,
        **{f"{op} ratio {v}": ratio(op, v, walls) for op in ("pack", "verify") for v in variants},
        **{f"{op} cpu {v}": ratio(op, v, cpus) for op in ("pack", "verify") for v in variants},
    }
    if isinstance(zipnn, ModuleType):
        result["zipnn"] = _zipnn(zipnn, weights.read_bytes(), dtype)
    for a in archives.values():
        a.unlink()
    shutil.rmtree(src)
    return result


def _med(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def render(results: list[dict[str, Any]], zipnn: ModuleType | str, size: float, runs: int) -> str:
    zipnn_note = (
        f"zipnn {_version('zipnn')} (in-process, threads=0)"
        if isinstance(zipnn, ModuleType)
        else f"zipnn: {zipnn}"
    )
    lines = [
        f"{size:g} GiB of random-normal LoRA weights per dtype (std 0.02/0.01), seed 0; "
        f"{runs} timed rounds after one warm-up; {zipnn_note}.",
        "",
        "Compressed size / raw bytes of the weights file (lower is better):",
        "",
        "| dtype | zstd -3 (CLI) | snaparc default (level 3) | snaparc --level 1 | "
        "bytegroup (level 1) | bytegroup --level 3 | zipnn |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        z = r.get("zipnn")
        zipnn_cell = (
            f"{z['ratio']:.4f}{'' if z['lossless'] else ' (did not round-trip)'}" if z else "-"
        )
        lines.append(
            f"| {r['dtype']} | {r['zstd3']:.4f} | {r['none']:.4f} | {r['none-l1']:.4f} | "
            f"{r['bytegroup']:.4f} | {r['bytegroup-l3']:.4f} | {zipnn_cell} |"
        )
    lines += [
        "",
        "Whole archive / tree bytes; walls in s, median (min–max); the ratios are the "
        "median of the per-round values against the default pack (level 3, no codec), "
        "of wall time and of CPU (user + sys) time:",
        "",
        "| dtype | variant | archive / tree | pack s | pack ratio (cpu) | verify s | "
        "verify ratio (cpu) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        w = r["walls"]
        for v, label in (
            ("none", "default"),
            ("none-l1", "--level 1"),
            ("bytegroup", "--codec bytegroup (level 1)"),
            ("bytegroup-l3", "--codec bytegroup --level 3"),
        ):
            lines.append(
                f"| {r['dtype']} | {label} | {r[f'archive {v}']:.4f} | {_med(w[f'pack {v}'])} | "
                f"{r[f'pack ratio {v}']:.2f} ({r[f'pack cpu {v}']:.2f}) | "
                f"{_med(w[f'verify {v}'])} | "
                f"{r[f'verify ratio {v}']:.2f} ({r[f'verify cpu {v}']:.2f}) |"
            )
    zipnn_rows = [r for r in results if r.get("zipnn")]
    if zipnn_rows:
        lines += ["", "| dtype | zipnn compress s | zipnn decompress s |", "| --- | --- | --- |"]
        for r in zipnn_rows:
            z = r["zipnn"]
            lines.append(f"| {r['dtype']} | {z['compress_s']:.2f} | {z['decompress_s']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=0.25, help="weights GiB per dtype")
    parser.add_argument("--dtypes", default="BF16,F16,F32")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--zipnn-path", type=Path, help="a directory holding the zipnn package (pip --target)"
    )
    parser.add_argument("--workdir", type=Path, default=HERE / "work-codec")
    args = parser.parse_args(argv)
    from benchmarks.run import loadavg, machine_facts

    work = args.workdir
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    zipnn = _load_zipnn(args.zipnn_path)
    facts = machine_facts(work)
    load_start = loadavg()
    t0 = time.perf_counter()
    results = [
        measure(d.strip(), args.size, args.runs, work, zipnn) for d in args.dtypes.split(",")
    ]
    print(render(results, zipnn, args.size, args.runs))
    print(
        f"\nMachine: {facts['cpu model']}, {facts['cores']}, {facts['cpu flags']}; "
        f"{facts['zstd']}; zstandard (py) {facts['zstandard (py)']}; python {facts['python']}; "
        f"snaparc {facts['snaparc commit']}; {facts['date']}; load average {load_start} at "
        f"start, {loadavg()} at end; {time.perf_counter() - t0:.0f} s; {os.cpu_count()} cores "
        "shared with other work."
    )
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
