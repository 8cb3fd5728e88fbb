"""Peak resident memory of the elm trainer (ResNet-32, CIFAR-10-LT-sized data) and of the Tune smoke sweep.

    python -m benchmarks.memory [--data-root ../shared/data] [--steps 5] [--no-tune] [--launcher in_trial]
                                [--set key=value ...]

trainer      a fresh interpreter runs ``elm.train.fit`` (the throughput benchmark's config: ResNet-32, batch 128,
             2 epochs of ``--steps`` steps, fp32 and bf16) and prints its own ``getrusage(RUSAGE_SELF).ru_maxrss``.
tune driver  ``python -m platform.tune ablations/smoke.yaml --smoke``: the driver's peak RSS from ``os.wait4``
             (its own, or of a reaped child if larger),
             the peak of the summed RSS of its whole process tree (GCS, raylet, Tune and Train workers),
             the peak of its summed PSS (``/proc/<pid>/smaps_rollup``: shared pages such as torch's libraries
             are split between the processes mapping them, so this sum is what the tree really occupies; the RSS
             sum counts each shared page once per process),
             and the peak RSS of each kind of process in it (by its title: ``ray::ImplicitFunc`` is a Tune trial,
             ``ray::RayTrainWorker`` a Train worker, ...), sampled from /proc every 0.2 s (Linux only; short
             peaks between samples are missed). ``--set`` passes overrides to the sweep (e.g. a real dataset).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO_ROOT, benchmark_parser, print_header, print_load_at_end, print_table

SAMPLE_SECONDS = 0.2
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

TRAINER = """
import resource, sys
from benchmarks import throughput as tp
from benchmarks.common import load_spec
spec = tp.data_spec(sys.argv[1] or None)
data = load_spec(spec)
tp.run_elm(data, tp.make_config(spec, sys.argv[2], int(sys.argv[3]), 0))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux
"""


def process_title(pid: int) -> str:
    """A process's kind: Ray's title (``ray::ImplicitFunc``, ``ray::RayTrainWorker``...) or its program name."""
    try:
        argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    argv = [a for a in argv if a]
    if not argv:
        return "?"
    if len(argv) == 1 and b" " in argv[0]:  # a process that rewrote its title into one string
        argv = argv[0].split()
    first = argv[0].decode(errors="replace")
    if first.startswith("ray::"):
        return first.split()[0].split(".")[0]
    if "python" in Path(first).name:
        return f"python {python_target([a.decode(errors='replace') for a in argv[1:]])}"
    return Path(first).name


def python_target(args: list[str]) -> str:
    """What a python command line runs: ``-m module``'s module, ``-c``, or the script's file name (flags skipped)."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-m" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("-c"):
            return "-c"
        if not arg.startswith("-"):
            return Path(arg).name
        i += 2 if arg in ("-X", "-W") else 1  # these two take a separate value
    return "(interactive)"


def pss_kib(pid: int) -> int:
    """A process's proportional set size (KiB): its private pages plus its share of each shared page; 0 if gone."""
    try:
        for line in (Path("/proc") / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def process_tree_kib(root: int, per_kind: dict[str, int] | None = None) -> tuple[int, int]:
    """(summed RSS, summed PSS) in KiB of ``root`` and all its descendants, from /proc; ``per_kind`` gets each
    kind's max RSS."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            pid, ppid = int(entry.name), int(fields[1])
            rss[pid] = int(fields[21]) * PAGE_KIB  # field 24 of stat: rss in pages
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(pid)
    total, pss, stack = 0, 0, [root]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        pss += pss_kib(p)
        if per_kind is not None and p in rss:
            kind = process_title(p)
            per_kind[kind] = max(per_kind.get(kind, 0), rss[p])
        stack.extend(children.get(p, []))
    return total, pss


def tune_peaks(config: str, extra: list[str]) -> tuple[int, int, int, dict[str, int]]:
    """(driver peak RSS KiB from wait4, peak summed process-tree RSS KiB, peak summed process-tree PSS KiB,
    peak RSS KiB per process kind) of a sweep."""
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        cmd = [sys.executable, "-m", "platform.tune", config, "--smoke", "--out", str(Path(tmp) / "o"), *extra]
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tree_peak, pss_peak, per_kind = 0, 0, {}
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                proc.returncode = status  # reaped here; keep Popen from waiting again
                if status != 0:
                    raise RuntimeError(f"platform.tune exited with status {status}")
                return usage.ru_maxrss, tree_peak, pss_peak, per_kind
            tree_rss, tree_pss = process_tree_kib(proc.pid, per_kind)
            tree_peak, pss_peak = max(tree_peak, tree_rss), max(pss_peak, tree_pss)
            time.sleep(SAMPLE_SECONDS)


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser("memory", __doc__)
    parser.add_argument("--data-root", default="")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--config", default="ablations/smoke.yaml")
    parser.add_argument("--no-tune", action="store_true")
    parser.add_argument(
        "--launcher", default="auto", choices=["auto", "in_trial", "ray_train"], help="resources.launcher of the sweep"
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    print_header("peak resident memory (MiB, lower is better)")
    rows = []
    for precision in ("fp32", "bf16"):
        out = subprocess.run(
            [sys.executable, "-c", TRAINER, args.data_root, precision, str(args.steps)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append([f"elm trainer, ResNet-32 {precision}", f"{int(out.stdout.split()[-1]) / 1024:.0f}"])
    if not args.no_tune:
        extra = ["--set", f"resources.launcher={args.launcher}"] + [a for o in args.overrides for a in ("--set", o)]
        driver, tree, tree_pss, per_kind = tune_peaks(args.config, extra)
        rows.append([f"tune driver (wait4 ru_maxrss), launcher {args.launcher}", f"{driver / 1024:.0f}"])
        rows.append(["tune process tree (driver + Ray + workers), summed RSS", f"{tree / 1024:.0f}"])
        rows.append(["tune process tree, summed PSS (shared pages split)", f"{tree_pss / 1024:.0f}"])
        for kind, kib in sorted(per_kind.items(), key=lambda kv: -kv[1])[:8]:
            rows.append([f"  largest single process: {kind}", f"{kib / 1024:.0f}"])
    print_table(["process", "peak RSS MiB"], rows)
    print_load_at_end()
    return 0


if __name__ == "__main__":
    sys.exit(main())
