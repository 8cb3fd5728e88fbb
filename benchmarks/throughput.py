"""Training throughput (images/s) of ResNet-32 on CIFAR-sized data, batch 128, CPU: fp32 and bf16.

    python -m benchmarks.throughput [--data-root ../shared/data] [--steps 40] [--warmup 5] [--threads N]
                                    [--loader-workers 2] [--with-platform [--platform-launcher auto]]

Four ways to train the same model with the same optimiser (SGD, momentum 0.9, weight decay 2e-4, lr 0.1) on the
same in-memory images, each timed over ``--steps`` steps after warm-up:

  (a) platform  a Tune trial of ``platform.tune`` (with the default ``resources.launcher: auto`` and one
                worker, ``elm.train.fit`` inside the Tune trial; ``--platform-launcher ray_train`` puts a Ray
                Train TorchTrainer with one worker in between), its epoch-2 ``train/images_per_sec`` read from
                ``trials.csv`` (opt-in: ``--with-platform``, it starts Ray: ~30 s).
  (b) elm       ``elm.train.fit`` on a prebuilt experiment; epoch 1 is warm-up (``--steps`` steps), epoch 2 is
                measured through its ``train/images_per_sec`` report.
  (c) bare      a hand-written loop over in-memory uint8 tensors: batched ``random_crop_flip`` (pad 4) +
                normalisation, forward, CE, backward, SGD step. No framework: the floor for this model here.
  (d) torchvision  the loader most long-tail repos use (LDAM-DRW's ``IMBALANCECIFAR10`` is torchvision's CIFAR10):
                per image ``Image.fromarray`` -> RandomCrop(32, 4) -> RandomHorizontalFlip -> ToTensor ->
                Normalize in a ``DataLoader`` (shuffle, batch 128, ``--loader-workers`` processes), then the
                same training step as (c). LDAM-DRW uses 4 workers on a GPU box; on 2 cores, 2 workers
                compete with the 2 training threads, so try ``--loader-workers 0`` and ``1`` too.

bf16 means ``torch.autocast("cpu", dtype=torch.bfloat16)`` plus a channels_last model and inputs (elm's
``train.bf16`` and ``train.channels_last``); fp32 means neither. (d) uses the same precision as the others so
that its ratio isolates the data pipeline. Without ``--data-root`` the images are elm's ``synthetic_lt`` blobs
with CIFAR-10-LT's shape (12,406 uint8 3x32x32 images, 10 classes, imbalance 100): throughput does not depend on
pixel values, and the platform trial can load the same registered dataset.

Expected on a quiet 2-core Zen 4 (AVX-512 BF16): see benchmarks/README.md.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn.functional as F
import yaml
from torch import Tensor, nn

from benchmarks.common import (
    LR,
    MOMENTUM,
    WEIGHT_DECAY,
    EVAL_PER_CLASS,
    IMBALANCE,
    timing_config,
    REPO_ROOT,
    add_threads,
    benchmark_parser,
    cifar10_lt_data,
    load_average,
    load_spec,
    print_header,
    print_load_at_end,
    print_table,
    timed,
)
from elm.config import ExperimentConfig
from elm.data.augment import random_crop_flip
from elm.data.base import LongTailData, TensorSplit
from elm.data.loaders import CIFAR_CROP_PAD, normalise
from elm.registry import LOSSES, MODELS
from elm.train import EpochReport, Experiment, fit

BATCH_SIZE = 128
N_MAX, NUM_CLASSES = 5000, 10  # CIFAR-10-LT's head class and classes, for the same-shaped synthetic blobs
PRECISIONS = ("fp32", "bf16")


def data_spec(data_root: str | None) -> dict[str, Any]:
    """The ``data:`` block for either real CIFAR-10-LT or same-shaped synthetic blobs."""
    if data_root:
        return cifar10_lt_data(data_root)
    return {
        "name": "synthetic_lt",
        "num_classes": NUM_CLASSES,
        "image_size": 32,
        "n_max": N_MAX,
        "imbalance_ratio": IMBALANCE,
        "n_test_per_class": EVAL_PER_CLASS,
    }


def make_config(
    data: dict[str, Any], precision: str, steps: int, threads: int, compile: bool = False
) -> ExperimentConfig:
    """A 2-epoch ResNet-32 + CE config capped at ``steps`` steps per epoch, constant lr, no evaluation in between
    (``compile``: ``train.compile``, so epoch 1, the warm-up, also holds the compilation)."""
    bf16 = precision == "bf16"
    return timing_config(
        f"throughput_{precision}",
        data,
        steps,
        BATCH_SIZE,
        bf16=bf16,
        channels_last=bf16,
        num_threads=threads,
        compile=compile,
    )


def build_model(precision: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = MODELS.build("resnet32", {}, num_classes=NUM_CLASSES, in_channels=3)
    return model.to(memory_format=torch.channels_last) if precision == "bf16" else model


def sgd(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)


def train_step(model: nn.Module, opt: torch.optim.Optimizer, x: Tensor, y: Tensor, precision: str) -> None:
    """One SGD step on a normalised float batch (B, 3, 32, 32)."""
    bf16 = precision == "bf16"
    if bf16:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(x).logits
    loss = F.cross_entropy(logits.float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def run_elm(data: LongTailData, cfg: ExperimentConfig) -> float:
    """(b): ``elm.train.fit``'s own ``train/images_per_sec`` of epoch 2 (epoch 1 is warm-up)."""
    reports: list[EpochReport] = []
    model = MODELS.build(cfg.model.name, cfg.model.kwargs, num_classes=data.num_classes, in_channels=3)
    loss = LOSSES.build(cfg.loss.name, cfg.loss.kwargs, class_counts=data.class_counts)
    fit(cfg, reports.append, experiment=Experiment(data=data, model=model, loss=loss))
    return reports[-1].metrics["train/images_per_sec"]


