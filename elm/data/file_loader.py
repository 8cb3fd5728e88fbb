"""Reading FileSplit images with PIL and torchvision transforms inside a torch DataLoader.

Train: RandomResizedCrop + horizontal flip (the ImageNet recipe of He et al. 2016); eval: resize the short side
to ``image_size * eval_resize_ratio`` and centre-crop. Each sample's transform randomness is seeded from
(view seed, position in the epoch), so batches do not depend on ``num_workers`` or on global RNG state.

The dataset is addressed by keys (index, position, view seeds) that a per-epoch batch sampler hands out, so one
DataLoader can serve every epoch: with ``persistent_workers`` its worker processes (and their open files) live as
long as the split, instead of being started again each epoch.
"""

from __future__ import annotations

import weakref
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from elm.data.base import FileSplit
from elm.data.file_options import FileLoaderOptions

Key = tuple[int, int, tuple[int, ...]]  # (index into the split, position in the epoch, view seeds)


def file_transform(train: bool, image_size: int, eval_resize_ratio: float) -> Callable[[Image.Image], Tensor]:
    """PIL RGB image -> (3, image_size, image_size) uint8 tensor."""
    from torchvision import transforms

    if train:
        steps = [transforms.RandomResizedCrop(image_size), transforms.RandomHorizontalFlip()]
    else:
        steps = [transforms.Resize(round(image_size * eval_resize_ratio)), transforms.CenterCrop(image_size)]
    return transforms.Compose([*steps, transforms.PILToTensor()])


class KeyedImages(Dataset):
    """Item ``(index, position, seeds)``: image ``index`` of ``split``, one augmented copy per view seed.

    Holds the split's paths and labels, not the split itself, so a cached loader does not keep its split alive.
    """

    def __init__(self, split: FileSplit, transform: Callable[[Image.Image], Tensor]) -> None:
        self.root, self.paths, self.labels = split.root, split.paths, split.labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: Key) -> tuple[Tensor, Tensor]:
        """(V, 3, S, S) uint8 copies and the label."""
        index, position, seeds = key
        with Image.open(self.root / self.paths[index]) as raw:
            image = raw.convert("RGB")
        copies = []
        for seed in seeds:
            sample_seed = int(np.random.SeedSequence([seed, position]).generate_state(1)[0])
            with torch.random.fork_rng(devices=[]):  # torchvision draws from the global torch RNG
                torch.manual_seed(sample_seed)
                copies.append(self.transform(image))
        return torch.stack(copies), self.labels[index]


class EpochKeys:
    """A batch sampler whose epoch is set before each pass: batches of keys for ``indices`` in order."""

    def __init__(self, batch_size: int, drop_last: bool) -> None:
        self.batch_size, self.drop_last = batch_size, drop_last
        self.indices: list[int] = []
        self.seeds: tuple[int, ...] = ()

    def set_epoch(self, indices: list[int], seeds: tuple[int, ...]) -> None:
        self.indices, self.seeds = indices, seeds

    def __len__(self) -> int:
        n, b = len(self.indices), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[list[Key]]:
        keys = [(index, position, self.seeds) for position, index in enumerate(self.indices)]
        for b in range(len(self)):
            yield keys[b * self.batch_size : (b + 1) * self.batch_size]


# One persistent loader per (split, settings), dropped with the split.
_LOADERS: weakref.WeakKeyDictionary[FileSplit, dict[tuple, DataLoader]] = weakref.WeakKeyDictionary()


def _loader(
    split: FileSplit,
    train: bool,
    image_size: int,
    eval_resize_ratio: float,
    batch_size: int,
    drop_last: bool,
    options: FileLoaderOptions,
) -> DataLoader:
    workers = options.workers
    persistent = options.persistent_workers and workers > 0
    settings = (train, image_size, eval_resize_ratio, batch_size, drop_last, options)
    if persistent and settings in _LOADERS.get(split, {}):
        return _LOADERS[split][settings]
    loader = DataLoader(
        KeyedImages(split, file_transform(train, image_size, eval_resize_ratio)),
        batch_sampler=EpochKeys(batch_size, drop_last),
        num_workers=workers,
        pin_memory=options.pin_memory,
        persistent_workers=persistent,
        prefetch_factor=options.prefetch_factor if workers else None,
    )
    if persistent:
        _LOADERS.setdefault(split, {})[settings] = loader
    return loader


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
    (pinned if ``options.pin_memory``; kept between epochs if ``options.persistent_workers``)."""
    loader = _loader(split, train, image_size, eval_resize_ratio, batch_size, drop_last, options)
    sampler = loader.batch_sampler
    assert isinstance(sampler, EpochKeys)
    sampler.set_epoch(indices, tuple(view_seeds or [augment_seed]))
    for images, labels in loader:  # images (B, V, 3, S, S)
        yield images.transpose(0, 1).reshape(-1, *images.shape[2:]), labels
