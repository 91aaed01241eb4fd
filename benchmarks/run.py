"""Run snaparc and the stock/old-tool baselines side by side; write RESULTS.md.

Every comparison alternates its two commands (A B A B ...) for several
rounds after one warm-up pair, times each run with `time.perf_counter`
around `os.posix_spawn` + `os.wait4`, and takes the peak RSS from the
`ru_maxrss` that `wait4` returns. Pipelines run under `bash -c`: the kernel
folds the peak RSS of every reaped descendant into the shell's, so the figure
is the largest stage of the pipeline. Ratios are taken per round pair and
summarised by their median. Failed runs are recorded, never dropped.

Usage: python -m benchmarks.run [--sizes 1,4] [--rounds 3] [--slow-rounds 1]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import gen_snapshot

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MIB = 1024**2
RSS_LIMIT_MIB = 256.0
RSS_GROWTH_LIMIT = 1.10  # peak RSS at the largest size ≤ 110% of the smallest (+16 MiB)
RSS_GROWTH_SLACK_MIB = 16.0
HEAVY_MODULES = ("torch", "transformers", "peft")
SNAPARC_COMMANDS = ("pack", "verify", "unpack", "materialize", "ls")


# --- pure functions (tested in tests/test_benchmarks_smoke.py) -----------------


@dataclass(frozen=True)
class Summary:
    median: float
    min: float
    max: float
    n: int


def summarize(values: Sequence[float]) -> Summary | None:
    """Median, min and max of `values`; None when there are none."""
    if not values:
        return None
    return Summary(
        median=statistics.median(values), min=min(values), max=max(values), n=len(values)
    )


def paired_values(a: Sequence[float | None], b: Sequence[float | None], kind: str) -> list[float]:
    """Per-round values of a pair of series; rounds where either side failed (None) drop out.

    `kind="ratio"` gives a/b (snaparc over baseline, lower is better);
    `kind="speedup"` gives b/a (how many times faster snaparc is).
    """
    if len(a) != len(b):
        raise ValueError(f"series differ in length: {len(a)} != {len(b)}")
    out: list[float] = []
    for x, y in zip(a, b, strict=True):
        if x is None or y is None or x <= 0 or y <= 0:
            continue
        out.append(x / y if kind == "ratio" else y / x)
    return out


def target_met(summary: Summary | None, kind: str, limit: float | None) -> bool | None:
    """Whether the median meets the target: ≤ limit for ratios, ≥ limit for speedups."""
    if summary is None or limit is None:
        return None
    return summary.median <= limit if kind == "ratio" else summary.median >= limit


def heavy_imports(importtime_stderr: str, names: Sequence[str] = HEAVY_MODULES) -> list[str]:
    """Top-level packages among `names` that `python -X importtime` shows imported."""
    found: set[str] = set()
    for line in importtime_stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        module = line.rsplit("|", 1)[-1].strip()
        top = module.split(".", 1)[0]
        if top in names:
            found.add(top)
    return sorted(found)


def rss_growth_ok(rss_by_size: dict[float, float]) -> bool | None:
    """Peak RSS at the largest size within 110% (+16 MiB) of that at the smallest."""
    if len(rss_by_size) < 2:
        return None
    small = rss_by_size[min(rss_by_size)]
    large = rss_by_size[max(rss_by_size)]
    return large <= small * RSS_GROWTH_LIMIT + RSS_GROWTH_SLACK_MIB


def parse_sizes(text: str) -> list[float]:
    sizes = [float(s) for s in text.split(",") if s.strip()]
    if not sizes or any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"bad --sizes {text!r}")
    return sizes


def fmt_num(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def fmt_summary(s: Summary | None, digits: int = 2) -> str:
    if s is None:
        return "—"
    return f"{s.median:.{digits}f} ({s.min:.{digits}f}–{s.max:.{digits}f})"


def fmt_met(met: bool | None) -> str:
    return {True: "met", False: "**not met**", None: "—"}[met]


# --- running one command ---------------------------------------------------------


@dataclass
class Run:
    command: str
    size_gib: float
    round: int  # 0 = warm-up (not in the statistics)
    wall_s: float
    cpu_s: float
    maxrss_mib: float | None
    exit_code: int
    anon_mib: float = 0.0
    file_mib: float = 0.0
    stderr_tail: str = ""
    other_cpu_s: float | None = None  # CPU that other processes used during this run


@dataclass
class Command:
    """One benchmarked command. `argv` is exec'd directly (pipelines via bash -c)."""

    key: str
    argv: list[str]
    shown: str
    prepare: Callable[[], None] = lambda: None
    cleanup: Callable[[], None] = lambda: None


# The peak RSS `wait4` reports for a child includes the RSS high-water mark of
# the process it was exec'd from (Linux folds the old mm's hiwater into
# `signal->maxrss` at exec), so a child spawned straight from this harness would
# report at least the harness's own peak. Each command is therefore started by a
# small launcher that forks it and reports the child's `ru_maxrss`: GNU
# `/usr/bin/time -f %M`, or this minimal Python script when `time` is missing.
TIME_BIN = "/usr/bin/time"
LAUNCHER_PY = """
import os, sys
out, argv = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
code = os.waitstatus_to_exitcode(status)
with open(out, "w") as fh:
    fh.write(f"{usage.ru_maxrss} {code}\\n")
sys.exit(code if code >= 0 else 128 - code)
"""


