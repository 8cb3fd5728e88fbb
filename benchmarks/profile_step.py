"""Where a ResNet-32 training step spends its time, and whether torch.compile buys anything (CPU, batch 128).

    python -m benchmarks.profile_step [--steps 20] [--warmup 5] [--precisions fp32 bf16] [--compile]

For each precision, ``torch.profiler`` records ``--steps`` steps of benchmark (c)'s bare loop (the same data path,
model, optimiser and precision settings as ``benchmarks.throughput``) and prints the time of each phase (data,
forward, backward, optimizer step) and, inside forward and backward, of the convolutions (which carry > 99 % of
the FLOPs). Convolution time against the FLOP count of ``benchmarks.flops`` gives the rate the conv kernels
themselves reach; the rest of forward + backward is the time the FLOP count does not see. With ``--compile``, it
also times the step with the model wrapped in
``torch.compile`` (inductor, which fuses BN/ReLU/add around the oneDNN convolutions).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from benchmarks.common import add_threads, benchmark_parser, load_spec, print_header, print_load_at_end, print_table
from benchmarks.throughput import COMPILE_WARMUP_STEPS, build_model, bare_batches, data_spec, sgd, train_step
import elm.models  # noqa: F401  (fills the MODELS registry)

TRAIN_GFLOP_PER_IMAGE = 0.4131  # benchmarks.flops: 3 x 0.1377 GFLOP forward (68.86 M MACs)

PHASES = ("data", "forward", "backward", "optimizer step")
CONV_FORWARD = ("aten::mkldnn_convolution", "aten::_convolution", "aten::convolution", "aten::conv2d")
CONV_BACKWARD = ("aten::convolution_backward", "aten::mkldnn_convolution_backward")


def profiled_step(model: torch.nn.Module, opt: torch.optim.Optimizer, batches: object, precision: str) -> None:
    """Benchmark (c)'s step (``benchmarks.throughput.train_step``), its phases labelled for the profiler."""
    import torch.nn.functional as F
    from torch.profiler import record_function

    bf16 = precision == "bf16"
    with record_function("data"):
        x, y = next(batches)
        if bf16:
            x = x.contiguous(memory_format=torch.channels_last)
    with record_function("forward"):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x).logits
        loss = F.cross_entropy(logits.float(), y)
    with record_function("backward"):
        opt.zero_grad(set_to_none=True)
        loss.backward()
    with record_function("optimizer step"):
        opt.step()


def profile(precision: str, warmup: int, steps: int, data: object) -> tuple[dict[str, float], float]:
    """Seconds per phase (inclusive) and in convolutions (forward, backward: the ops' own time) over ``steps``
    steps, and the wall seconds of those steps. Times are on the calling thread, so OpenMP work inside an op counts
    once, as wall time."""
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
            profiled_step(model, opt, batches, precision)
        wall = time.perf_counter() - t0
    events = {e.key: e for e in prof.key_averages()}
    out = {p: events[p].cpu_time_total / 1e6 for p in PHASES if p in events}
    # Self time of every conv op layer (inclusive time of aten::conv2d would also hold autocast's weight casts).
    out["conv forward"] = sum(events[k].self_cpu_time_total / 1e6 for k in CONV_FORWARD if k in events)
    out["conv backward"] = sum(events[k].self_cpu_time_total / 1e6 for k in CONV_BACKWARD if k in events)
    return out, wall


def cache_dir() -> str:
    """Where inductor keeps compiled kernels (shared by every process of the user on this machine)."""
    from torch._inductor.runtime.cache_dir_utils import cache_dir as inductor_cache_dir

    return inductor_cache_dir()


def compiled_rate(precision: str, warmup: int, steps: int, data: object, rounds: int = 3) -> tuple[float, float, float]:
    """(images/s eager, images/s with torch.compile(model), seconds of the first compiled step), the rates each the
    median of ``rounds`` timed blocks of ``steps`` steps. The two models' blocks alternate, so a change in machine
    load hits both alike. The first step's time is mostly compilation (less with a warm inductor cache)."""
    runs, first_step = [], {}
    for use_compile in (False, True):
        model = build_model(precision)
        model.train()
        opt = sgd(model)
        run = torch.compile(model) if use_compile else model
        batches = bare_batches(data.train, data.mean, data.std)
        t0 = time.perf_counter()
        train_step(run, opt, *next(batches), precision)
        first_step[use_compile] = time.perf_counter() - t0
        for _ in range(warmup + (COMPILE_WARMUP_STEPS if use_compile else 0)):
            train_step(run, opt, *next(batches), precision)
        runs.append((run, opt, batches))
    rates: list[list[float]] = [[], []]
    for _ in range(rounds):
        for i, (run, opt, batches) in enumerate(runs):
            t0 = time.perf_counter()
            for _ in range(steps):
                train_step(run, opt, *next(batches), precision)
            rates[i].append(steps * 128 / (time.perf_counter() - t0))
    eager, comp = (sorted(r)[len(r) // 2] for r in rates)
    return eager, comp, first_step[True]


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser("profile_step", __doc__)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    add_threads(parser, default=torch.get_num_threads())
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(model) against eager")
    args = parser.parse_args(argv)
    inductor_cache = Path(cache_dir())
    cache_existed = inductor_cache.is_dir() and any(inductor_cache.iterdir())
    print_header("ResNet-32 training step profile (batch 128): time per phase and in convolutions", args.threads)
    spec = data_spec(args.data_root)
    data = load_spec(spec)
    for precision in args.precisions:
        t, wall = profile(precision, args.warmup, args.steps, data)
        images = args.steps * 128
        ms = {k: 1e3 * v / args.steps for k, v in t.items()}
        conv = t["conv forward"] + t["conv backward"]
        rows = [[p, f"{ms.get(p, 0.0):.1f}", f"{100 * t.get(p, 0.0) / wall:.1f} %"] for p in PHASES]
        rows += [
            ["  of forward + backward: convolutions", f"{1e3 * conv / args.steps:.1f}", f"{100 * conv / wall:.1f} %"],
            [
                "  of forward + backward: everything else (BN, ReLU, add, pooling, FC, loss, autograd)",
                f"{ms.get('forward', 0) + ms.get('backward', 0) - 1e3 * conv / args.steps:.1f}",
                f"{100 * (t.get('forward', 0) + t.get('backward', 0) - conv) / wall:.1f} %",
            ],
        ]
        print(f"## {precision}: {images / wall:.1f} images/s under the profiler, {args.threads} threads")
        print_table(["phase", "ms per step", "share of wall"], rows)
        print(
            f"convolutions alone run at {TRAIN_GFLOP_PER_IMAGE * images / conv:.0f} GFLOP/s (their FLOPs over their "
            f"time); the whole step at {TRAIN_GFLOP_PER_IMAGE * images / wall:.0f} GFLOP/s\n",
            flush=True,
        )
    if args.compile:
        rows = []
        for precision in args.precisions:
            eager, comp, first = compiled_rate(precision, args.warmup, args.steps, data)
            rows.append([precision, f"{eager:.1f}", f"{comp:.1f}", f"{comp / eager:.2f}", f"{first:.1f}"])
        print(
            f"inductor cache: {inductor_cache} ({'existed' if cache_existed else 'empty'} before this run; "
            f"TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) measures a cold compile)"
        )
        print_table(["precision", "eager images/s", "torch.compile images/s", "ratio", "first compiled step s"], rows)
    print_load_at_end()
    return 0


if __name__ == "__main__":
    sys.exit(main())
