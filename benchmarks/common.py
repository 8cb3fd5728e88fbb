"""What every benchmark shares: its argument parser, what it prints first (machine, threads, load) and last (load),
a plain-text table printer, loading a ``data:`` block, and timing a training loop."""

from __future__ import annotations

import argparse
import os
import platform as _stdlib_platform  # the repo's `platform` package re-exports the standard module
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

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


def benchmark_parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The parser of ``python -m benchmarks.<module>``, described by the first paragraph of its docstring ``doc``."""
    return argparse.ArgumentParser(prog=f"python -m benchmarks.{module}", description=(doc or "").split("\n\n")[0])


def add_threads(parser: argparse.ArgumentParser, default: int | None = None) -> None:
    """``--threads``: torch's intra-op threads (default: every core), set by ``print_header``."""
    parser.add_argument("--threads", type=int, default=default or os.cpu_count() or 1, help="torch intra-op threads")


def print_header(title: str, threads: int | None = None) -> None:
    """Print the benchmark's name, machine, Python/torch versions, torch threads and the load average.

    Args:
        threads: set first with ``torch.set_num_threads`` and printed; None leaves torch's default alone.
    """
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    print(f"# {title}")
    print(
        f"machine : {cpu_model()}, {os.cpu_count()} logical cores, python {sys.version.split()[0]}, "
        f"torch {torch.__version__}"
    )
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


def print_load_at_end() -> None:
    """The last line of every benchmark: the load average when it ends (compare with the one at start)."""
    print(f"load    : {load_average()} at end")


def load_spec(spec: Mapping[str, Any]) -> Any:
    """The ``elm.data.base.LongTailData`` of a ``data:`` block (its ``name`` and that loader's keyword arguments)."""
    from elm.data import load_data

    return load_data(spec["name"], {k: v for k, v in spec.items() if k != "name"})


def timed(
    batches: Iterator[Any], step: Callable[..., Any], warmup: int, steps: int, sync: Callable[[], Any] = lambda: None
) -> float:
    """Images/s over ``steps`` calls of ``step(x, y)`` after ``warmup`` untimed ones (batch fetch included);
    ``sync`` drains an asynchronous device before the clock starts and before it stops."""
    for _ in range(warmup):
        step(*next(batches))
    sync()
    t0, n = time.perf_counter(), 0
    for _ in range(steps):
        x, y = next(batches)
        step(x, y)
        n += len(y)
    sync()
    return n / (time.perf_counter() - t0)


LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 2e-4  # the LA paper's CIFAR recipe (SGD), constant lr in the timing runs
IMBALANCE = 100  # CIFAR-10-LT as the papers use it: 5000 images in the head class, 12,406 in all (LDAM-DRW's counts)
EVAL_PER_CLASS = 10  # fit evaluates after its last epoch (outside the timed window); keep that cheap


def cifar10_lt_data(data_root: str) -> dict[str, Any]:
    """The timing runs' ``data:`` block for real CIFAR-10-LT under ``data_root`` (test split cut to
    ``EVAL_PER_CLASS`` images per class; never downloads)."""
    return {
        "name": "cifar10_lt",
        "root": str(Path(data_root).resolve()),
        "download": False,
        "imbalance_ratio": IMBALANCE,
        "max_test_per_class": EVAL_PER_CLASS,
    }


def timing_config(name: str, data: dict[str, Any], steps: int, batch_size: int, **train: Any) -> Any:
    """The timing runs' ``ExperimentConfig``: ResNet-32 + CE, 2 epochs of at most ``steps`` steps, constant lr,
    evaluation only after the last epoch; ``train`` adds or overrides ``train:`` keys (precision, threads, compile).
    """
    from elm.config import from_dict

    optim = {
        "lr": LR,
        "momentum": MOMENTUM,
        "weight_decay": WEIGHT_DECAY,
        "epochs": 2,
        "batch_size": batch_size,
        "schedule": "constant",
        "warmup_epochs": 0,
        "milestones": [],
    }
    base_train = {"eval_every": 1000, "max_steps_per_epoch": steps, "posthoc_taus": [1.0], "eval_batch_size": 1000}
    return from_dict(
        {
            "name": name,
            "seed": 0,
            "data": data,
            "model": {"name": "resnet32"},
            "loss": {"name": "cross_entropy"},
            "optim": optim,
            "train": {**base_train, **train},
        }
    )
