"""Decode + augment throughput of file-backed splits (ImageNet-LT, iNaturalist): images/s, and per worker.

    python -m benchmarks.file_decode [--images 256] [--workers 0 1 2] [--size 224] [--epochs 2]

Writes ``--images`` JPEGs of ImageNet's typical 500 x 375 (smooth colour fields plus noise, quality 90) to a
temporary folder, then times ``elm.data.iterate_batches`` over them as training does: PIL decode,
RandomResizedCrop(``--size``) + flip, uint8 tensors, normalisation, batch 64, persistent workers, the first epoch
untimed (worker start-up). ``workers=0`` decodes in the calling process. Needs torch, torchvision and PIL only.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import benchmark_parser, print_header, print_table
from elm.data.base import FileSplit
from elm.data.file_options import FileLoaderOptions
from elm.data.loaders import iterate_batches

WIDTH, HEIGHT = 500, 375  # ImageNet's most common image size
BATCH = 64
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def write_jpegs(folder: Path, n: int, seed: int = 0) -> FileSplit:
    """``n`` JPEGs of WIDTH x HEIGHT: a smooth random colour field plus pixel noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        field = np.asarray(Image.fromarray(coarse).resize((WIDTH, HEIGHT), Image.BICUBIC), dtype=np.int16)
        pixels = np.clip(field + rng.integers(-12, 13, field.shape), 0, 255).astype(np.uint8)
        rel = f"{i:05d}.jpg"
        Image.fromarray(pixels).save(folder / rel, quality=90)
        paths.append(rel)
    return FileSplit(root=folder, paths=tuple(paths), labels=torch.zeros(n, dtype=torch.int64))


def images_per_sec(split: FileSplit, workers: int, size: int, epochs: int) -> float:
    """Training batches of ``split`` per second x batch size, over ``epochs`` epochs after an untimed one."""
    options = FileLoaderOptions(workers=workers, persistent_workers=workers > 0)
    kw = dict(batch_size=BATCH, train=True, mean=MEAN, std=STD, image_size=size, seed=0, loader=options)
    for _ in iterate_batches(split, epoch=0, **kw):
        pass
    t0, n = time.perf_counter(), 0
    for epoch in range(1, epochs + 1):
        for x, _ in iterate_batches(split, epoch=epoch, **kw):
            n += x.shape[0]
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = benchmark_parser("file_decode", __doc__)
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--epochs", type=int, default=2, help="timed epochs after an untimed one")
    args = p.parse_args(argv)
    print_header(f"decode + augment, {args.images} JPEGs {WIDTH}x{HEIGHT} -> {args.size}, batch {BATCH}", 1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="file-decode-") as tmp:
        split = write_jpegs(Path(tmp), args.images)
        for w in args.workers:
            rate = images_per_sec(split, w, args.size, args.epochs)
            rows.append([w, rate, rate / max(w, 1)])
            print(f"  workers={w}: {rate:.1f} images/s", flush=True)
    print()
    print_table(["workers", "images/s", "images/s per worker (workers=0: the calling process)"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
