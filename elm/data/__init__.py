"""Long-tailed datasets and the batch iterator; importing this package registers every dataset factory.

Usage: ``data = load_data("cifar10_lt", {"root": "data", "imbalance_ratio": 100})``, then
``for x, y in iterate_batches(data.train, batch_size=128, train=True, mean=data.mean, std=data.std,
image_size=data.image_size, seed=0, epoch=e): ...``
"""

from __future__ import annotations

from typing import Any, Mapping

from elm.config import ConfigError
from elm.data import cifar_lt, imagenet_lt, synthetic_lt  # noqa: F401  (registration side effects)
from elm.data.base import FileSplit, LongTailData, TensorSplit
from elm.data.errors import ChecksumMismatchWarning, DatasetCorruptError, DatasetNotFoundError
from elm.data.loaders import iterate_batches, num_batches
from elm.data.longtail import balanced_holdout, longtail_counts, longtail_indices
from elm.registry import DATASETS


def load_data(name: str, kwargs: Mapping[str, Any]) -> LongTailData:
    """Build the registered dataset ``name`` from config ``kwargs`` (checked against its signature first).

    Raises:
        ConfigError: a class has no training image (factories name the responsible key first; this is the net
            for any other cause), since its log prior would be -inf.
        DatasetNotFoundError, DatasetCorruptError: files missing, or present but unreadable; the message names them.
    """
    data = DATASETS.build(name, kwargs)
    empty = (data.class_counts < 1).nonzero().flatten().tolist()
    if empty:
        raise ConfigError(
            f"data.name={name}: class {empty[0]} has no training images ({len(empty)} of {data.num_classes} "
            f"classes empty); every class needs at least one"
        )
    return data


__all__ = [
    "ChecksumMismatchWarning",
    "DatasetCorruptError",
    "DatasetNotFoundError",
    "FileSplit",
    "LongTailData",
    "TensorSplit",
    "balanced_holdout",
    "iterate_batches",
    "load_data",
    "longtail_counts",
    "longtail_indices",
    "num_batches",
]
