"""The dataset aliases (cifar10_lt / cifar100_lt of cifar_lt, imagenet_lt / inaturalist2018 of file_lt) and the
Folder / Size markers of the factory signatures, checked against values written out here, not read from the code."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated

import pytest
import torch

from elm.config import ConfigError, from_dict
from elm.data import load_data
from elm.registry import DATASETS, Folder, Interval, Size
from tests.elm.test_data_cifar import write_fake_cifar10, write_fake_cifar100
from tests.elm.test_data_imagenet_lt import write_images

# The signatures the four user-facing names had before they became aliases: (name, default) in order.
OLD_CIFAR = [
    ("root", "data"),
    ("imbalance_ratio", 100.0),
    ("profile", "exp"),
    ("subsample_seed", 0),
    ("val_per_class", 0),
    ("download", False),
    ("max_train_per_class", None),
    ("max_test_per_class", None),
]
OLD_FILES = [("root", inspect.Parameter.empty), ("split_dir", None), ("image_size", 224)]


def tiny_config(data: dict) -> dict:
    return {"name": "t", "seed": 0, "data": data, "model": {"name": "tiny_mlp"}, "loss": {"name": "cross_entropy"}}


@pytest.mark.parametrize(
    "name, old",
    [("cifar10_lt", OLD_CIFAR), ("cifar100_lt", OLD_CIFAR), ("imagenet_lt", OLD_FILES), ("inaturalist2018", OLD_FILES)],
)
def test_the_aliases_keep_the_keys_and_defaults_of_the_old_factories(name: str, old: list) -> None:
    params = inspect.signature(DATASETS.get(name)).parameters.values()
    assert [(p.name, p.default) for p in params] == old
    assert DATASETS.preset(name) is not None  # an alias now, not a factory of its own


@pytest.mark.parametrize(
    "name, source, mean, std, writer",
    [
        # LDAM-DRW's per-channel statistics (0..1 pixel scale)
        ("cifar10_lt", "cifar10", (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), write_fake_cifar10),
        ("cifar100_lt", "cifar100", (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), write_fake_cifar100),
    ],
)
def test_a_cifar_alias_builds_the_base_with_its_source(tmp_path: Path, name, source, mean, std, writer) -> None:
    writer(tmp_path)
    kwargs = {"root": str(tmp_path), "imbalance_ratio": 5.0, "val_per_class": 2}
    alias, base = load_data(name, kwargs), load_data("cifar_lt", {**kwargs, "source": source})
    for split in ("train", "val", "test"):
        assert torch.equal(getattr(alias, split).images, getattr(base, split).images)
        assert torch.equal(getattr(alias, split).labels, getattr(base, split).labels)
    assert alias.mean == base.mean == mean and alias.std == base.std == std
    assert alias.num_classes == (4 if source == "cifar10" else 20)  # the fake files' class counts


def test_a_file_alias_builds_the_base_with_its_split_lists(tmp_path: Path) -> None:
    train, val = [("t/0.png", 0), ("t/1.png", 1), ("t/2.png", 1)], [("v/0.png", 0), ("v/1.png", 1)]
    for prefix, test_name in (("ImageNet_LT", "test"), ("iNaturalist18", "val")):
        (tmp_path / f"{prefix}_train.txt").write_text(write_images(tmp_path, train))
        (tmp_path / f"{prefix}_{test_name}.txt").write_text(write_images(tmp_path, val))
    for name, mean in (("imagenet_lt", (0.485, 0.456, 0.406)), ("inaturalist2018", (0.466, 0.471, 0.380))):
        alias = load_data(name, {"root": str(tmp_path), "image_size": 8})
        base = load_data("file_lt", {"source": name, "root": str(tmp_path), "image_size": 8})
        assert alias.train.paths == base.train.paths and torch.equal(alias.train.labels, base.train.labels)
        assert alias.mean == base.mean == mean and alias.val is None is base.val
        assert alias.test.paths == ("v/0.png", "v/1.png") and alias.class_counts.tolist() == [1, 2]


@pytest.mark.parametrize("name, fixed", [("cifar10_lt", "'cifar10'"), ("imagenet_lt", "'imagenet_lt'")])
def test_setting_a_key_an_alias_fixes_is_a_one_line_error(name: str, fixed: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_dict(tiny_config({"name": name, "root": "x", "source": "other"}))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"data.source is fixed to {fixed} by '{name}'")


def test_an_unknown_source_of_the_base_names_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"data.source='cifar20' is not allowed; choose one of \['cifar10', "):
        from_dict(tiny_config({"name": "cifar_lt", "source": "cifar20"}))


def test_the_shipped_datasets_mark_their_folders_and_size_knobs() -> None:
    folders = {n: sorted(DATASETS.marked(n, Folder)) for n in DATASETS.names()}
    assert folders == {
        "cifar_lt": ["root"],
        "cifar10_lt": ["root"],
        "cifar100_lt": ["root"],
        "file_lt": ["root", "split_dir"],
        "imagenet_lt": ["root", "split_dir"],
        "inaturalist2018": ["root", "split_dir"],
        "synthetic_lt": [],
    }
    roles = {arg: m.role for arg, m in DATASETS.marked("cifar10_lt", Size).items()}
    assert roles == {
        "imbalance_ratio": "imbalance_ratio",
        "val_per_class": "val_per_class",
        "max_train_per_class": "max_train_per_class",
        "max_test_per_class": "max_test_per_class",
    }
    assert {a: m.role for a, m in DATASETS.marked("imagenet_lt", Size).items()} == {"image_size": "image_size"}


def test_markers_are_found_inside_optional_and_beside_constraints() -> None:
    def factory(
        *,
        a: Annotated[str, Folder()] | None = None,
        b: Annotated[int, Interval(ge=1), Size("image_size")] = 4,
        c: str = "x",
    ) -> None:
        """A made-up factory."""

    from elm.registry import Registry

    reg: Registry = Registry("probe")
    reg.register("probe")(factory)
    assert reg.marked("probe", Folder) == {"a": Folder()}
    assert reg.marked("probe", Size) == {"b": Size("image_size")}


def test_a_size_marker_with_an_unknown_role_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"Size role 'pixels' is unknown; known: \['val_per_class', "):
        Size("pixels")


@pytest.mark.parametrize(
    "name, kwargs, expected",
    [
        ("cifar_lt", {"source": "cifar10", "root": "data"}, "cifar10_lt"),
        ("cifar_lt", {"source": "cifar100"}, "cifar100_lt"),
        ("cifar_lt", {"root": "data"}, "cifar_lt"),  # no source: no alias matches
        ("cifar10_lt", {"root": "data"}, "cifar10_lt"),
        ("synthetic_lt", {"num_classes": 8}, "synthetic_lt"),
    ],
)
def test_a_base_entry_with_an_alias_values_reads_as_that_alias(name: str, kwargs: dict, expected: str) -> None:
    assert DATASETS.canonical(name, kwargs) == expected


def test_smoke_caps_a_base_cifar_entry_as_it_caps_its_alias() -> None:
    from platform.smoke import smoke

    def train_cap(data: dict) -> object:
        cfg = from_dict(
            {"name": "x", "seed": 0, "data": data, "model": {"name": "resnet32"}, "loss": {"name": "cross_entropy"}}
        )
        return smoke(cfg).data.kwargs.get("max_train_per_class")

    alias = train_cap({"name": "cifar10_lt", "root": "data", "imbalance_ratio": 100})
    assert alias is not None
    assert train_cap({"name": "cifar_lt", "source": "cifar10", "root": "data", "imbalance_ratio": 100}) == alias
