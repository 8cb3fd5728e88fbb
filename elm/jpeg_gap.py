"""The JPEG gap: one trained model on the original CIFAR-10 test pixels and on their JPEG re-encode.

This project's CIFAR-10 copy is a JPEG (q75) re-encode of the original images; papers used the lossless files.
``../shared/data/cifar10/cifar10_lossless_subset.npz`` holds the original pixels of the first 1,000 test images
(``x_test`` (1000, 32, 32, 3) uint8, ``y_test``) and where each sits in the staged ``test_batch``
(``test_row_in_cifar10_test_npz``). Evaluating a model on both versions of the same images measures how much of a
gap to a paper's number the re-encode explains. Example::

    python -m elm.jpeg_gap --run ce=experiments/cifar10_paper/train/cifar10_paper-trial=0001 \\
        --run la=experiments/cifar10_paper/train/cifar10_paper-trial=0002 --data-root ../shared/data \\
        --out docs/results/cifar10_paper/jpeg_gap.csv
"""

from __future__ import annotations

import argparse
import math
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from elm.checkpoint import latest_checkpoint, load_checkpoint
from elm.config import ConfigError, from_dict, with_overrides
from elm.data import DatasetCorruptError
from elm.data.base import LongTailData, TensorSplit
from elm.data.loaders import iterate_batches
from elm.metrics.classification import classification_metrics, posthoc_sweep
from elm.train import build_experiment, predict

LOSSLESS_FILE = "cifar10/cifar10_lossless_subset.npz"  # under the data root
CIFAR10 = "cifar10_lt"  # the dataset whose test split the lossless file indexes
POSTHOC_TAU = 1.0  # the LA paper's post-hoc headline (Table 3, "post-hoc correction, tau = 1")
EVAL_BATCH = 500


@dataclass(frozen=True)
class ImagePairs:
    """The same test images twice: ``lossless`` and ``jpeg`` (N, 3, 32, 32) uint8, with ``labels`` (N,) int64."""

    lossless: Tensor
    jpeg: Tensor
    labels: Tensor


def load_pairs(npz_path: Path, test: TensorSplit) -> ImagePairs:
    """The lossless test images of ``npz_path`` and their counterparts in the staged (JPEG) test split.

    Args:
        npz_path: ``cifar10_lossless_subset.npz`` (keys ``x_test`` (N, 32, 32, 3) uint8, ``y_test`` (N,),
            ``test_row_in_cifar10_test_npz`` (N,) rows of the staged ``test_batch``).
        test: the full staged test split, in ``test_batch`` order (images (M, 3, 32, 32) uint8).
    Raises:
        ConfigError: the file is missing, unreadable, empty or lacks a key, or a row lies outside the test split
            or its label differs between the two copies.
    """
    if not npz_path.is_file():
        raise ConfigError(f"lossless CIFAR-10 subset not found at {npz_path}")
    try:
        with np.load(npz_path) as z:
            arrays = {k: z[k] for k in z.files if k in ("x_test", "y_test", "test_row_in_cifar10_test_npz")}
    except (OSError, ValueError, zipfile.BadZipFile) as e:  # not an .npz, or one holding pickled objects
        raise ConfigError(f"{npz_path} is not a readable .npz of arrays ({e})") from None
    missing = {"x_test", "y_test", "test_row_in_cifar10_test_npz"} - set(arrays)
    if missing:
        raise ConfigError(f"{npz_path} lacks {sorted(missing)}")
    x, y, rows = arrays["x_test"], arrays["y_test"], arrays["test_row_in_cifar10_test_npz"]
    if len(rows) == 0:
        raise ConfigError(f"{npz_path} holds no images")
    rows_t = torch.from_numpy(rows.astype(np.int64))
    labels = torch.from_numpy(y.astype(np.int64))
    if not 0 <= int(rows_t.min()) <= int(rows_t.max()) < len(test) or not torch.equal(test.labels[rows_t], labels):
        raise ConfigError(
            f"{npz_path}: its test rows do not match the staged test_batch's labels "
            f"(is data.root a CIFAR-10 copy with the original test order by class?)"
        )
    lossless = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    return ImagePairs(lossless=lossless, jpeg=test.images[rows_t].contiguous(), labels=labels)


def _logits(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    data: LongTailData,
    bf16: bool | str,
    channels_last: bool,
    fp16: bool = False,
) -> Tensor:
    batches = iterate_batches(
        TensorSplit(images=images, labels=labels),
        batch_size=EVAL_BATCH,
        train=False,
        mean=data.mean,
        std=data.std,
        image_size=data.image_size,
        seed=0,
        epoch=0,
    )
    logits, _, _, _ = predict(model, batches, torch.device("cpu"), bf16=bf16, fp16=fp16, channels_last=channels_last)
    return logits


