"""Where a ResNet-32 training step spends its time, and whether torch.compile buys anything (CPU, batch 128).

    python -m benchmarks.profile_step [--steps 20] [--warmup 5] [--precisions fp32 bf16] [--compile]

For each precision, ``torch.profiler`` records ``--steps`` steps of benchmark (c)'s bare loop (the same data path,
model, optimiser and precision settings as ``benchmarks.throughput``) and prints the self-CPU time per op
category: convolution forward and backward (the only ops that count as FLOPs), batch norm, ReLU/add, the
optimiser update, dtype/layout copies (autocast, channels_last), the loss, and the rest. Convolution time against
the FLOP count of ``benchmarks.flops`` gives the rate the conv kernels themselves reach; the other categories are
the time the FLOP count does not see. With ``--compile``, it also times the step with the model wrapped in
``torch.compile`` (inductor, which fuses BN/ReLU/add around the oneDNN convolutions).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict

import torch

from benchmarks.common import load_average, print_header, print_table
from benchmarks.throughput import build_model, bare_batches, data_spec, sgd, train_step
import elm.models  # noqa: F401  (fills the MODELS registry)
from elm.data import load_data

TRAIN_GFLOP_PER_IMAGE = 0.4131  # benchmarks.flops: 3 x 0.1377 GFLOP forward (68.86 M MACs)

# Op-name fragments -> category, first match wins (aten op names as torch.profiler reports them).
CATEGORIES = (
    ("conv backward", ("convolution_backward", "mkldnn_convolution_backward")),
    ("conv forward", ("convolution", "conv2d", "mkldnn_convolution")),
    ("batch norm", ("batch_norm",)),
    ("optimizer (SGD)", ("_foreach_", "sgd")),
    ("relu / residual add", ("relu", "threshold", "aten::add")),
    ("dtype / layout copies", ("copy_", "aten::to", "_to_copy", "clone", "contiguous")),
    ("loss", ("cross_entropy", "log_softmax", "nll_loss")),
    ("data (crop/flip/normalise)", ("randperm", "index", "flip", "where", "sub", "div", "pad")),
)


def category(name: str) -> str:
    for cat, parts in CATEGORIES:
        if any(p in name for p in parts):
            return cat
    return "other"


def profile(precision: str, warmup: int, steps: int, data: object) -> tuple[dict[str, float], float]:
    """Self-CPU seconds per category over ``steps`` steps, and the wall seconds of those steps."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    model = build_model(precision)
    model.train()
    opt = sgd(model)
    batches = bare_batches(data.train, data.mean, data.std)
    for _ in range(warmup):
        train_step(model, opt, *next(batches), precision)
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            train_step(model, opt, *next(batches), precision)
        wall = time.perf_counter() - t0
    per_cat: dict[str, float] = defaultdict(float)
    for evt in prof.key_averages():
        per_cat[category(evt.key)] += evt.self_cpu_time_total / 1e6
    return dict(per_cat), wall


def compiled_rate(precision: str, warmup: int, steps: int, data: object) -> tuple[float, float]:
    """(images/s eager, images/s with torch.compile(model)) on the same batches."""
    rates = []
    for use_compile in (False, True):
        model = build_model(precision)
        model.train()
        opt = sgd(model)
        run = torch.compile(model) if use_compile else model
        batches = bare_batches(data.train, data.mean, data.std)
        for _ in range(warmup + (3 if use_compile else 0)):  # compile happens in the first calls
            train_step(run, opt, *next(batches), precision)
        t0 = time.perf_counter()
        for _ in range(steps):
            train_step(run, opt, *next(batches), precision)
        rates.append(steps * 128 / (time.perf_counter() - t0))
    return rates[0], rates[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_step", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(model) against eager")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print_header("ResNet-32 training step profile (batch 128, self-CPU time per op category)", args.threads)
    spec = data_spec(args.data_root)
    data = load_data(spec["name"], {k: v for k, v in spec.items() if k != "name"})
    for precision in args.precisions:
        per_cat, wall = profile(precision, args.warmup, args.steps, data)
        total = sum(per_cat.values())
        conv = per_cat.get("conv forward", 0.0) + per_cat.get("conv backward", 0.0)
        images = args.steps * 128
        rows = [[k, f"{v / args.steps * 1e3:.1f}", f"{100 * v / total:.1f} %"]
                for k, v in sorted(per_cat.items(), key=lambda kv: -kv[1])]
        print(f"## {precision}: {images / wall:.1f} images/s under the profiler; {args.threads} threads, "
              f"self-CPU time summed over threads ({total / wall:.2f} x wall)")
        print_table(["category", "ms per step (all threads)", "share"], rows)
        conv_rate = TRAIN_GFLOP_PER_IMAGE * images / (conv / args.threads)
        print(f"convolutions alone: {conv_rate:.0f} GFLOP/s per {args.threads} threads (their FLOPs / their "
              f"time per thread); everything else is {100 * (1 - conv / total):.0f} % of the step\n", flush=True)
    if args.compile:
        rows = []
        for precision in args.precisions:
            eager, comp = compiled_rate(precision, args.warmup, args.steps, data)
            rows.append([precision, f"{eager:.1f}", f"{comp:.1f}", f"{comp / eager:.2f}"])
        print_table(["precision", "eager images/s", "torch.compile images/s", "ratio"], rows)
    print(f"load    : {load_average()} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
