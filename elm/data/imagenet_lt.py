"""ImageNet-LT and iNaturalist 2018 as registered datasets over image files and split lists.

ImageNet-LT: Liu et al., "Large-Scale Long-Tailed Recognition in an Open World", CVPR 2019
(https://arxiv.org/abs/1904.05160). iNaturalist 2018: Van Horn et al., CVPR 2018. Split files follow
https://github.com/facebookresearch/classifier-balancing: one ``relative/path.jpg label`` per line, paths
relative to the image root. ``imagenet_lt`` and ``inaturalist2018`` are aliases of ``file_lt`` with ``source`` fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import torch

from elm.config import ConfigError
from elm.data.base import FileSplit, LongTailData
from elm.data.errors import DatasetNotFoundError
from elm.registry import DATASETS, Choice, Folder, Interval, Size

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# classifier-balancing's statistics for iNaturalist 2018 (data/dataloader.py, RGB_statistics).
INAT_MEAN, INAT_STD = (0.466, 0.471, 0.380), (0.195, 0.194, 0.192)


def read_split_file(path: Path) -> tuple[tuple[str, ...], torch.Tensor]:
    """Parse a ``relative/path label`` list (blank lines skipped; the path may contain spaces).

    Returns:
        paths: N relative paths.
        labels: (N,) int64.
    """
    paths, labels = [], []
    with open(path) as f:
        for number, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise ValueError(f"{path}:{number}: expected 'relative/path label', got {line!r}")
            paths.append(parts[0])
            labels.append(int(parts[1]))
    if labels and min(labels) < 0:
        raise ValueError(f"{path}: labels must be >= 0")
    return tuple(paths), torch.tensor(labels, dtype=torch.int64)


def build_file_dataset(
    title: str,
    *,
    image_root: Path,
    split_dir: Path,
    train_file: str,
    test_file: str,
    val_file: str | None,
    image_size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
) -> LongTailData:
    """LongTailData of FileSplits from split lists; ``val_file`` is used only if present.

    Raises:
        DatasetNotFoundError: a split list or the image root is missing.
        ConfigError: a class (up to the largest label of any list) has no line in the training list.
    """
    required = [split_dir / train_file, split_dir / test_file]
    missing = [str(p) for p in required if not p.is_file()]
    if not image_root.is_dir():
        missing.append(f"{image_root}/ (image root)")
    if missing:
        raise DatasetNotFoundError(
            f"{title} not found: missing {missing}. Put the split lists {[train_file, test_file]} "
            f"(optional {val_file}) in split_dir='{split_dir}', each line 'relative/path.jpg label' with paths "
            f"relative to root='{image_root}'. These datasets are never downloaded automatically."
        )

    def split(name: str) -> FileSplit:
        paths, labels = read_split_file(split_dir / name)
        return FileSplit(root=image_root, paths=paths, labels=labels)

    train = split(train_file)
    test = split(test_file)
    val = split(val_file) if val_file is not None and (split_dir / val_file).is_file() else None
    num_classes = 1 + max(int(s.labels.max()) for s in (train, test, val) if s is not None and len(s))
    class_counts = torch.bincount(train.labels, minlength=num_classes).to(torch.int64)
    empty = (class_counts < 1).nonzero().flatten().tolist()
    if empty:
        raise ConfigError(
            f"{title}: {split_dir / train_file} lists no training image of class {empty[0]} ({len(empty)} of "
            f"{num_classes} classes empty; labels run to {num_classes - 1} in the split lists): "
            f"check data.split_dir and data.root"
        )
    return LongTailData(
        train=train,
        val=val,
        test=test,
        num_classes=num_classes,
        class_counts=class_counts,
        mean=mean,
        std=std,
        image_size=image_size,
    )


@dataclass(frozen=True)
class SplitLists:
    """The split lists of one file dataset, their paths relative to its images (``source`` of ``file_lt``)."""

    title: str
    train_file: str
    test_file: str
    val_file: str | None  # used only if present
    mean: tuple[float, ...]
    std: tuple[float, ...]


SOURCES = {
    # ImageNet-LT: 1000 classes; 115.8k train images, 1280 to 5 per class; balanced 50k test, 20k val.
    "imagenet_lt": SplitLists(
        "ImageNet-LT",
        "ImageNet_LT_train.txt",
        "ImageNet_LT_test.txt",
        "ImageNet_LT_val.txt",
        IMAGENET_MEAN,
        IMAGENET_STD,
    ),
    # iNaturalist 2018: 8142 classes; the official validation list serves as the test split, as in the literature.
    "inaturalist2018": SplitLists(
        "iNaturalist 2018", "iNaturalist18_train.txt", "iNaturalist18_val.txt", None, INAT_MEAN, INAT_STD
    ),
}


@DATASETS.register("file_lt")
def file_lt(
    *,
    source: Annotated[str, Choice(*SOURCES)],
    root: Annotated[str, Folder()],
    split_dir: Annotated[str, Folder()] | None = None,
    image_size: Annotated[int, Interval(ge=1), Size("image_size")] = 224,
) -> LongTailData:
    """A long-tailed dataset of image files listed in split files (``SOURCES``: which lists, title, statistics).

    Args:
        source: ``imagenet_lt`` (``ImageNet_LT_{train,test,val}.txt``) or ``inaturalist2018``
            (``iNaturalist18_{train,val}.txt``); fixed by the aliases of the same names.
        root: image root the split files' relative paths resolve against.
        split_dir: folder with the split lists; defaults to ``root``.
        image_size: network input side, pixels.
    Raises:
        DatasetNotFoundError, ConfigError: as ``build_file_dataset``.
    """
    lists = SOURCES[source]
    return build_file_dataset(
        lists.title,
        image_root=Path(root),
        split_dir=Path(split_dir if split_dir is not None else root),
        train_file=lists.train_file,
        test_file=lists.test_file,
        val_file=lists.val_file,
        image_size=image_size,
        mean=lists.mean,
        std=lists.std,
    )


DATASETS.alias("imagenet_lt", "file_lt", source="imagenet_lt")  # ImageNet-LT
DATASETS.alias("inaturalist2018", "file_lt", source="inaturalist2018")  # iNaturalist 2018