def gap_row(lossless_logits: Tensor, jpeg_logits: Tensor, labels: Tensor, class_counts: Tensor) -> dict[str, float]:
    """Metrics of one model on both versions, in %, and the paired counts behind their difference.

    Args:
        lossless_logits, jpeg_logits: (N, C) logits of the same N images, original and re-encoded.
        labels: (N,) labels.
        class_counts: (C,) the model's training counts (Many/Medium/Few and the post-hoc prior).
    Returns:
        ``<metric>_lossless``, ``<metric>_jpeg`` and ``<metric>_gap`` (lossless - JPEG, points) for balanced
        accuracy, Many, Medium and post-hoc tau=1 balanced accuracy; ``agree`` (% of images with the same
        prediction); ``only_lossless_right`` / ``only_jpeg_right`` (image counts, the discordant pairs of a
        McNemar test); ``mcnemar_z`` ((b - c) / sqrt(b + c), 0 when b + c = 0).
    """
    out: dict[str, float] = {"images": len(labels)}
    for name, logits in (("lossless", lossless_logits), ("jpeg", jpeg_logits)):
        m = classification_metrics(logits, labels, class_counts)
        post = posthoc_sweep(logits, labels, class_counts, [POSTHOC_TAU])[POSTHOC_TAU]
        values = {
            "balanced_acc": m["balanced_acc"],
            "acc_many": m.get("acc_many", math.nan),
            "acc_medium": m.get("acc_medium", math.nan),
            "posthoc_tau1_balanced_acc": post["balanced_acc"],
        }
        out.update({f"{k}_{name}": 100.0 * v for k, v in values.items()})
    for k in ("balanced_acc", "acc_many", "acc_medium", "posthoc_tau1_balanced_acc"):
        out[f"{k}_gap"] = out[f"{k}_lossless"] - out[f"{k}_jpeg"]
    pred_l, pred_j = lossless_logits.argmax(1), jpeg_logits.argmax(1)
    right_l, right_j = pred_l == labels, pred_j == labels
    b, c = int((right_l & ~right_j).sum()), int((~right_l & right_j).sum())
    out.update(
        {
            "agree": 100.0 * float((pred_l == pred_j).float().mean()),
            "only_lossless_right": b,
            "only_jpeg_right": c,
            "mcnemar_z": (b - c) / math.sqrt(b + c) if b + c else 0.0,
        }
    )
    return out


def measure(run: Path, data_root: str, npz_path: Path) -> dict[str, float]:
    """Evaluate the newest checkpoint of ``run`` (a run folder with ``checkpoints/`` or one checkpoint folder) on
    the lossless subset and its JPEG versions, with the numerics (bf16/fp16, channels_last) the run trained with.

    Raises:
        ConfigError: no checkpoint under ``run``, a run not trained on CIFAR-10, or the lossless file does not
            match the data.
        FileNotFoundError, DatasetCorruptError: ``data_root`` lacks CIFAR-10 or holds a broken copy.
    """
    found = latest_checkpoint(run / "checkpoints") if (run / "checkpoints").is_dir() else run
    if found is None or not (found / "state.pt").is_file():
        raise ConfigError(f"no checkpoint under {run}")
    state = load_checkpoint(found)
    if not isinstance(state.get("config"), dict):
        raise ConfigError(f"{found} holds no config: not a checkpoint written by elm.train")
    data_name = state["config"].get("data", {}).get("name")
    if data_name != CIFAR10:  # the lossless file holds CIFAR-10 test images; data.root/download are CIFAR keys
        raise ConfigError(f"{run}: the JPEG gap needs a CIFAR-10 run (data.name {CIFAR10}), not {data_name!r}")
    cfg = with_overrides(from_dict(state["config"]), {"data.root": data_root, "data.download": False})
    exp = build_experiment(cfg)
    exp.model.load_state_dict(state["model"])
    if not isinstance(exp.data.test, TensorSplit):
        raise ConfigError(f"{run}: the JPEG gap needs an in-memory CIFAR test split, not {cfg.data.name}")
    pairs = load_pairs(npz_path, exp.data.test)

    def logits(images: Tensor) -> Tensor:
        return _logits(
            exp.model, images, pairs.labels, exp.data, cfg.train.bf16, cfg.train.channels_last, cfg.train.fp16
        )

    row = gap_row(logits(pairs.lossless), logits(pairs.jpeg), pairs.labels, exp.data.class_counts)
    return {"epoch": int(state["epoch"]), **row}


def markdown_table(table: pd.DataFrame) -> str:
    """``table`` as a GitHub markdown table, numbers to 2 decimals."""

    def cell(v: object) -> str:
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _named_run(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"--run needs NAME=PATH, got {text!r}")
    return name, Path(path)


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI. Returns 0; 2 for bad arguments, runs or lossless files; 1 for missing or corrupt CIFAR-10 data.
    Each error is one ``error: ...`` line on stderr."""
    p = argparse.ArgumentParser(prog="python -m elm.jpeg_gap", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--run",
        type=_named_run,
        action="append",
        required=True,
        help="NAME=RUN_FOLDER (or a checkpoint folder); repeat for several models",
    )
    p.add_argument("--data-root", required=True, help="folder holding cifar-10-batches-py/ (the JPEG copy)")
    p.add_argument(
        "--lossless", type=Path, default=None, help=f"the lossless subset (default: <data-root>/{LOSSLESS_FILE})"
    )
    p.add_argument("--out", type=Path, default=None, help="write the table here as CSV (and .md beside it)")
    args = p.parse_args(argv)
    npz = args.lossless or Path(args.data_root) / LOSSLESS_FILE
    try:
        table = pd.DataFrame([{"model": name, **measure(path, args.data_root, npz)} for name, path in args.run])
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (FileNotFoundError, DatasetCorruptError) as e:  # the data root lacks CIFAR-10 or holds a broken copy
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False, float_format="%.4f")
        args.out.with_suffix(".md").write_text(markdown_table(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
