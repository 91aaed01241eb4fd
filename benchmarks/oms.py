"""OMS signing and verification: snaparc (manifest only) vs model_signing (hashes the tree).

On a generated HF snapshot export (`gen_snapshot.py`, the same as `run.py`),
packed once, with one EC P-256 key, it times (median of `--rounds`, each run
a fresh process, warm page cache):

- `snaparc sign ARCHIVE --oms` vs `model_signing sign key DIR`;
- the OMS check alone in snaparc (bundle signature + the statement against
  the manifest, read from the archive's head: what `verify --oms-signature`
  adds to a verify) vs `model_signing verify key DIR`;
- `snaparc verify ARCHIVE --oms-signature` (the normal verify too: both
  digests of every byte) for reference.

Usage: python -m benchmarks.oms [--size 4] [--rounds 3] [--workdir benchmarks/work]
Prints one result line per comparison and appends them to RESULTS-oms.md.
No assertions: figures only.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.run import ensure_snapshot, loadavg, machine_facts

HERE = Path(__file__).resolve().parent
PY = sys.executable

CHECK_ONLY = """
import sys
from snaparc.airgap.oms.sign import check_statement, open_statement, read_bundle
from snaparc.airgap.oms.tree import manifest_tree
from snaparc.api import ls
statement, hint = open_statement(read_bundle(sys.argv[2]), sys.argv[3], max_resources=100000)
check_statement(statement, manifest_tree(ls(sys.argv[1]).listing.manifest), hint=hint)
"""


def timed(argv: list[str], rounds: int) -> float:
    times = []
    for _ in range(rounds + 1):  # one warm-up run, not counted
        t0 = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"failed ({done.returncode}): {argv}\n{done.stderr[-2000:]}")
        times.append(elapsed)
    return statistics.median(times[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=float, default=4.0, help="GiB of weights (default 4)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=HERE / "work")
    args = ap.parse_args()
    base = args.workdir / f"oms-{args.size:g}"
    base.mkdir(parents=True, exist_ok=True)
    src = ensure_snapshot(base, args.size, 0)
    archive, key, pub = base / "a.dlmsnap", base / "k.pem", base / "pub.pem"
    snaparc, ms = [PY, "-m", "snaparc"], [PY, "-m", "model_signing"]
    if not archive.is_file():
        subprocess.run([*snaparc, "pack", str(src), "-o", str(archive), "-q"], check=True)
    ec = ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)]
    subprocess.run(ec, check=True)
    subprocess.run(["openssl", "ec", "-in", str(key), "-pubout", "-out", str(pub)], check=True)
    ours, theirs = base / "a.dlmsnap.oms.json", base / "model.sig"
    load_before = loadavg()
    ms_sign = ["sign", "key", str(src), "--private_key", str(key), "--signature", str(theirs)]
    ms_verify = ["verify", "key", str(src), "--public_key", str(pub), "--signature", str(ours)]
    check = [PY, "-c", CHECK_ONLY, str(archive), str(theirs), str(pub)]
    rows = [
        (
            "sign",
            timed([*snaparc, "sign", str(archive), "--oms", "-s", str(key)], args.rounds),
            timed([*ms, *ms_sign], args.rounds),
        ),
        ("verify (OMS check)", timed(check, args.rounds), timed([*ms, *ms_verify], args.rounds)),
    ]
    oms = ["--oms-signature", str(theirs), "--public-key", str(pub), "-q"]
    full = timed([*snaparc, "verify", str(archive), *oms], args.rounds)
    facts = machine_facts(args.workdir)
    lines = [
        f"## OMS, {args.size:g} GiB snapshot, {facts['date']}, {facts['cpu model']}, "
        f"{facts['cores']}, median of {args.rounds}",
        "",
        "| | snaparc (manifest only) | model_signing (hashes the tree) | ratio |",
        "|---|---|---|---|",
    ]
    lines += [f"| {name} | {a:.2f} s | {b:.2f} s | {a / b:.3f} |" for name, a, b in rows]
    lines += [
        "",
        f"`snaparc verify --oms-signature` (with the normal verify of every byte): {full:.2f} s",
        "",
        f"load average before / after: {load_before} / {loadavg()} (other jobs on the "
        "machine slow both sides alike only when they are steady; compare ratios with care)",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    with (HERE / "RESULTS-oms.md").open("a", encoding="utf-8") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