def bare_batches(
    split: TensorSplit, mean: tuple[float, ...], std: tuple[float, ...]
) -> Iterator[tuple[Tensor, Tensor]]:
    """(c)'s data: endless shuffled epochs of batched pad-crop-flip + normalisation on uint8 tensors."""
    gen = torch.Generator().manual_seed(0)
    n = len(split)
    while True:
        order = torch.randperm(n, generator=gen)
        for b in range(0, n, BATCH_SIZE):
            idx = order[b : b + BATCH_SIZE]
            images = random_crop_flip(split.images[idx], CIFAR_CROP_PAD, gen)
            yield normalise(images, mean, std), split.labels[idx]


COMPILE_WARMUP_STEPS = 3  # extra untimed steps for a torch.compile'd model: compilation happens in its first calls


def run_bare(data: LongTailData, precision: str, warmup: int, steps: int, compile: bool = False) -> float:
    model = build_model(precision)
    model.train()
    opt = sgd(model)
    run = torch.compile(model) if compile else model
    warmup += COMPILE_WARMUP_STEPS if compile else 0
    return timed(
        bare_batches(data.train, data.mean, data.std), lambda x, y: train_step(run, opt, x, y, precision), warmup, steps
    )


class PilCifar(torch.utils.data.Dataset):
    """torchvision.datasets.CIFAR10's ``__getitem__``: an HWC uint8 array -> PIL image -> transform."""

    def __init__(self, split: TensorSplit, transform: Any) -> None:
        self.images = split.images.permute(0, 2, 3, 1).contiguous().numpy()  # (N, 32, 32, 3)
        self.labels = split.labels.numpy()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def torchvision_batches(data: LongTailData, workers: int) -> Iterator[tuple[Tensor, Tensor]]:
    """(d)'s data: LDAM-DRW's train transform in a DataLoader, cycled over epochs (workers persist)."""
    from torchvision import transforms

    transform = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=CIFAR_CROP_PAD),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(data.mean, data.std),
        ]
    )
    loader = torch.utils.data.DataLoader(
        PilCifar(data.train, transform),
        batch_size=BATCH_SIZE,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(0),
    )
    while True:
        yield from loader


def run_torchvision(data: LongTailData, precision: str, warmup: int, steps: int, workers: int) -> float:
    model = build_model(precision)
    model.train()
    opt = sgd(model)
    return timed(
        torchvision_batches(data, workers), lambda x, y: train_step(model, opt, x, y, precision), warmup, steps
    )


def run_platform(
    data: dict[str, Any], precision: str, steps: int, threads: int, launcher: str = "auto", compile: bool = False
) -> float:
    """(a): one Tune trial of ``python -m platform.tune`` (subprocess, so Ray is fully torn down afterwards)."""
    raw = make_config(data, precision, steps, threads, compile).to_dict()
    raw["tune"] = {"searcher": "grid", "metric": "train/loss", "mode": "min", "scheduler": "fifo"}
    raw["resources"] = {"num_workers": 1, "cpus_per_worker": threads, "launcher": launcher}
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
        cfg_path = Path(tmp) / "throughput.yaml"
        cfg_path.write_text(yaml.safe_dump(raw, sort_keys=False))
        cmd = [
            sys.executable,
            "-m",
            "platform.tune",
            str(cfg_path),
            "--out",
            str(Path(tmp) / "out"),
            "--set",
            "optim.epochs=2",
            "--set",
            f"train.max_steps_per_epoch={steps}",
        ]
        proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True)
        trials = Path(tmp) / "out" / "trials.csv"
        if proc.returncode != 0 or not trials.is_file():
            sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
            raise RuntimeError(f"platform.tune failed with exit code {proc.returncode}")
        with trials.open() as f:
            row = next(csv.DictReader(f))
        if int(row["epochs"]) != 2 or row["status"] != "finished":
            raise RuntimeError(f"expected the trial to finish 2 epochs, got {row['epochs']} ({row['status']})")
        return float(row["train/images_per_sec"])


