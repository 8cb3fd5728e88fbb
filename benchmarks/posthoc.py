"""Wall time of ``elm.metrics.posthoc_sweep``: 1,000 taus over 10,000 x 100 logits (CIFAR-100-LT test size).

    python -m benchmarks.posthoc [--taus 1000] [--n 10000] [--classes 100] [--repeats 5] [--threads N]

Counts follow the imbalance-100 exponential profile of CIFAR-100-LT (500 ... 5); logits are standard normal
with the target logit raised by 2 so accuracies are non-trivial. Best of ``--repeats`` after one warm-up call.
Target: under 1 s (the sweep runs at every evaluation of every trial).
"""

from __future__ import annotations

import sys
import time

import torch

from benchmarks.common import add_threads, benchmark_parser, print_header, print_load_at_end
from elm.data.longtail import longtail_counts
from elm.metrics import posthoc_sweep

TARGET_SECONDS = 1.0
TAU_MAX = 3.0
TARGET_BOOST = 2.0  # added to the target logit: about half the examples are right at tau = 0


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser("posthoc", __doc__)
    parser.add_argument("--taus", type=int, default=1000)
    parser.add_argument("--n", type=int, default=10_000, help="evaluation examples")
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    add_threads(parser)
    args = parser.parse_args(argv)
    print_header("posthoc_sweep wall time (lower is better)", args.threads)
    g = torch.Generator().manual_seed(0)
    counts = torch.tensor(longtail_counts(500, args.classes, 100.0), dtype=torch.int64)  # (C,)
    targets = torch.randint(0, args.classes, (args.n,), generator=g)  # (N,)
    logits = torch.randn(args.n, args.classes, generator=g)  # (N, C)
    logits[torch.arange(args.n), targets] += TARGET_BOOST
    taus = torch.linspace(0.0, TAU_MAX, args.taus).tolist()
    posthoc_sweep(logits, targets, counts, taus)  # warm-up
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        out = posthoc_sweep(logits, targets, counts, taus)
        times.append(time.perf_counter() - t0)
    best = min(times)
    print(
        f"{args.taus} taus x {args.n} x {args.classes} logits: best {best:.4f} s, "
        f"median {sorted(times)[len(times) // 2]:.4f} s of {args.repeats} "
        f"({1e6 * best / args.taus:.1f} us per tau); target < {TARGET_SECONDS:g} s: "
        f"{'met' if best < TARGET_SECONDS else 'MISSED'}"
    )
    print(
        f"sanity  : balanced_acc at tau=0 {out[taus[0]]['balanced_acc']:.3f}, at tau={taus[-1]:g} "
        f"{out[taus[-1]]['balanced_acc']:.3f}"
    )
    print_load_at_end()
    return 0 if best < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
