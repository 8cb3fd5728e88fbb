"""Reading FileSplit images with PIL and torchvision transforms inside a torch DataLoader.

Train: RandomResizedCrop + horizontal flip (the ImageNet recipe of He et al. 2016); eval: resize the short side
to ``image_size * eval_resize_ratio`` and centre-crop. Each sample's transform randomness is seeded from
(augment_seed, position in the epoch), so batches do not depend on ``num_workers`` or on global RNG state.
"""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from elm.data.base import FileSplit
from elm.data.file_options import FileLoaderOptions


def file_transform(train: bool, image_size: int, eval_resize_ratio: float) -> Callable[[Image.Image], Tensor]:
    """PIL RGB image -> (3, image_size, image_size) uint8 tensor."""
    if train:
        steps = [transforms.RandomResizedCrop(image_size), transforms.RandomHorizontalFlip()]
    else:
        steps = [transforms.Resize(round(image_size * eval_resize_ratio)), transforms.CenterCrop(image_size)]
    return transforms.Compose([*steps, transforms.PILToTensor()])


class _EpochImages(Dataset):
    """The images of one rank's epoch, in order; item ``i`` is the i-th image this rank visits."""

    def __init__(self, split: FileSplit, indices: list[int], transform: Callable, view_seeds: list[int]) -> None:
        self.split = split
        self.indices = indices
        self.transform = transform
        self.view_seeds = view_seeds

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> tuple[Tensor, Tensor]:
        """(V, 3, S, S) uint8: one independently augmented copy per view seed; and the label."""
        index = self.indices[position]
        with Image.open(self.split.root / self.split.paths[index]) as raw:
            image = raw.convert("RGB")
        copies = []
        for seed in self.view_seeds:
            sample_seed = int(np.random.SeedSequence([seed, position]).generate_state(1)[0])
            with torch.random.fork_rng(devices=[]):  # torchvision draws from the global torch RNG
                torch.manual_seed(sample_seed)
                copies.append(self.transform(image))
        return torch.stack(copies), self.split.labels[index]


def file_batches(
    split: FileSplit,
    *,
    indices: list[int],
    batch_size: int,
    train: bool,
    image_size: int,
    augment_seed: int,
    drop_last: bool,
    options: FileLoaderOptions,
    eval_resize_ratio: float,
    view_seeds: list[int] | None = None,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield (V*B, 3, S, S) uint8 images (view-major; V = len(view_seeds), default one view seeded by
    ``augment_seed``) and (B,) int64 labels for ``indices`` in order, decoded by ``options.workers`` workers
    (pinned if ``options.pin_memory``)."""
    seeds = view_seeds or [augment_seed]
    dataset = _EpochImages(split, indices, file_transform(train, image_size, eval_resize_ratio), seeds)
    workers = options.workers
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, drop_last=drop_last, num_workers=workers,
                        pin_memory=options.pin_memory, prefetch_factor=options.prefetch_factor if workers else None)
    for images, labels in loader:  # images (B, V, 3, S, S)
        yield images.transpose(0, 1).reshape(-1, *images.shape[2:]), labels
