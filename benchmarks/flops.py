"""ResNet-32's training FLOPs per image, this CPU's measured matmul peak, and the fraction of it a throughput reaches.

    python -m benchmarks.flops [--images-per-sec FP32 BF16] [--measure-throughput --steps 20] [--threads N]

FLOPs are counted, not estimated from parameters: forward hooks on every Conv2d and Linear record multiply-
accumulates (MACs) per image, FLOPs = 2 x MACs; BatchNorm, ReLU, pooling, the shortcut and the loss are ignored
(well under 1% here). A training step costs about 3x the forward pass (backward = gradient w.r.t. the inputs plus
gradient w.r.t. the weights, each about one forward), the usual approximation (Kaplan et al. 2020, section 2.1).
ResNet-32 (CIFAR, 10 classes): 68.86 M MACs -> 0.138 GFLOP forward, ~0.413 GFLOP per training image.

The peak is the best of several ``torch.mm`` of two 4096 x 4096 matrices in fp32 and in bf16 (2 n^3 FLOPs
each), with the same thread count as training: the attainable dense-GEMM rate, not the datasheet number.
"""

from __future__ import annotations

import sys
import time
from typing import Sequence

import torch
from torch import nn

from benchmarks.common import (
    add_threads,
    benchmark_parser,
    load_average,
    load_spec,
    print_header,
    print_load_at_end,
    print_table,
)

TRAIN_TO_FORWARD = 3.0  # forward + backward (input grads + weight grads), each ~ one forward
MATMUL_N = 4096


def forward_macs_per_image(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of one forward pass per image, summed over every Conv2d and Linear.

    Args:
        model: any module made of Conv2d/Linear (plus parameter-free or cheap layers, which are not counted).
        input_shape: (C, H, W) of one image.
    Returns:
        Conv2d: out_elements x (in_channels / groups) x kh x kw; Linear: out_elements x in_features (per image).
    """
    total = 0

    def conv_hook(m: nn.Conv2d, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        total += out[0].numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        total += out[0].numel() * m.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()  # BatchNorm running stats stay untouched
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total


def resnet_training_flops_per_image(model: nn.Module, input_shape: Sequence[int]) -> float:
    """Training FLOPs per image: 3 x forward (2 FLOPs per MAC of every Conv2d and Linear).

    Args:
        model: e.g. ``MODELS.build("resnet32", {}, num_classes=10, in_channels=3)``.
        input_shape: (C, H, W) of one image, e.g. (3, 32, 32).
    """
    return TRAIN_TO_FORWARD * 2.0 * forward_macs_per_image(model, input_shape)


def matmul_peak_gflops(dtype: torch.dtype, n: int = MATMUL_N, repeats: int = 5) -> float:
    """Best-of-``repeats`` GFLOP/s of an (n x n) @ (n x n) ``torch.mm`` in ``dtype`` (after one warm-up call)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(dtype)
    b = torch.randn(n, n, generator=g).to(dtype)
    out = torch.empty(n, n, dtype=dtype)
    torch.mm(a, b, out=out)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser("flops", __doc__)
    parser.add_argument(
        "--images-per-sec",
        nargs=2,
        type=float,
        metavar=("FP32", "BF16"),
        default=None,
        help="training throughputs to rate (e.g. from benchmarks.throughput)",
    )
    parser.add_argument(
        "--measure-throughput", action="store_true", help="measure (b) and (c) of benchmarks.throughput now instead"
    )
    parser.add_argument("--steps", type=int, default=20, help="measured steps with --measure-throughput")
    parser.add_argument("--repeats", type=int, default=5, help="matmuls per dtype (best is kept)")
    add_threads(parser)
    args = parser.parse_args(argv)
    print_header("ResNet-32 training FLOPs and fraction of this CPU's matmul peak", args.threads)

    from elm.registry import MODELS
    import elm.models  # noqa: F401  (registration)

    model = MODELS.build("resnet32", {}, num_classes=10, in_channels=3)
    macs = forward_macs_per_image(model, (3, 32, 32))
    train_flops = resnet_training_flops_per_image(model, (3, 32, 32))
    print(
        f"ResNet-32 (10 classes), 3x32x32: {macs / 1e6:.2f} M MACs forward = {2 * macs / 1e9:.4f} GFLOP; "
        f"training ~ {TRAIN_TO_FORWARD:g} x forward = {train_flops / 1e9:.4f} GFLOP per image"
    )
    peak = {
        "fp32": matmul_peak_gflops(torch.float32, repeats=args.repeats),
        "bf16": matmul_peak_gflops(torch.bfloat16, repeats=args.repeats),
    }
    for k, v in peak.items():
        print(f"matmul peak {k}: {v:.1f} GFLOP/s (torch.mm {MATMUL_N}x{MATMUL_N}, best of {args.repeats})")
    print(f"load    : {load_average()} after the matmuls", flush=True)

    rates: dict[str, dict[str, float]] = {}
    if args.images_per_sec:
        rates["given"] = dict(zip(("fp32", "bf16"), args.images_per_sec))
    if args.measure_throughput:
        from benchmarks import throughput as tp

        spec = tp.data_spec(None)
        data = load_spec(spec)
        for p in ("fp32", "bf16"):
            rates.setdefault("(b) elm", {})[p] = tp.run_elm(data, tp.make_config(spec, p, args.steps, args.threads))
            rates.setdefault("(c) bare", {})[p] = tp.run_bare(data, p, 3, args.steps)
    if rates:
        print()
        rows = []
        for name, by_p in rates.items():
            for p, ips in by_p.items():
                achieved = ips * train_flops / 1e9
                rows.append([name, p, ips, achieved, f"{100 * achieved / peak[p]:.1f}%"])
        print_table(["source", "precision", "images/s", "GFLOP/s", "of matmul peak"], rows)
        print_load_at_end()
    return 0


if __name__ == "__main__":
    sys.exit(main())
