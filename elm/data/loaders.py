"""The batch iterator the trainer uses: deterministic shuffling, DDP sharding, augmentation, normalisation.

Every random choice is a pure function of (seed, epoch[, rank[, view]]): the order of an epoch, the shard a rank
sees, and the augmentation each view gets, so a restored trial replays the same batches. With ``views`` > 1 every
image appears in ``views`` independently augmented copies (contrastive terms need a positive for every anchor);
view 0 is drawn exactly as a single view is, so ``views=1`` batches are unchanged. In-memory ``TensorSplit``s
(CIFAR) are augmented on whole uint8 batches (``elm.data.augment``) on the device that holds them: moved to a GPU
once (``TensorSplit.to``), a split is indexed, cropped, flipped and normalised there, with the random draws still
made on the CPU, so the batches are the same on every device (as in airbench, https://github.com/KellerJordan/airbench).
``FileSplit``s (ImageNet-LT, iNaturalist) go through a torch DataLoader with PIL + torchvision transforms
(imported lazily, only for file splits).
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence, Sized

import numpy as np
import torch
from torch import Tensor

from elm.data.augment import random_crop_flip
from elm.data.base import FileSplit, TensorSplit
from elm.data.file_options import FileLoaderOptions

CIFAR_CROP_PAD = 4
# ImageNet convention: resize the short side to image_size * 256 / 224, then centre-crop image_size.
EVAL_RESIZE_RATIO = 256 / 224
# Distinct first entropy words keep the shuffle and augmentation streams independent for equal (seed, epoch).
_SHUFFLE_STREAM, _AUGMENT_STREAM = 0, 1
_SEED_MASK = (1 << 63) - 1


def derive_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed that is a pure function of non-negative integers ``parts``."""
    if any(p < 0 for p in parts):
        raise ValueError(f"seed parts {parts} must be >= 0")
    lo, hi = np.random.SeedSequence(list(parts)).generate_state(2, np.uint32)
    return ((int(hi) << 32) | int(lo)) & _SEED_MASK


def epoch_order(n: int, *, train: bool, seed: int, epoch: int) -> Tensor:
    """(n,) int64 visiting order: a permutation seeded by (seed, epoch) for training, ``arange`` otherwise."""
    if not train:
        return torch.arange(n)
    generator = torch.Generator().manual_seed(derive_seed(_SHUFFLE_STREAM, seed, epoch))
    return torch.randperm(n, generator=generator)


def shard(order: Tensor, rank: int, world_size: int) -> Tensor:
    """Every ``world_size``-th element of ``order`` starting at ``rank``, after padding ``order`` by wrapping
    to a multiple of ``world_size`` so every rank gets the same count (as ``DistributedSampler``).

    Args:
        order: (N,) indices, N >= 1.
    Returns:
        (ceil(N / world_size),) indices.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank={rank} must lie in [0, world_size={world_size})")
    n = len(order)
    total = math.ceil(n / world_size) * world_size
    if total > n:
        order = order.repeat(math.ceil(total / n))[:total]
    return order[rank:total:world_size]


def num_batches(split: Sized, batch_size: int, world_size: int = 1, drop_last: bool = False) -> int:
    """Batches one rank yields per epoch from ``iterate_batches`` with the same arguments."""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    per_rank = math.ceil(len(split) / world_size)
    return per_rank // batch_size if drop_last else math.ceil(per_rank / batch_size)


def channel_constants(
    mean: Sequence[float], std: Sequence[float], device: torch.device | None = None
) -> tuple[Tensor, Tensor]:
    """``mean`` and ``std`` as (1, C, 1, 1) float32 tensors on ``device`` (CPU by default)."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return m.to(device or m.device), s.to(device or s.device)


def normalise(images: Tensor, mean: Sequence[float] | Tensor, std: Sequence[float] | Tensor) -> Tensor:
    """uint8 (B, C, H, W) -> float32 ``(x / 255 - mean) / std`` per channel, on ``images``' device.

    ``mean``/``std``: per-channel sequences, or (1, C, 1, 1) tensors from ``channel_constants`` on that device.
    """
    if not isinstance(mean, Tensor) or not isinstance(std, Tensor):
        mean, std = channel_constants(mean, std, images.device)  # type: ignore[arg-type]
    return (images.float() / 255.0 - mean) / std