def ratio(num: float | None, den: float | None) -> str:
    return f"{num / den:.2f}" if num and den else "-"


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser("throughput", __doc__)
    parser.add_argument("--data-root", default=None, help="folder with cifar-10-batches-py (else synthetic blobs)")
    parser.add_argument("--steps", type=int, default=40, help="measured steps per variant")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before (c) and (d)")
    add_threads(parser)
    parser.add_argument("--loader-workers", type=int, default=2, help="DataLoader workers of (d)")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--with-platform", action="store_true", help="also time (a), a Ray Tune trial (~30 s)")
    parser.add_argument(
        "--platform-launcher",
        default="auto",
        choices=["auto", "in_trial", "ray_train"],
        help="resources.launcher of (a)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model of (a), (b) (train.compile) and (c); (d) stays eager",
    )
    args = parser.parse_args(argv)
    print_header("training throughput, ResNet-32, batch 128, images/s (higher is better)", args.threads)
    spec = data_spec(args.data_root)
    t0 = time.perf_counter()
    data = load_spec(spec)
    print(
        f"data    : {spec['name']}: {len(data.train)} train images {tuple(data.train.images.shape[1:])} uint8 "
        f"in memory (loaded in {time.perf_counter() - t0:.1f} s)"
    )
    print(
        f"steps   : {args.steps} measured after {args.warmup} warm-up steps "
        f"((b): after a warm-up epoch of {args.steps} steps); (d) DataLoader workers: {args.loader_workers}"
    )
    print(flush=True)

    rows, results = [], {}
    for precision in args.precisions:
        r: dict[str, float | None] = {"a": None}
        r["b"] = run_elm(data, make_config(spec, precision, args.steps, args.threads, args.compile))
        print(f"  {precision} (b) elm         {r['b']:8.1f} img/s   load {load_average()}", flush=True)
        r["c"] = run_bare(data, precision, args.warmup, args.steps, args.compile)
        print(f"  {precision} (c) bare        {r['c']:8.1f} img/s   load {load_average()}", flush=True)
        r["d"] = run_torchvision(data, precision, args.warmup, args.steps, args.loader_workers)
        print(f"  {precision} (d) torchvision {r['d']:8.1f} img/s   load {load_average()}", flush=True)
        results[precision] = r
    if args.with_platform:
        torch.set_num_threads(args.threads)
        for precision in args.precisions:
            results[precision]["a"] = run_platform(
                spec, precision, args.steps, args.threads, args.platform_launcher, args.compile
            )
            print(
                f"  {precision} (a) platform    {results[precision]['a']:8.1f} img/s   load {load_average()}",
                flush=True,
            )
    print()
    for precision, r in results.items():
        fmt = lambda v: v if v is not None else "-"  # noqa: E731
        rows.append(
            [
                precision,
                fmt(r["a"]),
                fmt(r["b"]),
                fmt(r["c"]),
                fmt(r["d"]),
                ratio(r["a"], r["c"]),
                ratio(r["a"], r["d"]),
                ratio(r["b"], r["c"]),
                ratio(r["b"], r["d"]),
            ]
        )
    print_table(
        ["precision", "(a) platform", "(b) elm", "(c) bare", "(d) torchvision", "a/c", "a/d", "b/c", "b/d"], rows
    )
    if "bf16" in results and "fp32" in results:
        # Each as it is used: the platform's default is bf16 + channels_last; LDAM-DRW-style repos train in fp32.
        a, b, d = results["bf16"]["a"], results["bf16"]["b"], results["fp32"]["d"]
        print(
            f"as used by default (platform/elm bf16 + channels_last vs the torchvision pipeline in fp32): "
            f"a/d = {ratio(a, d)}, b/d = {ratio(b, d)}"
        )
    print_load_at_end()
    return 0


if __name__ == "__main__":
    sys.exit(main())
