"""Mirror transfers side by side: snaparc against plain concurrent transfers.

    python -m benchmarks.transfers ARCHIVE [--runs N] [--jobs 4]

Starts a moto S3 server on 127.0.0.1 in a child process, pushes ARCHIVE to
it and to a directory mirror, then times, in the same run and on the same
objects with the same concurrency (`--jobs`):

- `snaparc verify ARCHIVE` (the local file);
- `snaparc push` / `pull` / `verify URL:REF` / `unpack URL:REF` for the S3
  and the directory mirror;
- a plain concurrent download (boto3 GETs, `jobs` threads, no checks) and a
  plain concurrent upload of the same part objects; for the directory mirror,
  a plain concurrent copy of the part files.

Wall time and peak RSS (`/usr/bin/time -v`, children included) of every
command; the table is printed as markdown for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SNAPARC = [sys.executable, "-m", "snaparc"]
_RSS = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")

_DOWNLOAD = """
import sys, boto3, concurrent.futures as cf
ep, bucket, prefix, jobs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
    Bucket=bucket, Prefix=prefix) for o in page.get("Contents", [])
    if "/blobs/" in o["Key"] or "/manifests/" in o["Key"]]
def get(k):
    body = s3.get_object(Bucket=bucket, Key=k)["Body"]
    n = 0
    while chunk := body.read(1 << 20):
        n += len(chunk)
    return n
with cf.ThreadPoolExecutor(jobs) as pool:
    print(sum(pool.map(get, keys)))
"""

_UPLOAD = """
import sys, os, boto3, concurrent.futures as cf
ep, bucket, src, jobs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
files = [os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs
         if "/blobs/" in os.path.join(d, f) or "/manifests/" in os.path.join(d, f)]
def put(path):
    with open(path, "rb") as f:
        s3.put_object(Bucket=bucket, Key="plain/" + os.path.relpath(path, src), Body=f.read())
with cf.ThreadPoolExecutor(jobs) as pool:
    list(pool.map(put, files))
"""

_COPY = """
import sys, os, shutil, concurrent.futures as cf
src, dst, jobs = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = [os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs]
def copy(path):
    out = os.path.join(dst, os.path.relpath(path, src))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    shutil.copyfile(path, out)
with cf.ThreadPoolExecutor(jobs) as pool:
    list(pool.map(copy, files))
"""

_SERVER = """
import sys, time
from moto.server import ThreadedMotoServer
s = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
s.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    start = time.monotonic()
    r = subprocess.run(
        ["/usr/bin/time", "-v", *argv], env=env, capture_output=True, text=True, check=False
    )
    wall = time.monotonic() - start
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(argv)}\n{r.stderr[-2000:]}")
    m = _RSS.search(r.stderr)
    return wall, int(m.group(1)) // 1024 if m else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--label", default="")
    args = parser.parse_args(argv)
    archive = args.archive.resolve()
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    work = Path(tempfile.mkdtemp(prefix="snaparc-bench-transfers-"))
    env = dict(
        os.environ,
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        import boto3  # type: ignore[import-untyped]

        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket="bench")

        def wipe(prefix: str) -> None:
            """Delete what a timed push left: moto keeps every object in memory,
            and a 4 GiB archive pushed once per run would crowd the page cache out."""
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix=prefix)
            for page in pages:
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    s3.delete_objects(Bucket="bench", Delete={"Objects": keys})

        mirror = work / "mirror"
        jobs = ["--jobs", str(args.jobs)]
        rows: list[tuple[str, list[tuple[float, int]]]] = []

        def bench(name: str, make: list[str], before: object = None, after: object = None) -> None:
            results = []
            for run in range(args.runs):
                if callable(before):
                    before()
                argv = [a.replace("{run}", str(run)) for a in make]
                results.append(_timed(argv, env))
                if callable(after):
                    after(run)
            rows.append((name, results))

        def clean(*paths: Path) -> object:
            def run() -> None:
                for p in paths:
                    if p.is_dir():
                        shutil.rmtree(p)
                    elif p.exists():
                        p.unlink()

            return run

        out, dest = work / "out.dlmsnap", work / "dest"
        s3url = "s3://bench/m"
        with open(archive, "rb") as f:  # warm the page cache: every row reads it warm
            while f.read(1 << 24):
                pass
        bench("snaparc verify A (local file)", [*SNAPARC, "verify", str(archive)])
        # every push run goes to a new prefix: a real first push each time
        bench("snaparc push A s3 (first push)", [*SNAPARC, "push", str(archive), "s3://bench/p{run}",
              "--ref", "r", *jobs], after=lambda run: wipe(f"p{run}/"))  # fmt: skip
        subprocess.run([*SNAPARC, "push", str(archive), s3url, "--ref", "r", "--quiet"], env=env,
                       check=True)  # fmt: skip
        bench("snaparc push A DIR", [*SNAPARC, "push", str(archive), str(mirror), "--ref", "r",
              *jobs], clean(mirror))  # fmt: skip
        bench("plain concurrent upload (boto3, no checks)", [sys.executable, "-c", _UPLOAD,
              endpoint, "bench", str(mirror), str(args.jobs)],
              after=lambda run: wipe("plain/"))  # fmt: skip
        bench("snaparc pull s3:REF -o A", [*SNAPARC, "pull", f"{s3url}:r", "-o", str(out),
              *jobs], clean(out))  # fmt: skip
        bench("snaparc verify s3:REF", [*SNAPARC, "verify", f"{s3url}:r"])
        bench("snaparc unpack s3:REF -C D", [*SNAPARC, "unpack", f"{s3url}:r", "-C", str(dest)],
              clean(dest))  # fmt: skip
        bench("plain concurrent download (boto3, no checks)", [sys.executable, "-c", _DOWNLOAD,
              endpoint, "bench", "m/", str(args.jobs)])  # fmt: skip
        bench("snaparc pull DIR:REF -o A", [*SNAPARC, "pull", f"{mirror}:r", "-o", str(out),
              *jobs], clean(out))  # fmt: skip
        bench("snaparc verify DIR:REF", [*SNAPARC, "verify", f"{mirror}:r"])
        bench("plain concurrent copy of the DIR mirror", [sys.executable, "-c", _COPY,
              str(mirror), str(work / "copy"), str(args.jobs)], clean(work / "copy"))  # fmt: skip
        print(f"| size | command | runs | wall s, median (min–max) | peak RSS MiB |{args.label}")
        print("| --- | --- | --- | --- | --- |")
        for name, results in rows:
            walls = sorted(w for w, _ in results)
            rss = max(r for _, r in results)
            med = walls[len(walls) // 2]
            print(
                f"| {args.label or archive.name} | {name} | {len(walls)} | "
                f"{med:.2f} ({walls[0]:.2f}–{walls[-1]:.2f}) | {rss} |"
            )
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
