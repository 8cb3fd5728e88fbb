"""What every dataset factory returns: splits plus the data-derived values the rest of the library needs."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor


@dataclass(frozen=True)
class TensorSplit:
    """A split held in memory as uint8 images (small-image fast path).

    Attributes:
        images: (N, C, H, W) uint8.
        labels: (N,) int64.
    """

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices: Tensor) -> TensorSplit:
        """The examples at ``indices`` ((K,) int64), in that order."""
        return TensorSplit(images=self.images[indices], labels=self.labels[indices])

    def to(self, device: torch.device) -> TensorSplit:
        """The split with its images and labels on ``device`` (itself if already there)."""
        if self.images.device == device and self.labels.device == device:
            return self
        return TensorSplit(images=self.images.to(device), labels=self.labels.to(device))


@dataclass(frozen=True)
class FileSplit:
    """A split of image files read lazily (ImageNet-LT, iNaturalist).

    Attributes:
        root: folder the relative paths are resolved against.
        paths: relative image paths, one per example.
        labels: (N,) int64.
    """

    root: Path
    paths: tuple[str, ...]
    labels: Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices: Tensor) -> FileSplit:
        """The examples at ``indices`` ((K,) int64), in that order."""
        idx = indices.tolist()
        return FileSplit(root=self.root, paths=tuple(self.paths[i] for i in idx), labels=self.labels[indices])


Split = TensorSplit | FileSplit


@dataclass(frozen=True)
class LongTailData:
    """A long-tailed training set with held-out evaluation splits.

    Attributes:
        train: the (imbalanced) training split.
        val: a balanced validation split held out of the training pool, or None.
        test: the (balanced) test split.
        num_classes: C.
        class_counts: (C,) int64 training images per class; the prior pi is ``class_counts / class_counts.sum()``.
        mean, std: per-channel normalisation constants (0..1 pixel scale).
        image_size: side of the square network input.
    """

    train: Split
    val: Split | None
    test: Split
    num_classes: int
    class_counts: Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: int


def splits_on(data: LongTailData, device: torch.device) -> LongTailData:
    """``data`` with every in-memory split (``TensorSplit``) moved to ``device`` once; file splits stay as they are
    (their DataLoader decodes on the CPU). ``class_counts`` stays on the CPU."""

    def move(split: Split) -> Split:
        return split.to(device) if isinstance(split, TensorSplit) else split

    val = move(data.val) if data.val is not None else None
    return replace(data, train=move(data.train), val=val, test=move(data.test))
