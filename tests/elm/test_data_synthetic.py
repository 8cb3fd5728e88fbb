"""synthetic_lt: fast, deterministic, long-tailed, and learnable by a tiny model."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch
import torch.nn.functional as F

from elm.config import ConfigError
from elm.data import iterate_batches, load_data, longtail_counts
from elm.registry import DATASETS


def test_generated_deterministic() -> None:
    a = load_data("synthetic_lt", {"seed": 3, "val_per_class": 4})
    b = load_data("synthetic_lt", {"seed": 3, "val_per_class": 4})
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.images, b.test.images)
    assert a.class_counts.tolist() == longtail_counts(64, 5, 10.0) == torch.bincount(a.train.labels).tolist()
    assert a.train.images.dtype == torch.uint8 and a.train.images.shape[1:] == (3, 8, 8)
    assert torch.bincount(a.test.labels).tolist() == [16] * 5
    assert a.val is not None and torch.bincount(a.val.labels).tolist() == [4] * 5
    assert not torch.equal(a.train.images, load_data("synthetic_lt", {"seed": 4}).train.images)


def test_tiny_linear_model_learns_it() -> None:
    data = load_data("synthetic_lt", {"num_classes": 5, "imbalance_ratio": 10.0})
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(12, 5))
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    common = dict(mean=data.mean, std=data.std, image_size=data.image_size, seed=0)
    for epoch in range(15):
        for x, y in iterate_batches(data.train, batch_size=32, train=True, epoch=epoch, **common):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    with torch.no_grad():
        x, y = next(iterate_batches(data.test, batch_size=len(data.test), train=False, epoch=0, **common))
        per_class = [(model(x).argmax(1)[y == c] == c).float().mean().item() for c in range(5)]
    assert min(per_class) > 0.7, per_class


@pytest.mark.parametrize("name", DATASETS.names())
def test_factories_are_keyword_only(name: str) -> None:
    params = inspect.signature(DATASETS.get(name)).parameters.values()
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)


def test_a_ratio_that_empties_a_class_is_rejected_naming_the_key_class_and_count() -> None:
    n_max, num_classes, ratio = 64, 5, 1000.0
    reference = [int(n_max * (1 / ratio) ** (c / (num_classes - 1))) for c in range(num_classes)]  # LDAM-DRW's rule
    first_empty = reference.index(0)
    with pytest.raises(ConfigError, match=rf"data\.imbalance_ratio=1000 leaves class {first_empty} with 0 training"):
        load_data("synthetic_lt", {"n_max": n_max, "num_classes": num_classes, "imbalance_ratio": ratio})
    assert load_data("synthetic_lt", {"n_max": n_max, "imbalance_ratio": 60.0}).class_counts.min() == 1


def test_load_data_rejects_any_dataset_with_an_empty_class(monkeypatch: pytest.MonkeyPatch) -> None:
    """The net behind the factories' own checks: whatever the cause, no class may have zero training images."""
    import elm.data

    good = load_data("synthetic_lt", {})
    broken = dataclasses.replace(good, class_counts=torch.tensor([5, 3, 0, 2, 0]))
    monkeypatch.setattr(elm.data.DATASETS, "build", lambda name, kwargs: broken)
    with pytest.raises(ConfigError, match=r"data\.name=synthetic_lt: class 2 has no training images \(2 of 5"):
        load_data("synthetic_lt", {})
