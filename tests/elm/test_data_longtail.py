"""Long-tail counts and image selection against LDAM-DRW (Cao et al. 2019), reimplemented here as the reference."""

from __future__ import annotations

import numpy as np
import pytest

from elm.config import ConfigError
from elm.data.longtail import (
    balanced_holdout,
    check_every_class_kept,
    first_per_class,
    longtail_counts,
    longtail_indices,
    longtail_train_val,
)


def ldam_counts(img_max: float, cls_num: int, imb_type: str, imb_factor: float) -> list[int]:
    """LDAM-DRW ``IMBALANCECIFAR10.get_img_num_per_cls`` as published (even ``cls_num`` only for 'step')."""
    img_num_per_cls = []
    if imb_type == "exp":
        for cls_idx in range(cls_num):
            num = img_max * (imb_factor ** (cls_idx / (cls_num - 1.0)))
            img_num_per_cls.append(int(num))
    elif imb_type == "step":
        for _ in range(cls_num // 2):
            img_num_per_cls.append(int(img_max))
        for _ in range(cls_num // 2):
            img_num_per_cls.append(int(img_max * imb_factor))
    return img_num_per_cls


def ldam_selection(targets: np.ndarray, img_num_per_cls: list[int], rand_number: int) -> np.ndarray:
    """LDAM-DRW ``gen_imbalanced_data`` with its global ``np.random.seed``; returns the kept indices in order."""
    state = np.random.get_state()
    try:
        np.random.seed(rand_number)
        kept = []
        targets_np = np.array(targets, dtype=np.int64)
        classes = np.unique(targets_np)
        for the_class, the_img_num in zip(classes, img_num_per_cls):
            idx = np.where(targets_np == the_class)[0]
            np.random.shuffle(idx)
            kept.append(idx[:the_img_num])
        return np.concatenate(kept)
    finally:
        np.random.set_state(state)


def shuffled_balanced_labels(num_classes: int, per_class: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(num_classes), per_class))


def test_cifar10_exp_ratio_100_counts() -> None:
    counts = longtail_counts(5000, 10, 100.0)
    assert counts == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert sum(counts) == 12406


def test_cifar100_exp_ratio_100_sums_to_10847() -> None:
    counts = longtail_counts(500, 100, 100.0)
    assert sum(counts) == 10847
    assert counts == ldam_counts(500.0, 100, "exp", 0.01)


@pytest.mark.parametrize("ratio", [10.0, 50.0, 100.0, 200.0])
@pytest.mark.parametrize("n_max,num_classes", [(5000, 10), (500, 100)])
def test_counts_match_ldam_expression(n_max: int, num_classes: int, ratio: float) -> None:
    assert longtail_counts(n_max, num_classes, ratio) == ldam_counts(float(n_max), num_classes, "exp", 1 / ratio)
    assert longtail_counts(n_max, num_classes, ratio, "step") == ldam_counts(
        float(n_max), num_classes, "step", 1 / ratio
    )


def test_step_profile() -> None:
    assert longtail_counts(5000, 10, 100.0, "step") == [5000] * 5 + [50] * 5
    assert longtail_counts(100, 5, 10.0, "step") == [100, 100, 10, 10, 10]  # odd C: every class gets a count


def test_ratio_one_is_balanced_and_bad_profile_raises() -> None:
    assert longtail_counts(30, 4, 1.0) == [30] * 4
    with pytest.raises(ValueError, match="profile"):
        longtail_counts(30, 4, 10.0, "linear")
    with pytest.raises(ValueError, match="imbalance_ratio"):
        longtail_counts(30, 4, 0.5)


@pytest.mark.parametrize("seed", [0, 1, 123])
def test_selection_equals_ldam(seed: int) -> None:
    labels = shuffled_balanced_labels(10, 200, seed=7)
    counts = longtail_counts(200, 10, 100.0)
    np.random.seed(999)
    before = np.random.get_state()[1].copy()
    ours = longtail_indices(labels, counts, seed)
    assert np.array_equal(np.random.get_state()[1], before)  # global RNG untouched
    np.testing.assert_array_equal(ours, ldam_selection(labels, counts, seed))
    assert np.array_equal(np.bincount(labels[ours]), counts)


def test_selection_too_many_raises() -> None:
    labels = np.repeat(np.arange(3), 5)
    with pytest.raises(ValueError, match="class 0"):
        longtail_indices(labels, [6, 1, 1], seed=0)


def test_train_val_without_holdout_is_ldam() -> None:
    labels = shuffled_balanced_labels(10, 100, seed=3)
    train, val, counts = longtail_train_val(labels, 10.0, "exp", seed=0, val_per_class=0)
    np.testing.assert_array_equal(train, ldam_selection(labels, longtail_counts(100, 10, 10.0), 0))
    assert len(val) == 0 and counts == longtail_counts(100, 10, 10.0)


def test_train_val_holdout_is_balanced_disjoint_and_longtailed() -> None:
    labels = shuffled_balanced_labels(6, 50, seed=4)
    train, val, counts = longtail_train_val(labels, 10.0, "exp", seed=2, val_per_class=5)
    assert np.array_equal(np.bincount(labels[val], minlength=6), [5] * 6)
    assert not set(train.tolist()) & set(val.tolist())
    assert counts == longtail_counts(45, 6, 10.0)
    assert np.array_equal(np.bincount(labels[train], minlength=6), counts)


def test_balanced_holdout_partitions_pool() -> None:
    labels = shuffled_balanced_labels(4, 20, seed=5)
    rest, held = balanced_holdout(labels, 3, seed=0)
    assert sorted(np.concatenate([rest, held]).tolist()) == list(range(len(labels)))
    assert np.all(np.diff(rest) > 0)
    assert np.array_equal(np.bincount(labels[held]), [3] * 4)
    rest2, held2 = balanced_holdout(labels, 3, seed=0)
    assert np.array_equal(held, held2) and np.array_equal(rest, rest2)
    with pytest.raises(ValueError, match="val_per_class"):
        balanced_holdout(labels, 20, seed=0)


def test_first_per_class_matches_naive() -> None:
    labels = np.random.default_rng(0).integers(0, 5, size=200)
    seen: dict[int, int] = {}
    expected = []
    for pos, y in enumerate(labels.tolist()):
        if seen.get(y, 0) < 7:
            expected.append(pos)
            seen[y] = seen.get(y, 0) + 1
    np.testing.assert_array_equal(first_per_class(labels, 7), expected)
    np.testing.assert_array_equal(first_per_class(labels, None), np.arange(200))


def test_cifar10_at_ratio_10000_leaves_the_last_class_empty_and_is_rejected_naming_it() -> None:
    """The issue's reproduction: ``--set data.imbalance_ratio=10000`` on CIFAR-10 (10 x 5000 images)."""
    labels = shuffled_balanced_labels(10, 5000, seed=0)
    reference = ldam_counts(5000.0, 10, "exp", 1 / 10000)
    empty = [c for c, n in enumerate(reference) if n == 0]
    assert empty == [9]
    with pytest.raises(ConfigError) as info:
        longtail_train_val(labels, 10000.0, "exp", seed=0, val_per_class=0)
    message = str(info.value)
    assert "data.imbalance_ratio=10000" in message and f"class {empty[0]} with 0 training images" in message
    assert "n_max=5000" in message and "\n" not in message


@pytest.mark.parametrize("profile", ["exp", "step"])
def test_every_ratio_that_keeps_each_class_passes_and_every_other_fails(profile: str) -> None:
    for ratio in (1.0, 2.0, 7.5, 24.0, 25.0, 26.0, 100.0):
        counts = longtail_counts(25, 4, ratio, profile)
        if min(ldam_counts(25.0, 4, profile, 1 / ratio)) >= 1:
            check_every_class_kept(counts, ratio=ratio, profile=profile, n_max=25)
        else:
            with pytest.raises(ConfigError, match=f"data.imbalance_ratio={ratio:g} leaves class"):
                check_every_class_kept(counts, ratio=ratio, profile=profile, n_max=25)


def test_a_holdout_that_takes_a_whole_class_names_val_per_class() -> None:
    labels = np.concatenate([shuffled_balanced_labels(3, 10, seed=1), np.full(4, 3)])  # class 3 has only 4
    with pytest.raises(ConfigError, match=r"data\.val_per_class=4 takes all 4 images of class 3.*< 4"):
        longtail_train_val(labels, 1.0, "exp", seed=0, val_per_class=4)
    first_empty = ldam_counts(1.0, 4, "exp", 1 / 5).index(0)  # n_max = 1 after the holdout
    message = rf"imbalance_ratio=5 leaves class {first_empty} with 0.*val_per_class=3 held"
    with pytest.raises(ConfigError, match=message):
        longtail_train_val(labels, 5.0, "exp", seed=0, val_per_class=3)
    _, val, counts = longtail_train_val(labels, 1.0, "exp", seed=0, val_per_class=3)
    assert counts == [1, 1, 1, 1] and len(val) == 12
