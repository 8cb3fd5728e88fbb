"""What every benchmark prints first (machine, threads, load) and a plain-text table printer."""
from __future__ import annotations

import os
import platform as _stdlib_platform  # the repo's `platform` package re-exports the standard module
import sys
from pathlib import Path
from typing import Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or the standard library's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return _stdlib_platform.processor() or "unknown"


def load_average() -> str:
    """``os.getloadavg()`` as text: with load near the core count, timings include other processes' work."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min, {os.cpu_count()} cores)"


def print_header(title: str, threads: int | None = None) -> None:
    """Print the benchmark's name, machine, Python/torch versions, torch threads and the load average."""
    import torch

    print(f"# {title}")
    print(f"machine : {cpu_model()}, {os.cpu_count()} logical cores, python {sys.version.split()[0]}, "
          f"torch {torch.__version__}")
    if threads is not None:
        print(f"threads : torch.set_num_threads({threads}); torch.get_num_threads() = {torch.get_num_threads()}")
    print(f"load    : {load_average()} at start")
    print(flush=True)


def print_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print a Markdown table (floats with 1 decimal)."""
    cells = [[f"{c:.1f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
    print(flush=True)
