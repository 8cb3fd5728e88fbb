"""Read CIFAR-10 / CIFAR-100 from the official python-pickle layout into uint8 tensors.

Layout (https://www.cs.toronto.edu/~kriz/cifar.html): ``<root>/cifar-10-batches-py/{data_batch_1..5, test_batch,
batches.meta}`` with labels under ``labels``, and ``<root>/cifar-100-python/{train, test, meta}`` with labels under
``fine_labels``. Each file is a pickled dict whose ``data`` is uint8 (N, 3072), channel-major (R plane, G, B).
The class count comes from the meta file's label names, never from the variant's name, so small test copies work.

Files present but with non-official md5s (e.g. a JPEG re-encode) load with one ``ChecksumMismatchWarning``.
Missing files are downloaded only if ``download=True``; otherwise (or if that fails) ``DatasetNotFoundError``
says which files to put where; a present but truncated or corrupt file raises ``DatasetCorruptError`` naming it.
Pickles are trusted input here, as in torchvision.
"""

from __future__ import annotations

import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from elm.data.checksum import mismatched_files
from elm.data.download import DEFAULT_TIMEOUT_S, DownloadError, fetch_and_extract
from elm.data.errors import ChecksumMismatchWarning, DatasetCorruptError, DatasetNotFoundError

CHANNELS = 3
SIDE = 32


@dataclass(frozen=True)
class CifarLayout:
    """Where one CIFAR variant's files live and what the official release's checksums are."""

    title: str
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: str
    names_key: str
    url: str
    tarball_md5: str
    file_md5: dict[str, str]

    @property
    def all_files(self) -> tuple[str, ...]:
        return (*self.train_files, *self.test_files, self.meta_file)


_CIFAR10_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))

# Official md5s as published by torchvision.datasets.CIFAR10 / CIFAR100.
LAYOUTS: dict[str, CifarLayout] = {
    "cifar10": CifarLayout(
        title="CIFAR-10",
        folder="cifar-10-batches-py",
        train_files=_CIFAR10_BATCHES,
        test_files=("test_batch",),
        meta_file="batches.meta",
        label_key="labels",
        names_key="label_names",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        tarball_md5="c58f30108f718f92721af3b95e74349a",
        file_md5={
            "data_batch_1": "c99cafc152244af753f735de768cd75f",
            "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
            "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
            "data_batch_4": "634d18415352ddfa80567beed471001a",
            "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
            "test_batch": "40351d587109b95175f43aff81a1287e",
            "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
        },
    ),
    "cifar100": CifarLayout(
        title="CIFAR-100",
        folder="cifar-100-python",
        train_files=("train",),
        test_files=("test",),
        meta_file="meta",
        label_key="fine_labels",
        names_key="fine_label_names",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        tarball_md5="eb9058c3a382ffc7106e4002c42a8d85",
        file_md5={
            "train": "16019d7e3df5f24257cddd939b257f8d",
            "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
            "meta": "7973b15100ade9c7d40fb424638fde48",
        },
    ),
}


@dataclass(frozen=True)
class CifarArrays:
    """One CIFAR variant in memory.

    Attributes:
        train_images: (N, 3, 32, 32) uint8, in file order (data_batch_1..5 concatenated for CIFAR-10).
        train_labels: (N,) int64.
        test_images: (M, 3, 32, 32) uint8.
        test_labels: (M,) int64.
        class_names: the meta file's label names; ``len(class_names)`` is the class count.
    """

    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    class_names: tuple[str, ...]


# What ``pickle.load`` raises on damaged bytes depends on where they break: a truncated file gives EOFError or
# UnpicklingError, garbage any of these.
_UNPICKLE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    ImportError,
    IndexError,
    KeyError,
    OverflowError,
    MemoryError,
)


def _corrupt(layout: CifarLayout, path: Path, why: str) -> DatasetCorruptError:
    return DatasetCorruptError(
        f"{path} is corrupt or truncated ({why}); delete {path.parent}/ and download {layout.title} again "
        f"({layout.url}, or set download=True)"
    )


def _unpickle(layout: CifarLayout, path: Path) -> dict[str, Any]:
    """Load a CIFAR pickle, normalising bytes keys (python-2 pickles) to str.

    Raises:
        DatasetCorruptError: the file cannot be unpickled or does not hold a dict.
    """
    try:
        with open(path, "rb") as f:
            raw = pickle.load(f, encoding="bytes")
    except _UNPICKLE_ERRORS as e:
        raise _corrupt(layout, path, f"cannot unpickle it: {type(e).__name__}: {e}") from e
    if not isinstance(raw, dict):
        raise _corrupt(layout, path, f"it holds a {type(raw).__name__}, not a dict")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in raw.items()}


