"""Training throughput on one GPU (images/s): the elm trainer against a bare GPU loop and an LDAM-style pipeline,
and the aggregate of several concurrent trials on the same GPU. Needs torch (+ torchvision for (d)) only: no Ray,
Optuna or MLflow, so it runs on a bare GPU machine (../shared/device/README.md).

    python -m benchmarks.gpu_throughput --data-root .device/data [--steps 97] [--warmup 20] [--loader-workers 4]
        [--precision bf16] [--concurrent 1 2 4 8] [--out gpu_throughput.json]
    python -m benchmarks.gpu_throughput --tiny          # seconds on a CPU: the same code paths at toy size

ResNet-32, batch 128, SGD (momentum 0.9, weight decay 2e-4, lr 0.1), real CIFAR-10-LT (rho 100, 12,406 images):

  (b) elm          ``elm.train.fit`` (data on the device, channels_last, ``--precision``); epoch 1 (``--steps``
                   steps) is warm-up, epoch 2's ``train/images_per_sec`` is the figure.
  (c) bare         a hand-written loop with the uint8 training set on the GPU: randperm, gather, pad-crop-flip and
                   normalise on the GPU (offsets from a GPU generator), forward, CE, backward, SGD; no host sync.
  (d) pil          LDAM-DRW's pipeline: per image ``Image.fromarray`` -> RandomCrop(32, 4) -> flip -> ToTensor ->
                   Normalize in a DataLoader (``--loader-workers``, pinned memory), non-blocking copies, same step.
  concurrent       N separate processes each running (b) on the same GPU; they start epoch 2 together (a file
                   barrier), and the aggregate is N x images / (last end - first start).

Goals (issue 13): b >= 0.9 c, b >= 3 d, and 4 concurrent trials >= 2.5x one. The summary says met / not met.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmarks.common import (
    LR,
    MOMENTUM,
    REPO_ROOT,
    WEIGHT_DECAY,
    benchmark_parser,
    cifar10_lt_data,
    load_spec,
    print_header,
    print_table,
    timed,
    timing_config,
)
from elm.config import ExperimentConfig
from elm.data.augment import crop_flip
from elm.data.base import LongTailData, TensorSplit
from elm.data.loaders import CIFAR_CROP_PAD, channel_constants, normalise
from elm.precision import autocast
from elm.registry import LOSSES, MODELS
from elm.train import EpochReport, Experiment, fit

BATCH_SIZE = 128
GOALS = {"b/c": 0.9, "b/d": 3.0, "concurrent 4/1": 2.5}
# --tiny: toy sizes that exercise every code path on a CPU in seconds.
TINY = {"batch_size": 8, "steps": 2, "warmup": 1, "concurrent": [1, 2], "loader_workers": 0, "precision": "fp32"}
TINY_DATA = {
    "name": "synthetic_lt",
    "num_classes": 4,
    "image_size": 8,
    "n_max": 16,
    "imbalance_ratio": 4,
    "n_test_per_class": 2,
}


def data_spec(data_root: str | None, tiny: bool) -> dict[str, Any]:
    """The ``data:`` block: real CIFAR-10-LT under ``data_root`` (test split cut to a few images per class)."""
    if tiny:
        return dict(TINY_DATA)
    if not data_root:
        raise SystemExit("error: --data-root is required (a folder with cifar-10-batches-py), or pass --tiny")
    return cifar10_lt_data(data_root)


def make_config(data: dict[str, Any], precision: str, steps: int, batch_size: int, compile: bool) -> ExperimentConfig:
    """2 epochs of ``steps`` steps, ResNet-32 + CE, constant lr, evaluation only after the last epoch."""
    return timing_config(
        f"gpu_throughput_{precision}",
        data,
        steps,
        batch_size,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        channels_last=True,
        compile=compile,
        data_on_device="auto",
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_elm(
    data: LongTailData, cfg: ExperimentConfig, device: torch.device, after_warmup: Callable[[], None] | None = None
) -> tuple[float, float, float]:
    """(b): epoch 2's ``train/images_per_sec`` of ``fit``, and epoch 2's start and end (``time.time()``).

    ``after_warmup`` runs between the epochs (the concurrent workers' barrier)."""
    model = MODELS.build(cfg.model.name, cfg.model.kwargs, num_classes=data.num_classes, in_channels=3)
    loss = LOSSES.build(cfg.loss.name, cfg.loss.kwargs, class_counts=data.class_counts)
    starts: list[float] = []
    reports: list[EpochReport] = []

    def report(r: EpochReport) -> None:
        reports.append(r)
        if r.epoch == 1:
            if after_warmup is not None:
                after_warmup()
            starts.append(time.time())

    fit(cfg, report, device=device, experiment=Experiment(data=data, model=model, loss=loss))
    m = reports[-1].metrics
    return m["train/images_per_sec"], starts[0], starts[0] + m["train/epoch_seconds"]


def build_model(num_classes: int, device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    model = MODELS.build("resnet32", {}, num_classes=num_classes, in_channels=3)
    return model.to(device).to(memory_format=torch.channels_last).train()


def make_step(model: nn.Module, device: torch.device, precision: str) -> Callable[[Tensor, Tensor], None]:
    """One SGD step on a normalised batch already on ``device``; never waits for the device."""
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None

    def step(x: Tensor, y: Tensor) -> None:
        x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, precision):  # type: ignore[arg-type]
            loss = F.cross_entropy(model(x).logits.float(), y)
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()

    return step


def device_batches(
    split: TensorSplit, mean: tuple[float, ...], std: tuple[float, ...], batch_size: int, device: torch.device
) -> Iterator[tuple[Tensor, Tensor]]:
    """(c)'s data: the uint8 split on ``device``; endless epochs of full batches, all randomness drawn there."""
    images, labels = split.images.to(device), split.labels.to(device)
    m, s = channel_constants(mean, std, device)
    gen = torch.Generator(device=device).manual_seed(0)
    n, pad = len(labels), CIFAR_CROP_PAD
    while True:
        order = torch.randperm(n, device=device, generator=gen)
        for b in range(0, n - batch_size + 1, batch_size):
            idx = order[b : b + batch_size]
            dy, dx = torch.randint(0, 2 * pad + 1, (2, batch_size), device=device, generator=gen)
            flip = torch.randint(0, 2, (batch_size,), device=device, generator=gen).bool()
            x = crop_flip(images[idx], pad, dy, dx, flip)
            yield normalise(x, m, s), labels[idx]


def run_bare(
    data: LongTailData, device: torch.device, precision: str, batch_size: int, warmup: int, steps: int
) -> float:
    step = make_step(build_model(data.num_classes, device), device, precision)
    batches = device_batches(data.train, data.mean, data.std, batch_size, device)
    return timed(batches, step, warmup, steps, lambda: sync(device))


def pil_batches(
    data: LongTailData, batch_size: int, workers: int, device: torch.device
) -> Iterator[tuple[Tensor, Tensor]]:
    """(d)'s data: LDAM-DRW's transform per PIL image in a DataLoader, pinned, copied without blocking."""
    from torchvision import transforms

    from benchmarks.throughput import PilCifar

    transform = transforms.Compose(
        [
            transforms.RandomCrop(data.image_size, padding=CIFAR_CROP_PAD),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(data.mean, data.std),
        ]
    )
    loader = torch.utils.data.DataLoader(
        PilCifar(data.train, transform),
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(0),
    )
    while True:
        for x, y in loader:
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def run_pil(
    data: LongTailData, device: torch.device, precision: str, batch_size: int, warmup: int, steps: int, workers: int
) -> float:
    step = make_step(build_model(data.num_classes, device), device, precision)
    return timed(pil_batches(data, batch_size, workers, device), step, warmup, steps, lambda: sync(device))


def file_barrier(folder: Path, parties: int, me: int, timeout_s: float = 600.0) -> Callable[[], None]:
    """A barrier between processes: each writes ``ready.<me>`` and waits until ``parties`` such files exist."""

    def wait() -> None:
        (folder / f"ready.{me}").write_text("")
        deadline = time.time() + timeout_s
        while len(list(folder.glob("ready.*"))) < parties:
            if time.time() > deadline:
                raise TimeoutError(f"only {len(list(folder.glob('ready.*')))} of {parties} workers got ready")
            time.sleep(0.01)

    return wait


def run_concurrent(n: int, args: argparse.Namespace) -> dict[str, float]:
    """``n`` processes running (b) at once on the device; their sum and their aggregate images/s."""
    with tempfile.TemporaryDirectory(prefix="gpu-concurrent-") as tmp:
        procs = []
        for i in range(n):
            cmd = [
                sys.executable,
                "-m",
                "benchmarks.gpu_throughput",
                "--worker",
                str(i),
                "--barrier",
                tmp,
                "--parties",
                str(n),
                "--steps",
                str(args.steps),
                "--batch-size",
                str(args.batch_size),
                "--precision",
                args.precision,
                "--device",
                args.device,
            ]
            cmd += ["--tiny"] if args.tiny else ["--data-root", args.data_root]
            procs.append(
                subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            )
        results = []
        for p in procs:
            out, err = p.communicate()
            if p.returncode != 0:
                raise RuntimeError(f"a concurrent worker failed ({p.returncode}): {err[-2000:]}")
            results.append(json.loads(out.strip().splitlines()[-1]))
    images = n * args.steps * args.batch_size
    span = max(r["end"] for r in results) - min(r["start"] for r in results)
    return {"sum": sum(r["images_per_sec"] for r in results), "aggregate": images / span}


def worker_main(args: argparse.Namespace) -> int:
    """One concurrent trial: (b), printing one JSON line (images/s, epoch-2 start and end)."""
    spec = data_spec(args.data_root, args.tiny)
    data = load_spec(spec)
    cfg = make_config(spec, args.precision, args.steps, args.batch_size, compile=False)
    barrier = file_barrier(Path(args.barrier), args.parties, args.worker)
    rate, start, end = run_elm(data, cfg, torch.device(args.device), after_warmup=barrier)
    print(json.dumps({"images_per_sec": rate, "start": start, "end": end}), flush=True)
    return 0


def verdict(ratio: float | None, goal: float) -> str:
    return "-" if ratio is None else f"{ratio:.2f} ({'met' if ratio >= goal else 'not met'}, goal >= {goal:g})"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = benchmark_parser("gpu_throughput", __doc__)
    p.add_argument("--data-root", default=None, help="folder holding cifar-10-batches-py")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", default=None, choices=["bf16", "fp16", "fp32"], help="default bf16 (--tiny: fp32)")
    p.add_argument("--steps", type=int, default=None, help="measured steps (default 97: one CIFAR-10-LT epoch)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps before (c) and (d) (default 20)")
    p.add_argument("--batch-size", type=int, default=None, help=f"default {BATCH_SIZE}")
    p.add_argument("--loader-workers", type=int, default=None, help="DataLoader workers of (d) (default 4)")
    p.add_argument("--concurrent", type=int, nargs="*", default=None, help="trial counts (default 1 2 4 8)")
    p.add_argument("--compile", action="store_true", help="train.compile in (b)")
    p.add_argument("--tiny", action="store_true", help="toy sizes on synthetic data: a code-path check, no figures")
    p.add_argument("--out", default=None, help="also write the figures to this JSON file")
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--barrier", default=None, help=argparse.SUPPRESS)
    p.add_argument("--parties", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    defaults = (
        TINY
        if args.tiny
        else {
            "batch_size": BATCH_SIZE,
            "steps": 97,
            "warmup": 20,
            "concurrent": [1, 2, 4, 8],
            "loader_workers": 4,
            "precision": "bf16",
        }
    )
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        return worker_main(args)
    device = torch.device(args.device)
    print_header(f"GPU training throughput, ResNet-32, batch {args.batch_size}, {args.precision}, images/s")
    if device.type == "cuda":
        print(f"device  : {torch.cuda.get_device_name(device)}")
    spec = data_spec(args.data_root, args.tiny)
    data = load_spec(spec)
    print(
        f"data    : {spec['name']}: {len(data.train)} training images; {args.steps} measured steps per variant",
        flush=True,
    )
    cfg = make_config(spec, args.precision, args.steps, args.batch_size, args.compile)
    r: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": args.precision,
        "batch_size": args.batch_size,
        "steps": args.steps,
    }
    r["b"] = run_elm(data, cfg, device)[0]
    print(f"  (b) elm   {r['b']:9.1f} img/s", flush=True)
    r["c"] = run_bare(data, device, args.precision, args.batch_size, args.warmup, args.steps)
    print(f"  (c) bare  {r['c']:9.1f} img/s", flush=True)
    r["d"] = run_pil(data, device, args.precision, args.batch_size, args.warmup, args.steps, args.loader_workers)
    print(f"  (d) pil   {r['d']:9.1f} img/s", flush=True)
    r["concurrent"] = {}
    for n in args.concurrent:
        r["concurrent"][n] = run_concurrent(n, args)
        print(
            f"  {n} concurrent: aggregate {r['concurrent'][n]['aggregate']:9.1f} img/s "
            f"(sum of the trials' own rates {r['concurrent'][n]['sum']:.1f})",
            flush=True,
        )
    print()
    print_table(
        ["(b) elm", "(c) bare", "(d) pil", "b/c", "b/d"],
        [[r["b"], r["c"], r["d"], f"{r['b'] / r['c']:.2f}", f"{r['b'] / r['d']:.2f}"]],
    )
    if r["concurrent"]:
        one = r["concurrent"].get(1, {}).get("aggregate")
        print_table(
            ["trials", "aggregate img/s", "sum of trial rates", "x one trial"],
            [
                [n, c["aggregate"], c["sum"], f"{c['aggregate'] / one:.2f}" if one else "-"]
                for n, c in r["concurrent"].items()
            ],
        )
    four = r["concurrent"].get(4, {}).get("aggregate")
    one = r["concurrent"].get(1, {}).get("aggregate")
    r["goals"] = {
        "b/c": verdict(r["b"] / r["c"], GOALS["b/c"]),
        "b/d": verdict(r["b"] / r["d"], GOALS["b/d"]),
        "concurrent 4/1": verdict(four / one if four and one else None, GOALS["concurrent 4/1"]),
    }
    for k, v in r["goals"].items():
        print(f"goal {k}: {v}")
    if args.tiny:
        print("(--tiny: toy sizes on synthetic data; these figures mean nothing)")
    if args.out:
        Path(args.out).write_text(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