def rss_method() -> str:
    if Path(TIME_BIN).exists():
        return "GNU `/usr/bin/time -f %M` around each command (a pipeline: around its `bash -c`)"
    return "a minimal `python -I -S` fork/exec/wait4 launcher (≈10 MiB floor)"


def launcher_argv(argv: Sequence[str], rss_path: Path) -> list[str]:
    if Path(TIME_BIN).exists():
        return [TIME_BIN, "-f", "%M %x", "-o", str(rss_path), "--", *argv]
    return [sys.executable, "-I", "-S", "-c", LAUNCHER_PY, str(rss_path), *argv]


def parse_launcher_output(text: str) -> float | None:
    """Peak RSS in MiB from the launcher's last line `KIB EXIT` (None if absent)."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return None
    fields = lines[-1].split()
    try:
        return int(fields[0]) / 1024.0
    except (ValueError, IndexError):
        return None


class TreeSampler:
    """Samples RssAnon and RssFile, summed over a session's processes, every `interval` s.

    `ru_maxrss` counts mapped file pages (an mmap of a 1 GiB input counts as 1 GiB),
    and for a pipeline it is its largest stage. This sampler tells the two kinds
    apart and sums concurrent stages. It can miss a peak shorter than `interval`.
    """

    def __init__(self, session: int, interval: float = 0.1) -> None:
        self.session = session
        self.interval = interval
        self.peak_anon_kib = 0
        self.peak_file_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            anon, file = self.sample()
            self.peak_anon_kib = max(self.peak_anon_kib, anon)
            self.peak_file_kib = max(self.peak_file_kib, file)

    def sample(self) -> tuple[int, int]:
        anon = file = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
                fields = stat.rsplit(")", 1)[1].split()
                if int(fields[3]) != self.session:  # field 6: session id
                    continue
                status = Path(entry.path, "status").read_text()
            except (OSError, IndexError, ValueError):
                continue
            anon += _status_kib(status, "RssAnon")
            file += _status_kib(status, "RssFile")
        return anon, file


def _status_kib(status: str, key: str) -> int:
    m = re.search(rf"^{key}:\s+(\d+) kB", status, re.M)
    return int(m.group(1)) if m else 0


@dataclass
class Measured:
    wall_s: float
    cpu_s: float
    maxrss_mib: float | None
    exit_code: int
    anon_mib: float  # sampled peak, summed over the process tree
    file_mib: float


def run_once(argv: Sequence[str], stderr_path: Path, timeout_s: float) -> Measured:
    """(wall s, user+sys cpu s, peak RSS MiB, exit code) of one run; stdout to /dev/null."""
    rss_path = stderr_path.with_suffix(".rss")
    rss_path.unlink(missing_ok=True)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, str(stderr_path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
    ]
    full = launcher_argv(argv, rss_path)
    t0 = time.perf_counter()
    pid = os.posix_spawn(full[0], full, os.environ, file_actions=actions, setsid=True)
    timer = threading.Timer(timeout_s, _kill_group, args=(pid,))
    timer.start()
    try:
        with TreeSampler(pid) as sampler:
            _, status, usage = os.wait4(pid, 0)
    finally:
        timer.cancel()
    wall = time.perf_counter() - t0
    cpu = usage.ru_utime + usage.ru_stime
    try:
        rss = parse_launcher_output(rss_path.read_text())
    except OSError:
        rss = None
    return Measured(
        wall,
        cpu,
        rss,
        os.waitstatus_to_exitcode(status),
        sampler.peak_anon_kib / 1024.0,
        sampler.peak_file_kib / 1024.0,
    )


def machine_busy_cpu_s() -> float | None:
    """CPU seconds all processors have spent busy since boot (`/proc/stat`), or None."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in first[1:9])
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """CPU seconds this harness process has used (its sampler thread included)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _tail(path: Path, limit: int = 600) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", "replace").strip()


class Runner:
    def __init__(self, workdir: Path, timeout_s: float, verbose: bool = True) -> None:
        self.workdir = workdir
        self.timeout_s = timeout_s
        self.verbose = verbose
        self.runs: list[Run] = []

    def has_run(self, key: str, size_gib: float) -> bool:
        return any(r.command == key and r.size_gib == size_gib for r in self.runs)

    def run(self, cmd: Command, size_gib: float, round_no: int) -> Run:
        cmd.prepare()
        os.sync()  # flush the previous command's writes outside the timed region
        err = self.workdir / "stderr.txt"
        busy0, own0 = machine_busy_cpu_s(), own_cpu_s()
        m = run_once(cmd.argv, err, self.timeout_s)
        busy1, own1 = machine_busy_cpu_s(), own_cpu_s()
        other = None
        if busy0 is not None and busy1 is not None:
            other = max(0.0, (busy1 - busy0) - m.cpu_s - (own1 - own0))
        wall, rss, code = m.wall_s, m.maxrss_mib, m.exit_code
        run = Run(
            cmd.key, size_gib, round_no, wall, m.cpu_s, rss, code, m.anon_mib, m.file_mib,
            _tail(err) if code else "", other,
        )  # fmt: skip
        cmd.cleanup()
        self.runs.append(run)
        if self.verbose:
            label = "warm-up" if round_no == 0 else f"round {round_no}"
            status = "ok" if code == 0 else f"EXIT {code}"
            print(
                f"  [{size_gib:g} GiB] {label:8} {cmd.key:36} {wall:8.2f} s "
                f"{fmt_num(rss, 1):>8} MiB  {status}",
                flush=True,
            )
        return run

    def alternate(
        self, a: Command | None, b: Command, size_gib: float, rounds: int, warmup: bool
    ) -> tuple[list[float | None], list[float | None]]:
        """A B A B ...; returns per-round wall times (None for a failed or absent run)."""
        if warmup:
            if a is not None:
                self.run(a, size_gib, 0)
            self.run(b, size_gib, 0)
        a_times: list[float | None] = []
        b_times: list[float | None] = []
        for r in range(1, rounds + 1):
            if a is not None:
                ra = self.run(a, size_gib, r)
                a_times.append(ra.wall_s if ra.exit_code == 0 else None)
            else:
                a_times.append(None)
            rb = self.run(b, size_gib, r)
            b_times.append(rb.wall_s if rb.exit_code == 0 else None)
        return a_times, b_times


# --- snaparc discovery -------------------------------------------------------------


@dataclass
class Snaparc:
    exe: str | None
    commands: dict[str, str] = field(default_factory=dict)  # name -> its --help text
    version: str = ""

    def has(self, name: str) -> bool:
        return name in self.commands

    def flag(self, name: str, flag: str) -> bool:
        return flag in self.commands.get(name, "")


def discover_snaparc(exe: str | None) -> Snaparc:
    """Which snaparc subcommands exist: `snaparc --help` then `snaparc CMD --help`."""
    if exe is None or (not Path(exe).exists() and shutil.which(exe) is None):
        return Snaparc(None)

    def _help(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60, check=False)

    try:
        top = _help("--help")
    except (OSError, subprocess.TimeoutExpired):
        return Snaparc(None)
    if top.returncode != 0:
        return Snaparc(None)
    found = Snaparc(exe)
    version = _help("--version")
    found.version = (version.stdout or version.stderr).strip()
    for name in SNAPARC_COMMANDS:
        res = _help(name, "--help")
        if res.returncode == 0:
            found.commands[name] = res.stdout
    return found


# --- machine facts -------------------------------------------------------------------


def _first_line(argv: Sequence[str]) -> str:
    try:
        res = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not available"
    out = (res.stdout or res.stderr).strip().splitlines()
    return out[0].strip() if out else "not available"


def _pkg_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_facts(workdir: Path) -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    flags_m = re.search(r"^flags\s*:\s*(.+)$", cpuinfo, re.M)
    flags = set(flags_m.group(1).split()) if flags_m else set()
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    mem = re.search(r"^MemTotal:\s*(\d+) kB", meminfo, re.M)
    fs = _first_line(["df", "--output=fstype", str(workdir)])
    fs_lines = subprocess.run(
        ["df", "--output=fstype,source", str(workdir)], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    if len(fs_lines) >= 2:
        fs = " ".join(fs_lines[1].split())
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "cores": f"{os.cpu_count()} logical, {len(os.sched_getaffinity(0))} usable",
        "cpu model": model.group(1).strip() if model else "unknown",
        "cpu flags": ", ".join(
            f"{f} {'yes' if f in flags else 'no'}" for f in ("sha_ni", "avx2", "avx512f")
        ),
        "memory": f"{int(mem.group(1)) / 1024 / 1024:.1f} GiB" if mem else "unknown",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "zstd": _first_line(["zstd", "--version"]),
        "tar": _first_line(["tar", "--version"]),
        "b3sum": _first_line(["b3sum", "--version"]),
        "sha256sum": _first_line(["sha256sum", "--version"]),
        "zstandard (py)": _pkg_version("zstandard"),
        "blake3 (py)": _pkg_version("blake3"),
        "workdir filesystem": fs,
        "snaparc commit": _first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
    }


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


# --- the comparisons ---------------------------------------------------------------


@dataclass
class Comparison:
    key: str
    target: str  # human statement of the target
    kind: str  # "ratio" (a/b, ≤ limit) or "speedup" (b/a, ≥ limit)
    limit: float | None
    a: Command | None
    b: Command
    rounds: int
    warmup: bool = True
    unavailable: str = ""  # why the snaparc side could not run


@dataclass
class ComparisonResult:
    key: str
    target: str
    kind: str
    limit: float | None
    a_cmd: str
    b_cmd: str
    a_times: list[float | None]
    b_times: list[float | None]
    values: list[float]
    summary: Summary | None
    met: bool | None
    note: str = ""


def _rm(*paths: Path) -> Callable[[], None]:
    def clean() -> None:
        for p in paths:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()

    return clean


def _mkdir_fresh(path: Path) -> Callable[[], None]:
    def prep() -> None:
        _rm(path)()
        path.mkdir(parents=True)

    return prep


def _bash(script: str) -> list[str]:
    return ["bash", "-c", "set -o pipefail; " + script]


def _q(p: Path | str) -> str:
    return shlex.quote(str(p))


def ensure_snapshot(base: Path, size_gib: float, seed: int, rationale: bool = True) -> Path:
    """Generate (or reuse a matching, already generated) snapshot; untimed."""
    src = base / "src"
    stamp = base / "src.stamp.json"
    gen_hash = hashlib.sha256(Path(gen_snapshot.__file__).read_bytes()).hexdigest()
    want = {
        "size_gib": size_gib,
        "seed": seed,
        "rationale": rationale,
        "generator_sha256": gen_hash,
    }
    if src.is_dir() and stamp.is_file():
        try:
            if json.loads(stamp.read_text()) == want:
                return src
        except json.JSONDecodeError:
            pass
    _rm(src, stamp)()
    print(f"generating a {size_gib:g} GiB snapshot in {src} ...", flush=True)
    t0 = time.perf_counter()
    gen_snapshot.generate_snapshot(src, size_gib, seed, rationale=rationale)
    print(f"  generated in {time.perf_counter() - t0:.1f} s", flush=True)
    stamp.write_text(json.dumps(want))
    return src


def _source_bytes(src: Path) -> int:
    return sum(p.stat().st_size for p in src.rglob("*") if p.is_file())


def run_size(
    runner: Runner,
    snaparc: Snaparc,
    size_gib: float,
    args: argparse.Namespace,
) -> dict[str, object]:
    base = args.workdir / f"size-{size_gib:g}gib"
    base.mkdir(parents=True, exist_ok=True)
    src = ensure_snapshot(base, size_gib, args.seed, rationale=not args.no_rationale)
    out = base / "out"
    out.mkdir(exist_ok=True)
    snap = out / "snap.dlmsnap"
    tarzst = out / "stock.tar.zst"
    old = out / "old.tar.zst"
    xdir = base / "extract"
    py = sys.executable
    exe = snaparc.exe or "snaparc"
    ncpu = len(os.sched_getaffinity(0))

    def missing(name: str) -> str:
        if snaparc.exe is None:
            return "not available (no snaparc CLI)"
        return "" if snaparc.has(name) else f"not available (no `snaparc {name}`)"

    pack_argv = [exe, "pack", str(src), "-o", str(snap)]
    if snaparc.flag("pack", "--level"):
        pack_argv += ["--level", "3"]
    if snaparc.flag("pack", "--threads"):
        pack_argv += ["--threads", str(ncpu)]
    if snaparc.flag("pack", "--quiet"):
        pack_argv += ["--quiet"]
    shown_pack = ["snaparc", "pack", "DIR", "-o", snap.name, *pack_argv[5:]]
    snap_pack = Command("snaparc pack", pack_argv, shlex.join(shown_pack), prepare=_rm(snap))
    stock_pack = Command(
        "tar | zstd -3 -T0",
        _bash(f"tar -cf - -C {_q(src.parent)} {_q(src.name)} | zstd -3 -T0 -q -o {_q(tarzst)}"),
        f"tar -cf - DIR | zstd -3 -T0 -q -o {tarzst.name}",
        prepare=_rm(tarzst),
    )
    old_pack = Command(
        "python tarfile+zstd10+sha256 pack",
        [py, "-m", "benchmarks.baselines", "pack", str(src), str(old)],
        "python -m benchmarks.baselines pack DIR old.tar.zst",
        prepare=_rm(old),
    )

    comparisons_pack = [
        Comparison(
            "pack_vs_tar_zstd",
            "snaparc pack wall / `tar | zstd -3 -T0` wall ≤ 1.0",
            "ratio",
            1.0,
            None if missing("pack") else snap_pack,
            stock_pack,
            args.rounds,
            unavailable=missing("pack"),
        ),
        Comparison(
            "pack_vs_python_old",
            "snaparc pack ≥ 10× faster than Python tarfile+zstandard-10+sha256 pack",
            "speedup",
            10.0,
            None if missing("pack") else snap_pack,
            old_pack,
            args.slow_rounds,
            warmup=False,
            unavailable=missing("pack"),
        ),
    ]
    results: list[ComparisonResult] = []
    for comp in comparisons_pack:
        results.append(run_comparison(runner, comp, size_gib))

    # The archive the read-side commands use: snaparc's own when it exists, else
    # the stock tar.zst so the baselines still have numbers.
    snap_ok = snap.is_file() and not missing("pack")
    archive = snap if snap_ok else tarzst
    zstd_t = Command("zstd -t A", ["zstd", "-t", "-q", str(archive)], f"zstd -t {archive.name}")
    stock_verify = Command(
        "zstd -dc A | tar -x; sha256sum; b3sum",
        _bash(
            f"zstd -dc {_q(archive)} | tar -xf - -C {_q(xdir)}"
            f" && find {_q(xdir)} -type f -print0 | xargs -0 sha256sum >/dev/null"
            f" && find {_q(xdir)} -type f -print0 | xargs -0 b3sum >/dev/null"
        ),
        f"zstd -dc {archive.name} | tar -xf - -C tmp; sha256sum + b3sum of every file",
        prepare=_mkdir_fresh(xdir),
        cleanup=_rm(xdir),
    )
    stock_unpack = Command(
        "zstd -dc A | tar -x",
        _bash(f"zstd -dc {_q(archive)} | tar -xf - -C {_q(xdir)}"),
        f"zstd -dc {archive.name} | tar -xf - -C dest",
        prepare=_mkdir_fresh(xdir),
        cleanup=_rm(xdir),
    )
    snap_verify = Command(
        "snaparc verify A", [exe, "verify", str(snap)], f"snaparc verify {snap.name}"
    )
    snap_verify_pipe = Command(
        "cat A | snaparc verify -",
        _bash(f"cat {_q(snap)} | {_q(exe)} verify -"),
        f"cat {snap.name} | snaparc verify -",
    )
    snap_unpack = Command(
        "snaparc unpack A -C dest",
        [exe, "unpack", str(snap), "-C", str(xdir)],
        f"snaparc unpack {snap.name} -C dest",
        prepare=_rm(xdir),
        cleanup=_rm(xdir),
    )
    snap_materialize = Command(
        "snaparc materialize A dest",
        [exe, "materialize", str(snap), str(xdir)],
        f"snaparc materialize {snap.name} dest",
        prepare=_rm(xdir),
        cleanup=_rm(xdir),
    )
    old_unpack = Command(
        "python tarfile+zstd+sha256 unpack",
        [py, "-m", "benchmarks.baselines", "unpack", str(old), str(xdir)],
        "python -m benchmarks.baselines unpack old.tar.zst dest",
        prepare=_rm(xdir),
        cleanup=_rm(xdir),
    )

    def side(cmd: Command, name: str) -> Command | None:
        return None if missing(name) or not snap_ok else cmd

    def why(name: str) -> str:
        return missing(name) or (
            "" if snap_ok else "not available (snaparc pack produced no archive)"
        )

    read_side = [
        Comparison(
            "verify_vs_zstd_t",
            "snaparc verify A / `zstd -t A` ≤ 1.2",
            "ratio",
            1.2,
            side(snap_verify, "verify"),
            zstd_t,
            args.rounds,
            unavailable=why("verify"),
        ),
        Comparison(
            "verify_stdin_vs_zstd_t",
            "`cat A | snaparc verify -` / `zstd -t A` ≤ 1.2",
            "ratio",
            1.2,
            side(snap_verify_pipe, "verify"),
            zstd_t,
            args.rounds,
            unavailable=why("verify"),
        ),
        Comparison(
            "verify_vs_stock_pipeline",
            "snaparc verify ≥ 5× faster than zstd -dc | tar -x + sha256sum + b3sum",
            "speedup",
            5.0,
            side(snap_verify, "verify"),
            stock_verify,
            args.rounds,
            unavailable=why("verify"),
        ),
        Comparison(
            "unpack_vs_tar",
            "snaparc unpack / `zstd -dc A | tar -x` ≤ 1.3",
            "ratio",
            1.3,
            side(snap_unpack, "unpack"),
            stock_unpack,
            args.rounds,
            unavailable=why("unpack"),
        ),
        Comparison(
            "materialize_vs_tar",
            "snaparc materialize / `zstd -dc A | tar -x` ≤ 1.3",
            "ratio",
            1.3,
            side(snap_materialize, "materialize"),
            stock_unpack,
            args.rounds,
            unavailable=why("materialize"),
        ),
    ]
    for comp in read_side:
        results.append(run_comparison(runner, comp, size_gib))
    old_unpack_cmp = Comparison(
        "unpack_vs_python_old",
        "snaparc unpack vs the old Python unpack (no target; speedup shown)",
        "speedup",
        None,
        side(snap_unpack, "unpack"),
        old_unpack,
        args.rounds,
        unavailable=why("unpack"),
    )
    if old.is_file():
        results.append(run_comparison(runner, old_unpack_cmp, size_gib))
    else:
        old_unpack_cmp.rounds = 0
        result = run_comparison(runner, old_unpack_cmp, size_gib)
        result.note = "skipped: no old-tool archive (its pack was skipped or failed)"
        results.append(result)

    sizes = {"source tree": _source_bytes(src)}
    for name, path in (
        ("snaparc .dlmsnap", snap),
        ("tar | zstd -3", tarzst),
        ("old (zstd-10)", old),
    ):
        if path.is_file():
            sizes[name] = path.stat().st_size
    size_ratio: float | None = None
    if "snaparc .dlmsnap" in sizes and "tar | zstd -3" in sizes:
        size_ratio = sizes["snaparc .dlmsnap"] / sizes["tar | zstd -3"]

    cli = run_cli(runner, snaparc, snap if snap_ok else None, size_gib, args.rounds)
    if not args.keep_outputs:
        _rm(out, xdir)()
    return {
        "size_gib": size_gib,
        "comparisons": [asdict(r) for r in results],
        "archive_bytes": sizes,
        "archive_size_ratio": size_ratio,
        "cli": cli,
    }


def run_comparison(runner: Runner, comp: Comparison, size_gib: float) -> ComparisonResult:
    if comp.rounds <= 0:
        return ComparisonResult(
            comp.key, comp.target, comp.kind, comp.limit,
            comp.a.shown if comp.a else "", comp.b.shown, [], [], [], None, None,
            note="skipped (0 rounds requested)",
        )  # fmt: skip
    if comp.a is None and runner.has_run(comp.b.key, size_gib):
        return ComparisonResult(
            comp.key, comp.target, comp.kind, comp.limit, "", comp.b.shown, [], [], [], None,
            None, note=f"{comp.unavailable}; baseline measured in another row",
        )  # fmt: skip
    a_times, b_times = runner.alternate(comp.a, comp.b, size_gib, comp.rounds, comp.warmup)
    values = paired_values(a_times, b_times, comp.kind)
    summary = summarize(values)
    note = comp.unavailable
    if comp.a is not None:
        failed = sum(1 for x in a_times if x is None) + sum(1 for x in b_times if x is None)
        if failed:
            note = f"{failed} failed run(s), see the raw table"
    return ComparisonResult(
        comp.key,
        comp.target,
        comp.kind,
        comp.limit,
        comp.a.shown if comp.a else "",
        comp.b.shown,
        a_times,
        b_times,
        values,
        summary,
        target_met(summary, comp.kind, comp.limit),
        note,
    )


def run_cli(
    runner: Runner, snaparc: Snaparc, archive: Path | None, size_gib: float, rounds: int
) -> list[dict[str, object]]:
    """Wall time and heavy imports of `snaparc --help` and `snaparc ls A`."""
    rows: list[dict[str, object]] = []
    cases: list[tuple[str, list[str], str]] = [("snaparc --help", ["--help"], "")]
    if snaparc.exe is None:
        cases[0] = ("snaparc --help", ["--help"], "not available (no snaparc CLI)")
    ls_why = ""
    if snaparc.exe is None or not snaparc.has("ls"):
        ls_why = "not available (no `snaparc ls`)"
    elif archive is None:
        ls_why = "not available (no snaparc archive)"
    cases.append(("snaparc ls A", ["ls", str(archive)], ls_why))
    for key, cli_args, why in cases:
        if why:
            rows.append({"command": key, "note": why, "summary": None, "heavy_imports": None})
            continue
        assert snaparc.exe is not None
        cmd = Command(key, [snaparc.exe, *cli_args], key)
        runner.run(cmd, size_gib, 0)
        walls = []
        for r in range(1, rounds + 1):
            run = runner.run(cmd, size_gib, r)
            if run.exit_code == 0:
                walls.append(run.wall_s)
        res = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "snaparc", *cli_args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        heavy = heavy_imports(res.stderr)
        rows.append(
            {
                "command": key,
                "note": "" if res.returncode == 0 else f"exit {res.returncode}",
                "summary": asdict(s) if (s := summarize(walls)) else None,
                "heavy_imports": heavy,
            }
        )
    return rows


# --- reporting -------------------------------------------------------------------


def command_stats(runs: Sequence[Run]) -> list[dict[str, object]]:
    """Per (size, command): runs ok/total, wall summary (warm-up excluded), peak RSS."""
    groups: dict[tuple[float, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.size_gib, r.command), []).append(r)
    rows = []
    for (size, cmd), rs in groups.items():
        timed = [r for r in rs if r.round > 0]
        ok = [r.wall_s for r in timed if r.exit_code == 0]
        cpu = [r.cpu_s for r in timed if r.exit_code == 0]
        rss = [r.maxrss_mib for r in rs if r.exit_code == 0 and r.maxrss_mib is not None]
        rows.append(
            {
                "size_gib": size,
                "command": cmd,
                "ok": len(ok),
                "total": len(timed),
                "warmups": len(rs) - len(timed),
                "wall": asdict(s) if (s := summarize(ok)) else None,
                "cpu_median_s": statistics.median(cpu) if cpu else None,
                "peak_rss_mib": max(rss) if rss else None,
                "sampled_anon_mib": max((r.anon_mib for r in rs), default=0.0),
                "sampled_file_mib": max((r.file_mib for r in rs), default=0.0),
                "failures": [
                    {"round": r.round, "exit_code": r.exit_code, "stderr": r.stderr_tail}
                    for r in rs
                    if r.exit_code != 0
                ],
            }
        )
    return rows


def _summary_from(d: object) -> Summary | None:
    return Summary(**d) if isinstance(d, dict) else None


def rss_targets(stats: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for name in ("snaparc pack", "snaparc verify A", "snaparc unpack A -C dest",
                 "snaparc materialize A dest"):  # fmt: skip
        by_size: dict[float, float] = {}
        split: dict[str, str] = {}
        for row in stats:
            rss = row["peak_rss_mib"]
            if row["command"] == name and isinstance(rss, float):
                by_size[float(row["size_gib"])] = rss
                split[f"{row['size_gib']:g}"] = (
                    f"{row['sampled_anon_mib']:.0f} / {row['sampled_file_mib']:.0f}"
                )
        worst = max(by_size.values()) if by_size else None
        out.append(
            {
                "command": name,
                "rss_by_size": {f"{k:g}": v for k, v in sorted(by_size.items())},
                "sampled_anon_file_by_size": split,
                "peak_rss_mib": worst,
                "met": None if worst is None else worst <= RSS_LIMIT_MIB,
                "size_independent": rss_growth_ok(by_size),
            }
        )
    return out


# Other work above this share of the machine's CPU capacity, during the timed
# runs, makes ratios near a limit uncertain.
CONTENTION_SHARE = 0.05


def other_work(report: dict[str, Any]) -> tuple[float, float, float] | None:
    """(CPU s other processes used, wall s, share of capacity) over the timed runs."""
    try:
        cores = int(str(report["machine"]["cores"]).split()[0])
    except (KeyError, ValueError, IndexError):
        return None
    timed = [r for r in report.get("runs", []) if r.get("round", 0) > 0]
    measured = [r for r in timed if r.get("other_cpu_s") is not None]
    if not measured:
        return None
    other = sum(r["other_cpu_s"] for r in measured)
    wall = sum(r["wall_s"] for r in measured)
    return other, wall, other / (wall * cores) if wall > 0 else 0.0


def contention_note(report: dict[str, Any]) -> str:
    """What other processes took from the CPU while the timed runs ran.

    Measured, not guessed: the machine's busy CPU time (`/proc/stat`) around
    every run, minus the command's own CPU and the harness's. (The load
    average cannot tell: the benchmark's own commands load both cores.)
    """
    found = other_work(report)
    if found is None:
        return ""
    other, wall, share = found
    text = (
        f"- other work during the timed runs: {other:.1f} CPU-s over {wall:.0f} s of wall "
        f"({share:.1%} of the machine's CPU capacity)"
    )
    if share > CONTENTION_SHARE:
        text += (
            " — **other work competed for the CPU, so wall times are inflated and ratios "
            "near a limit are uncertain**"
        )
    return text


def row(*cells: object) -> str:
    """One markdown table row; `|` inside a cell is escaped."""
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def render_markdown(report: dict[str, Any]) -> str:
    machine: dict[str, str] = report["machine"]
    config: dict[str, Any] = report["config"]
    lines = [
        "# snaparc benchmark results",
        "",
        "Written by `make bench` (`python -m benchmarks.run`); the method is in "
        "[README.md](README.md). **Warm page cache** (no cache drop). The machine's "
        f"{machine['cores'].split()[0]} cores are shared with other work, so runs can be "
        "noisy: see the CPU other work used during the runs and the min–max ranges.",
        "",
        f"- sizes: {config['sizes']} GiB of bf16 weights; rounds: {config['rounds']} "
        f"(+1 warm-up pair); the Python old-tool pack: {config['slow_rounds']} round(s), "
        "no warm-up (it takes ~50 s/GiB)",
        f"- load average (1/5/15 min) at start: {report['loadavg_start']}, "
        f"at end: {report['loadavg_end']}",
        *([note] if (note := contention_note(report)) else []),
        f"- snaparc: {report['snaparc']}",
        "- snapshot manifest: "
        + (
            "as the seed writes it (with `rationale`)"
            if config.get("manifest_rationale", True)
            else "without the seed's `rationale` field (`--no-rationale`)"
        ),
        f"- peak RSS measured with {report['rss_method']}",
        f"- total harness time: {report['elapsed_s']:.0f} s",
        "",
        "## Machine",
        "",
        row("fact", "value"),
        row("---", "---"),
    ]
    lines += [row(k, v) for k, v in machine.items()]
    lines += [
        "",
        "## Targets",
        "",
        "Ratio rows are snaparc / baseline wall time (lower is better); speedup rows are "
        "baseline / snaparc (higher is better). Each value is the median of the per-round "
        "pair values, with min–max and the number of pairs.",
        "",
        row("size", "target", "measured: median (min–max)", "pairs", "result"),
        row("---", "---", "---", "---", "---"),
    ]
    for sz in report["sizes"]:
        size = f"{sz['size_gib']:g} GiB"
        for c in sz["comparisons"]:
            s = _summary_from(c["summary"])
            if s is None:
                why = c["note"] or "no successful pair"
                lines.append(row(size, c["target"], why, 0, "not available"))
                continue
            unit = "×" if c["kind"] == "speedup" else ""
            measured = fmt_summary(s) + unit + (f" — {c['note']}" if c["note"] else "")
            result = "no target" if c["limit"] is None else fmt_met(c["met"])
            lines.append(row(size, c["target"], measured, s.n, result))
        ratio = sz["archive_size_ratio"]
        lines.append(
            row(
                size,
                "archive size: .dlmsnap / tar.zst (zstd -3) ≤ 1.01",
                fmt_num(ratio, 4) if ratio else "not available",
                "—",
                fmt_met(ratio <= 1.01) if ratio else "not available",
            )
        )
        for cli in sz["cli"]:
            target = f"`{cli['command']}` imports no torch/transformers/peft (wall s shown)"
            s = _summary_from(cli["summary"])
            if s is None:
                lines.append(row(size, target, cli["note"] or "—", 0, "not available"))
                continue
            heavy = cli["heavy_imports"]
            imported = ", ".join(heavy) if heavy else "none of them"
            measured = f"{fmt_summary(s, 3)} s; imports: {imported}"
            lines.append(row(size, target, measured, s.n, fmt_met(not heavy)))
    for rt in report["rss_targets"]:
        by_size = ", ".join(f"{k} GiB: {v:.0f}" for k, v in rt["rss_by_size"].items())
        split = ", ".join(
            f"{k} GiB: {v}" for k, v in rt.get("sampled_anon_file_by_size", {}).items()
        )
        shown = f"{by_size} MiB (sampled anon / file: {split})" if by_size else "not available"
        avail = rt["peak_rss_mib"] is not None
        lines.append(
            row(
                "all",
                f"peak RSS of `{rt['command']}` ≤ {RSS_LIMIT_MIB:.0f} MiB",
                shown,
                "—",
                fmt_met(rt["met"]) if avail else "not available",
            )
        )
        if len(rt["rss_by_size"]) >= 2:
            lines.append(
                row(
                    "all",
                    f"peak RSS of `{rt['command']}` independent of size (largest ≤ smallest "
                    f"× {RSS_GROWTH_LIMIT} + {RSS_GROWTH_SLACK_MIB:.0f} MiB)",
                    shown,
                    "—",
                    fmt_met(rt["size_independent"]),
                )
            )
    lines += [
        "",
        "## Every command",
        "",
        "Wall seconds over the timed rounds (warm-up excluded), median user+sys CPU "
        "seconds, and the peak RSS over all its runs (`ru_maxrss`; for a pipeline: its "
        "largest stage). `ru_maxrss` counts mapped file pages too, so the last column "
        "splits the peak, sampled every 0.1 s and summed over the command's processes, "
        "into anonymous memory and mapped file pages (RssAnon / RssFile).",
        "",
        row(
            "size",
            "command",
            "ok / runs",
            "wall s: median (min–max)",
            "cpu s",
            "peak RSS MiB",
            "sampled anon / file MiB",
        ),
        row("---", "---", "---", "---", "---", "---", "---"),
    ]
    for c in report["commands"]:
        lines.append(
            row(
                f"{c['size_gib']:g} GiB",
                c["command"],
                f"{c['ok']} / {c['total']} (+{c['warmups']} warm-up)",
                fmt_summary(_summary_from(c["wall"]), 2),
                fmt_num(c["cpu_median_s"]),
                fmt_num(c["peak_rss_mib"], 0),
                f"{c['sampled_anon_mib']:.0f} / {c['sampled_file_mib']:.0f}",
            )
        )
    lines += ["", "## Archive sizes", "", row("size", "file", "bytes", "× source")]
    lines.append(row("---", "---", "---", "---"))
    for sz in report["sizes"]:
        src = sz["archive_bytes"]["source tree"]
        for name, n in sz["archive_bytes"].items():
            lines.append(row(f"{sz['size_gib']:g} GiB", name, f"{n:,}", f"{n / src:.4f}"))
    lines += ["", "## Commands as run", "", row("comparison", "A (snaparc)", "B (baseline)")]
    lines.append(row("---", "---", "---"))
    seen: set[str] = set()
    for sz in report["sizes"]:
        for c in sz["comparisons"]:
            if c["key"] not in seen:
                seen.add(c["key"])
                lines.append(row(c["key"], _code(c["a_cmd"]) or c["note"], _code(c["b_cmd"])))
    failed = [(c, f) for c in report["commands"] for f in c["failures"]]
    if failed:
        lines += ["", "## Failed runs", ""]
        for c, f in failed:
            tail = " ".join(str(f["stderr"]).split())[:300]
            lines.append(
                f"- {c['size_gib']:g} GiB `{c['command']}` round {f['round']}: "
                f"exit {f['exit_code']}: {tail}"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="snaparc vs stock tools and the old tool")
    parser.add_argument("--sizes", type=parse_sizes, default=[1.0], help="GiB list, e.g. 1,4")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per comparison")
    parser.add_argument(
        "--slow-rounds", type=int, default=1, help="rounds for the Python old-tool pack (0 skips)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-rationale",
        action="store_true",
        help="generate manifests without the seed's `rationale` field",
    )
    parser.add_argument("--workdir", type=Path, default=HERE / "work")
    parser.add_argument("--results-dir", type=Path, default=HERE)
    parser.add_argument("--snaparc", default=str(Path(sys.executable).parent / "snaparc"))
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    parser.add_argument("--keep-outputs", action="store_true", help="keep archives at the end")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite RESULTS.md from the results.json in --results-dir; run nothing",
    )
    args = parser.parse_args(argv)
    if args.render_only:
        saved = json.loads((args.results_dir / "results.json").read_text())
        (args.results_dir / "RESULTS.md").write_text(render_markdown(saved))
        return 0
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    load_start = loadavg()
    machine = machine_facts(args.workdir)
    snaparc = discover_snaparc(args.snaparc)
    if snaparc.exe is None:
        snaparc_state = f"not available ({args.snaparc} missing or failing): snaparc rows not run"
    else:
        snaparc_state = f"{snaparc.version or 'snaparc'}; commands: {', '.join(snaparc.commands)}"
    if not args.quiet:
        print(f"snaparc: {snaparc_state}", flush=True)
    runner = Runner(args.workdir, args.timeout, verbose=not args.quiet)
    per_size = [run_size(runner, snaparc, s, args) for s in args.sizes]
    stats = command_stats(runner.runs)
    report: dict[str, Any] = {
        "machine": machine,
        "rss_method": rss_method(),
        "config": {
            "sizes": ",".join(f"{s:g}" for s in args.sizes),
            "rounds": args.rounds,
            "slow_rounds": args.slow_rounds,
            "seed": args.seed,
            "manifest_rationale": not args.no_rationale,
        },
        "snaparc": snaparc_state,
        "loadavg_start": load_start,
        "loadavg_end": loadavg(),
        "elapsed_s": time.perf_counter() - t0,
        "sizes": per_size,
        "rss_targets": rss_targets(stats),
        "commands": stats,
        "runs": [asdict(r) for r in runner.runs],
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.results_dir / "RESULTS.md").write_text(render_markdown(report))
    if not args.quiet:
        print(f"wrote {args.results_dir / 'RESULTS.md'} and results.json", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