def _read_batches(layout: CifarLayout, folder: Path, names: tuple[str, ...]) -> tuple[Tensor, Tensor]:
    """Concatenate pickled batches into (N, 3, 32, 32) uint8 images and (N,) int64 labels.

    Raises:
        DatasetCorruptError: a file that cannot be unpickled, lacks ``data`` or the labels, or whose rows are not
            (N, 3072) with N labels.
    """
    images, labels = [], []
    for name in names:
        path = folder / name
        entry = _unpickle(layout, path)
        if "data" not in entry or layout.label_key not in entry:
            raise _corrupt(layout, path, f"it lacks 'data' or '{layout.label_key}': not a {layout.title} batch")
        try:
            data = np.asarray(entry["data"], dtype=np.uint8)
            y = np.asarray(entry[layout.label_key], dtype=np.int64)
        except (ValueError, TypeError, OverflowError) as e:
            raise _corrupt(layout, path, f"its arrays do not convert: {e}") from e
        row = CHANNELS * SIDE * SIDE
        if data.ndim != 2 or data.shape[1] != row or y.shape != (data.shape[0],):
            raise _corrupt(layout, path, f"'data' is {data.shape} with {y.shape} labels, expected (N, {row}) and (N,)")
        images.append(data.reshape(-1, CHANNELS, SIDE, SIDE))
        labels.append(y)
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))


def _not_found_message(layout: CifarLayout, root: Path, missing: list[str], why: str) -> str:
    folder = root / layout.folder
    return (
        f"{layout.title} not found: missing {[str(folder / m) for m in missing]}. {why} "
        f"Put the python version of the official release ({layout.url}, md5 {layout.tarball_md5}) "
        f"extracted so that {folder}/ holds {list(layout.all_files)}, i.e. pass root='{root}' "
        f"(the folder that contains '{layout.folder}/'), or set download=True on a machine with internet."
    )


def _ensure_files(layout: CifarLayout, root: Path, download: bool, timeout_s: float) -> None:
    folder = root / layout.folder
    missing = [name for name in layout.all_files if not (folder / name).is_file()]
    if not missing:
        return
    if not download:
        raise DatasetNotFoundError(_not_found_message(layout, root, missing, "Download is disabled (download=False)."))
    try:
        root.mkdir(parents=True, exist_ok=True)
        fetch_and_extract(layout.url, layout.tarball_md5, root, timeout_s=timeout_s)
    except (DownloadError, OSError) as exc:
        raise DatasetNotFoundError(_not_found_message(layout, root, missing, f"Download failed: {exc}.")) from exc
    still = [name for name in layout.all_files if not (folder / name).is_file()]
    if still:
        raise DatasetNotFoundError(
            _not_found_message(layout, root, still, "The downloaded archive did not contain these files.")
        )


def _warn_if_unofficial(layout: CifarLayout, folder: Path) -> None:
    differing = mismatched_files(folder, layout.file_md5)
    if differing:
        warnings.warn(
            f"{layout.title} at {folder}: {differing} differ from the official release (md5 mismatch, e.g. a "
            f"re-encoded copy); loading anyway, results may differ slightly from published numbers.",
            ChecksumMismatchWarning,
            stacklevel=3,
        )


def load_cifar(
    variant: str, root: str | Path, *, download: bool = False, timeout_s: float = DEFAULT_TIMEOUT_S
) -> CifarArrays:
    """Read a CIFAR variant, downloading it first if allowed and missing.

    Args:
        variant: ``"cifar10"`` or ``"cifar100"``.
        root: folder containing ``cifar-10-batches-py/`` or ``cifar-100-python/``.
        download: fetch the official tarball (md5-checked) when files are missing.
        timeout_s: network timeout per connect/read.
    Raises:
        DatasetNotFoundError: files missing and download disabled or failed.
        DatasetCorruptError: a file is present but truncated or not a CIFAR pickle; the message names it.
        ValueError: unknown variant, or labels outside the meta file's classes.
    Warns:
        ChecksumMismatchWarning: once per call if any file's md5 differs from the official release.
    """
    if variant not in LAYOUTS:
        raise ValueError(f"variant={variant!r} is not a CIFAR variant; choose one of {sorted(LAYOUTS)}")
    layout = LAYOUTS[variant]
    root = Path(root)
    _ensure_files(layout, root, download, timeout_s)
    folder = root / layout.folder
    _warn_if_unofficial(layout, folder)
    meta_path = folder / layout.meta_file
    meta = _unpickle(layout, meta_path)
    if not isinstance(meta.get(layout.names_key), (list, tuple)):
        raise _corrupt(layout, meta_path, f"it lacks a '{layout.names_key}' list: not a {layout.title} meta file")
    names = tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in meta[layout.names_key])
    train_x, train_y = _read_batches(layout, folder, layout.train_files)
    test_x, test_y = _read_batches(layout, folder, layout.test_files)
    for split, y in (("train", train_y), ("test", test_y)):
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(names)):
            raise ValueError(f"{layout.title} {split} labels fall outside the {len(names)} classes of the meta file")
    return CifarArrays(train_x, train_y, test_x, test_y, names)
