"""OCI push/pull figures: raw ModelPack layers against the archive's own frames.

    python -m benchmarks.oci --size 1 [--workdir DIR]

Generates a bf16 snapshot export (`gen_snapshot`), packs it, starts a
`docker-registry` on 127.0.0.1 with its storage under the work dir, and times
(wall, one round each; warm cache):

- `snaparc push` to an empty repository (every layer sent), then again (all
  skipped), then a v2 with one more file (one layer sent);
- `snaparc pull` (rebuilds the archive: fetch raw layers, recompress, verify);
- `snaparc unpack oci://…` (the files to a directory, every byte verified);
- side by side, oras-py (if installed) pushing the same files as one layer
  each (titled with their paths) to another repository of the registry,
  again, and pulling them to a directory (oras-py checks no digest of what it
  writes, snaparc checks sha256 and blake3 of every file);
- the same push and pull against a directory mirror (spec/MIRROR.md), which
  stores the archive's compressed frames as they are.

It prints a Markdown table (spec/OCI.md, "Measured") with the bytes each
sent; the difference of the two is the cost of raw layers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _timed(fn: object, *args: object, **kwargs: object) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)  # type: ignore[operator]
    return time.perf_counter() - t0, out


def _oras_rows(host: str, src: Path, work: Path) -> list[tuple[str, float, str]]:
    """oras-py pushing the export's files (one layer per file, titled with its
    path), pushing them again, and pulling them to a directory."""
    try:
        import oras.client
    except ImportError:
        return [("oras-py (not installed)", 0.0, "-")]
    files = sorted(str(p.relative_to(src)) for p in src.rglob("*") if p.is_file())
    titles = work / "oras-annotations.json"
    titles.write_text(
        json.dumps({f: {"org.opencontainers.image.title": f} for f in files}, sort_keys=True)
    )
    client = oras.client.OrasClient(hostname=host, insecure=True)
    target = f"{host}/bench/oras:v1"
    raw = sum((src / f).stat().st_size for f in files)
    rows: list[tuple[str, float, str]] = []
    here = os.getcwd()
    os.chdir(src)  # oras-py takes paths relative to the working directory
    try:
        t, _ = _timed(client.push, files=files, target=target, annotation_file=str(titles))
        rows.append(("oras-py push, same files (empty repository)", t, f"{raw:,}"))
        t, _ = _timed(client.push, files=files, target=target, annotation_file=str(titles))
        rows.append(("oras-py push again", t, "(not counted)"))
    finally:
        os.chdir(here)
    out = work / "oras-pulled"
    t, _ = _timed(client.pull, target=target, outdir=str(out))
    for f in files:
        assert (out / f).read_bytes() == (src / f).read_bytes(), f
    rows.append(("oras-py pull (files to a directory, unchecked)", t, "-"))
    return rows


def _stored(root: Path) -> int:
    """The bytes of the blobs the registry's filesystem storage holds."""
    blobs = root / "docker" / "registry" / "v2" / "blobs"
    return sum(p.stat().st_size for p in blobs.rglob("data") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=1.0, help="weights size in GiB")
    parser.add_argument("--workdir", type=Path, default=HERE / "work-oci")
    args = parser.parse_args(argv)

    import snaparc
    from benchmarks.gen_snapshot import generate_snapshot

    binary = shutil.which("docker-registry")
    if binary is None:
        print("docker-registry not installed (apt-get install docker-registry)", file=sys.stderr)
        return 2
    work = args.workdir
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    src = work / "export"
    generate_snapshot(src, args.size, seed=0)
    archive = work / "v1.dlmsnap"
    snaparc.pack(src, archive)
    (src / "NOTES.txt").write_bytes(b"v2: one more file\n")
    archive_v2 = work / "v2.dlmsnap"
    snaparc.pack(src, archive_v2, allow_undeclared=True)

    port = _port()
    config = work / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
        "storage:\n  filesystem:\n"
        f"    rootdirectory: {work / 'registry'}\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(
        [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    rows: list[tuple[str, float, str]] = []
    stored: dict[str, int] = {}
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        repo = f"oci://127.0.0.1:{port}/bench/adapter"
        size = archive.stat().st_size
        t, r = _timed(snaparc.push, archive, f"{repo}:v1")
        rows.append(("oci push (empty repository)", t, f"{r.report.bytes_sent:,}"))  # type: ignore[attr-defined]
        stored["after v1"] = _stored(work / "registry")
        t, r = _timed(snaparc.push, archive, f"{repo}:v1")
        rows.append(("oci push again (all skipped)", t, f"{r.report.bytes_sent:,}"))  # type: ignore[attr-defined]
        t, r = _timed(snaparc.push, archive_v2, f"{repo}:v2")
        rows.append(("oci push v2 (one file added)", t, f"{r.report.bytes_sent:,}"))  # type: ignore[attr-defined]
        stored["after v2"] = _stored(work / "registry")
        out = work / "pulled.dlmsnap"
        t, _ = _timed(snaparc.pull, f"{repo}:v1", out)
        assert out.read_bytes() == archive.read_bytes()
        rows.append(("oci pull (rebuild + verify)", t, f"{size:,} written"))
        t, _ = _timed(snaparc.verify, f"{repo}:v1")
        rows.append(("oci verify (rebuild + verify, no file)", t, "-"))
        t, _ = _timed(snaparc.unpack, f"{repo}:v1", work / "unpacked")
        rows.append(("oci unpack (files to a directory, verified)", t, "-"))
        rows += _oras_rows(f"127.0.0.1:{port}", src, work)
        mirror = work / "mirror"
        t, r = _timed(snaparc.push, archive, str(mirror), ref="v1")
        rows.append(("dir mirror push (frames as they are)", t, f"{r.report.bytes_sent:,}"))  # type: ignore[attr-defined]
        out2 = work / "pulled-mirror.dlmsnap"
        t, _ = _timed(snaparc.pull, f"{mirror}:v1", out2)
        rows.append(("dir mirror pull", t, f"{size:,} written"))
        t, _ = _timed(snaparc.verify, archive)
        rows.append(("verify of the local file (reference)", t, "-"))
    finally:
        proc.terminate()
        proc.wait(10)
    raw = sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
    print(f"\n{args.size:g} GiB bf16 snapshot; {_cpu()}, {os.cpu_count()} cores; warm cache")
    print(f"files (raw layers) {raw:,} bytes; archive {size:,} bytes ({size / raw:.3f} of raw)\n")
    print("| step | wall s | bytes sent |\n|---|---|---|")
    for name, t, sent in rows:
        print(f"| {name} | {t:.2f} | {sent} |")
    print("\n| registry storage (blob data, snaparc's repository) | bytes | / archive v1 |")
    print("|---|---|---|")
    for name, n in stored.items():
        print(f"| {name} | {n:,} | {n / size:.3f} |")
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
