"""CIFAR-10-LT and CIFAR-100-LT (Cao et al. 2019, https://arxiv.org/abs/1906.07413) as registered datasets.

The training set is LDAM-DRW's seeded long-tailed subsample of the official training set (see
``elm.data.longtail``); the test set is the full, balanced official test set. Example:
``DATASETS.build("cifar10_lt", {"root": "data", "imbalance_ratio": 100})`` -> 12406 training images with
counts [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]. ``cifar10_lt`` and ``cifar100_lt`` are aliases of
``cifar_lt`` with ``source`` fixed.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import torch

from elm.data.base import LongTailData, TensorSplit
from elm.data.cifar import load_cifar
from elm.data.longtail import first_per_class, longtail_train_val
from elm.registry import DATASETS, Choice, Folder, Interval, Size

CIFAR_IMAGE_SIZE = 32
# Per-channel statistics used by LDAM-DRW and most CIFAR-LT code (0..1 pixel scale).
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
CIFAR_STATS = {"cifar10": (CIFAR10_MEAN, CIFAR10_STD), "cifar100": (CIFAR100_MEAN, CIFAR100_STD)}


@DATASETS.register("cifar_lt")
def cifar_lt(
    *,
    source: Annotated[str, Choice(*CIFAR_STATS)],
    root: Annotated[str, Folder()] = "data",
    imbalance_ratio: Annotated[float, Interval(ge=1.0), Size("imbalance_ratio")] = 100.0,
    profile: Annotated[str, Choice("exp", "step")] = "exp",
    subsample_seed: int = 0,
    val_per_class: Annotated[int, Interval(ge=0), Size("val_per_class")] = 0,
    download: bool = False,
    max_train_per_class: Annotated[int, Interval(ge=1), Size("max_train_per_class")] | None = None,
    max_test_per_class: Annotated[int, Interval(ge=1), Size("max_test_per_class")] | None = None,
) -> LongTailData:
    """A long-tailed CIFAR: the seeded subsample of the official training set, the full balanced test set.

    Args:
        source: ``cifar10`` or ``cifar100`` (fine labels); fixed by the aliases ``cifar10_lt`` / ``cifar100_lt``.
        root: folder containing ``cifar-10-batches-py/`` (or ``cifar-100-python/``).
        imbalance_ratio: n_max / n_min (LDAM-DRW's ``1 / imb_factor``).
        profile: ``exp`` or ``step`` class-count profile.
        subsample_seed: LDAM-DRW's ``rand_number``; 0 reproduces the paper's image selection.
        val_per_class: balanced validation images per class, held out of the training pool before subsampling.
        download: fetch the official tarball if files are missing (needs internet).
        max_train_per_class: smoke-run cap, keeping the first k of each class in selection order.
        max_test_per_class: smoke-run cap, keeping the first k test images of each class in file order.
    Returns:
        uint8 (N, 3, 32, 32) TensorSplits with the dataset's per-channel mean and std (0..1 pixel scale).
    Raises:
        DatasetNotFoundError, DatasetCorruptError: files missing under ``root`` (and ``download`` off) or unreadable.
        ConfigError: ``imbalance_ratio`` leaves a class without a training image (``elm.data.longtail``).
    """
    arrays = load_cifar(source, root, download=download)
    labels = arrays.train_labels.numpy()
    train_idx, val_idx, _ = longtail_train_val(labels, imbalance_ratio, profile, subsample_seed, val_per_class)
    train_idx = train_idx[first_per_class(labels[train_idx], max_train_per_class)]
    test_idx = first_per_class(arrays.test_labels.numpy(), max_test_per_class)

    def take(images: torch.Tensor, y: torch.Tensor, idx: np.ndarray) -> TensorSplit:
        index = torch.from_numpy(idx)
        return TensorSplit(images=images[index].contiguous(), labels=y[index].contiguous())

    num_classes = len(arrays.class_names)
    train = take(arrays.train_images, arrays.train_labels, train_idx)
    mean, std = CIFAR_STATS[source]
    return LongTailData(
        train=train,
        val=take(arrays.train_images, arrays.train_labels, val_idx) if val_per_class > 0 else None,
        test=take(arrays.test_images, arrays.test_labels, test_idx),
        num_classes=num_classes,
        class_counts=torch.bincount(train.labels, minlength=num_classes).to(torch.int64),
        mean=mean,
        std=std,
        image_size=CIFAR_IMAGE_SIZE,
    )


DATASETS.alias("cifar10_lt", "cifar_lt", source="cifar10")  # CIFAR-10-LT
DATASETS.alias("cifar100_lt", "cifar_lt", source="cifar100")  # CIFAR-100-LT (fine labels)