def view_seed(augment_seed: int, view: int) -> int:
    """The augmentation seed of view ``view``: view 0 keeps the single-view seed, the others get their own stream."""
    return augment_seed if view == 0 else derive_seed(augment_seed, view)


def iterate_batches(
    split: TensorSplit | FileSplit,
    *,
    batch_size: int,
    train: bool,
    mean: Sequence[float],
    std: Sequence[float],
    image_size: int,
    seed: int,
    epoch: int,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool = False,
    num_workers: int = 0,
    crop_pad: int = CIFAR_CROP_PAD,
    eval_resize_ratio: float = EVAL_RESIZE_RATIO,
    views: int = 1,
    loader: FileLoaderOptions | None = None,
    device: torch.device | None = None,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield one rank's batches of one epoch.

    Args:
        split: the split to iterate.
        batch_size: images per batch on this rank.
        train: shuffle and augment (train) or keep file order, no augmentation (eval).
        mean, std: per-channel normalisation constants (0..1 pixel scale).
        image_size: network input side; TensorSplits must already have it.
        seed, epoch: the shuffle depends only on these; augmentation also on ``rank``.
        rank, world_size: DDP shard (every world_size-th element from rank, padded by wrapping, so with
            world_size > 1 a few examples appear twice per epoch; evaluate exact metrics with world_size=1).
        drop_last: drop this rank's last incomplete batch.
        num_workers: DataLoader workers (FileSplit only; ``loader`` replaces it when given).
        crop_pad: zero padding of the random crop (TensorSplit, train).
        eval_resize_ratio: resize-then-centre-crop ratio (FileSplit, eval).
        views: augmented copies of every image (train only); view v of the batch is rows v*B .. (v+1)*B - 1.
        loader: DataLoader settings for a FileSplit (workers, pinned memory, prefetch); None: ``num_workers``
            workers, nothing pinned.
        device: where a FileSplit's uint8 batches are copied (non-blocking) and normalised; None: the CPU.
            TensorSplits are read on the device that holds them (``TensorSplit.to``).
    Yields:
        images: (V*B, C, image_size, image_size) float32, normalised, view-major (V = ``views`` when training,
            else 1); on the device of a TensorSplit's tensors (bit-identical on every device), on the CPU
            or on ``device`` for a FileSplit.
        labels: (V*B,) int64, the batch's labels repeated for every view, on the same device.
    Raises:
        ValueError: empty split, ``views`` < 1, or a TensorSplit whose images are not ``image_size``.
    """
    if len(split) == 0:
        raise ValueError("cannot iterate an empty split")
    if views < 1:
        raise ValueError(f"views={views} must be >= 1")
    views = views if train else 1
    indices = shard(epoch_order(len(split), train=train, seed=seed, epoch=epoch), rank, world_size)
    count = num_batches(split, batch_size, world_size, drop_last)
    augment_seed = derive_seed(_AUGMENT_STREAM, seed, epoch, rank)
    if isinstance(split, TensorSplit):
        if split.images.shape[-1] != image_size or split.images.shape[-2] != image_size:
            raise ValueError(f"image_size={image_size} but the split holds {tuple(split.images.shape[-2:])} images")
        held_on = split.images.device
        indices = indices.to(held_on, non_blocking=True)  # one copy per epoch; a no-op on the CPU
        m, s = channel_constants(mean, std, held_on)
        generators = [torch.Generator().manual_seed(view_seed(augment_seed, v)) for v in range(views)]  # CPU
        for b in range(count):
            idx = indices[b * batch_size : (b + 1) * batch_size]
            images = split.images[idx]
            if train:
                images = torch.cat([random_crop_flip(images, crop_pad, g) for g in generators])
            yield normalise(images, m, s), split.labels[idx].repeat(views)
        return
    from elm.data.file_loader import file_batches  # torchvision + PIL only when reading files

    m, s = channel_constants(mean, std, device)  # once per epoch: a copy to a GPU would wait for it
    for images, labels in file_batches(
        split,
        indices=indices.tolist(),
        batch_size=batch_size,
        train=train,
        image_size=image_size,
        augment_seed=augment_seed,
        drop_last=drop_last,
        options=loader or FileLoaderOptions(workers=num_workers),
        eval_resize_ratio=eval_resize_ratio,
        view_seeds=[view_seed(augment_seed, v) for v in range(views)],
    ):
        if device is not None:
            images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        yield normalise(images, m, s), labels.repeat(views)
