"""A tiny long-tailed image dataset generated in memory, for tests and smoke runs (no files, no network).

Class c is a disc of colour hue ``c / C`` at a jittered position and radius on a dark noisy background, so a
small CNN separates the classes within a few epochs while the long-tailed train counts still bite.
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor

from elm.data.base import LongTailData, TensorSplit
from elm.data.longtail import check_every_class_kept, longtail_counts
from elm.registry import DATASETS, Choice, Interval, Size

CHANNELS = 3


def hue_palette(num_classes: int) -> Tensor:
    """(C, 3) fully saturated RGB colours in [0, 1] at evenly spaced hues (HSV with S = V = 1)."""
    hue = torch.arange(num_classes, dtype=torch.float32) / num_classes
    k = (torch.tensor([5.0, 3.0, 1.0]) + hue[:, None] * 6.0) % 6.0  # standard HSV -> RGB
    return 1.0 - torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)


def blob_images(
    labels: Tensor,
    num_classes: int,
    image_size: int,
    generator: torch.Generator,
    *,
    noise_std: float = 0.1,
    background: float = 0.2,
    radius_range: tuple[float, float] = (0.25, 0.45),
    centre_jitter: float = 0.15,
) -> Tensor:
    """Render one coloured disc per label.

    Args:
        labels: (N,) int64 class indices in [0, C).
        num_classes: C, which fixes the palette.
        image_size: side S of the square images.
        generator: source of all randomness.
        noise_std: std of the per-pixel Gaussian noise (0..1 scale).
        background: grey level of the background.
        radius_range: disc radius as a fraction of S, drawn uniformly.
        centre_jitter: max offset of the disc centre from the image centre, as a fraction of S.
    Returns:
        (N, 3, S, S) uint8.
    """
    n = len(labels)
    colours = hue_palette(num_classes)[labels]  # (N, 3)
    lo, hi = radius_range
    radius = (lo + (hi - lo) * torch.rand(n, generator=generator)) * image_size  # (N,)
    centre = (0.5 + centre_jitter * (2 * torch.rand(n, 2, generator=generator) - 1)) * image_size  # (N, 2)
    grid = torch.arange(image_size, dtype=torch.float32) + 0.5
    dy = grid[None, :, None] - centre[:, 0, None, None]  # (N, S, 1)
    dx = grid[None, None, :] - centre[:, 1, None, None]  # (N, 1, S)
    inside = (dy**2 + dx**2 <= radius[:, None, None] ** 2).float()  # (N, S, S)
    base = background + inside[:, None] * (colours[:, :, None, None] - background)  # (N, 3, S, S)
    noisy = base + noise_std * torch.randn(n, CHANNELS, image_size, image_size, generator=generator)
    return (noisy.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


def _split(counts: list[int], image_size: int, generator: torch.Generator) -> TensorSplit:
    labels = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts, dtype=torch.int64))
    return TensorSplit(images=blob_images(labels, len(counts), image_size, generator), labels=labels)


@DATASETS.register("synthetic_lt")
def synthetic_lt(
    *,
    num_classes: Annotated[int, Interval(ge=2)] = 5,
    image_size: Annotated[int, Interval(ge=4), Size("image_size")] = 8,
    n_max: Annotated[int, Interval(ge=1)] = 64,
    imbalance_ratio: Annotated[float, Interval(ge=1.0)] = 10.0,
    profile: Annotated[str, Choice("exp", "step")] = "exp",
    n_test_per_class: Annotated[int, Interval(ge=1)] = 16,
    val_per_class: Annotated[int, Interval(ge=0), Size("val_per_class")] = 0,
    seed: int = 0,
) -> LongTailData:
    """Coloured-disc long-tailed dataset.

    Args:
        num_classes: C.
        image_size: side of the square images.
        n_max: training images of class 0.
        imbalance_ratio: n_max / n_min.
        profile: ``exp`` or ``step`` class-count profile.
        n_test_per_class: balanced test images per class.
        val_per_class: balanced validation images per class (0: no validation split).
        seed: generator seed; the same seed gives the same tensors.
    Raises:
        ConfigError: naming ``data.imbalance_ratio`` if a class would get no training image.
    """
    counts = longtail_counts(n_max, num_classes, imbalance_ratio, profile)
    check_every_class_kept(counts, ratio=imbalance_ratio, profile=profile, n_max=n_max)
    generator = torch.Generator().manual_seed(seed)
    train = _split(counts, image_size, generator)
    test = _split([n_test_per_class] * num_classes, image_size, generator)
    val = _split([val_per_class] * num_classes, image_size, generator) if val_per_class > 0 else None
    pixels = train.images.float() / 255.0
    return LongTailData(
        train=train,
        val=val,
        test=test,
        num_classes=num_classes,
        class_counts=torch.tensor(counts, dtype=torch.int64),
        mean=tuple(pixels.mean(dim=(0, 2, 3)).tolist()),
        std=tuple(pixels.std(dim=(0, 2, 3)).tolist()),
        image_size=image_size,
    )
