"""ImageNet-LT / iNaturalist 2018 split-file parsing on a tiny folder of PNGs written here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from elm.config import ConfigError
from elm.data import DatasetNotFoundError, load_data
from elm.data.base import FileSplit
from elm.data.imagenet_lt import read_split_file


def write_images(root: Path, rows: list[tuple[str, int]]) -> str:
    rng = np.random.default_rng(0)
    for rel, _ in rows:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(root / rel)
    return "".join(f"{rel} {label}\n" for rel, label in rows)


def test_imagenet_lt_split_files(tmp_path: Path) -> None:
    images, lists = tmp_path / "images", tmp_path / "lists"
    lists.mkdir()
    train = [("train/n0/a.png", 0), ("train/n0/b.png", 0), ("train/n1/c.png", 1), ("train/n2/d e.png", 2)]
    test = [("val/n0/x.png", 0), ("val/n1/y.png", 1), ("val/n2/z.png", 2)]
    (lists / "ImageNet_LT_train.txt").write_text(write_images(images, train) + "\n")
    (lists / "ImageNet_LT_test.txt").write_text(write_images(images, test))
    data = load_data("imagenet_lt", {"root": str(images), "split_dir": str(lists), "image_size": 8})
    assert isinstance(data.train, FileSplit) and data.train.root == images
    assert data.train.paths == tuple(p for p, _ in train)
    assert data.train.labels.tolist() == [0, 0, 1, 2]
    assert data.num_classes == 3 and data.class_counts.tolist() == [2, 1, 1]
    assert data.class_counts.dtype == torch.int64
    assert data.val is None and len(data.test) == 3 and data.image_size == 8
    assert data.mean == (0.485, 0.456, 0.406)
    assert all((images / p).is_file() for p in data.test.paths)


def test_optional_val_file_and_default_split_dir(tmp_path: Path) -> None:
    rows = [("a.png", 0), ("b.png", 1)]
    text = write_images(tmp_path, rows)
    for name in ("ImageNet_LT_train.txt", "ImageNet_LT_test.txt", "ImageNet_LT_val.txt"):
        (tmp_path / name).write_text(text)
    data = load_data("imagenet_lt", {"root": str(tmp_path)})
    assert data.val is not None and len(data.val) == 2 and data.image_size == 224


def test_inaturalist_uses_val_list_as_test(tmp_path: Path) -> None:
    train = [("t/0.png", 0), ("t/1.png", 1), ("t/2.png", 1)]
    (tmp_path / "iNaturalist18_train.txt").write_text(write_images(tmp_path, train))
    (tmp_path / "iNaturalist18_val.txt").write_text(write_images(tmp_path, [("v/0.png", 0)]))
    data = load_data("inaturalist2018", {"root": str(tmp_path)})
    assert data.class_counts.tolist() == [1, 2] and data.test.paths == ("v/0.png",) and data.val is None


@pytest.mark.parametrize(
    "name, train_file, test_file",
    [
        ("imagenet_lt", "ImageNet_LT_train.txt", "ImageNet_LT_test.txt"),
        ("inaturalist2018", "iNaturalist18_train.txt", "iNaturalist18_val.txt"),
    ],
)
def test_a_class_without_training_images_is_rejected_naming_the_list(
    tmp_path: Path, name: str, train_file: str, test_file: str
) -> None:
    """Labels 0..2 appear in the test list but class 1 has no training line: its log prior would be -inf."""
    (tmp_path / train_file).write_text(write_images(tmp_path, [("t/a.png", 0), ("t/b.png", 2)]))
    (tmp_path / test_file).write_text(write_images(tmp_path, [("v/a.png", 0), ("v/b.png", 1), ("v/c.png", 2)]))
    with pytest.raises(ConfigError) as info:
        load_data(name, {"root": str(tmp_path)})
    message = str(info.value)
    assert str(tmp_path / train_file) in message and "no training image of class 1" in message
    assert "1 of 3 classes empty" in message and "\n" not in message


def test_missing_split_files_name_expected_paths(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        load_data("imagenet_lt", {"root": str(tmp_path), "split_dir": str(tmp_path / "lists")})
    assert str(tmp_path / "lists" / "ImageNet_LT_train.txt") in str(info.value)
    assert str(tmp_path / "lists" / "ImageNet_LT_test.txt") in str(info.value)


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "split.txt"
    path.write_text("a.png 0\nb.png zero\n")
    with pytest.raises(ValueError, match="split.txt:2"):
        read_split_file(path)
