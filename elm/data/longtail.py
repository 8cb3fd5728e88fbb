"""Long-tailed subsampling of a balanced training set, reproducing LDAM-DRW image for image.

Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss", NeurIPS 2019
(https://arxiv.org/abs/1906.07413); reference code https://github.com/kaidic/LDAM-DRW, ``imbalance_cifar.py``:
``get_img_num_per_cls`` (the per-class counts) and ``gen_imbalanced_data`` (which images are kept).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from elm.config import ConfigError


def longtail_counts(n_max: int, num_classes: int, ratio: float, profile: str = "exp") -> list[int]:
    """Images per class for a long-tailed profile, as LDAM-DRW's ``get_img_num_per_cls``.

    exp:  ``int(n_max * imb_factor ** (i / (C - 1.0)))`` with ``imb_factor = 1 / ratio`` (the same float
          expression as LDAM-DRW, so truncation matches: CIFAR-10 at ratio 100 sums to 12406, CIFAR-100 to 10847).
    step: the first ``C // 2`` classes keep ``n_max``, the rest ``int(n_max * imb_factor)``. (LDAM-DRW emits
          ``C // 2`` tail entries, one too few for odd C; here every class gets a count.)

    Args:
        n_max: images of the most frequent class (class 0).
        num_classes: C.
        ratio: imbalance ratio n_max / n_min (>= 1).
        profile: ``"exp"`` or ``"step"``.
    Returns:
        C counts, non-increasing in the class index.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes={num_classes} must be >= 1")
    if n_max < 1:
        raise ValueError(f"n_max={n_max} must be >= 1")
    if not ratio >= 1.0:
        raise ValueError(f"imbalance_ratio={ratio} must be >= 1")
    imb_factor = 1.0 / ratio
    img_max = float(n_max)
    if profile == "exp":
        if num_classes == 1:
            return [n_max]
        return [int(img_max * (imb_factor ** (i / (num_classes - 1.0)))) for i in range(num_classes)]
    if profile == "step":
        head = num_classes // 2
        return [int(img_max)] * head + [int(img_max * imb_factor)] * (num_classes - head)
    raise ValueError(f"profile={profile!r} is not allowed; choose one of ['exp', 'step']")


def check_every_class_kept(
    counts: Sequence[int], *, ratio: float, profile: str, n_max: int, val_per_class: int = 0
) -> None:
    """Reject long-tailed counts that leave a class without training images (its log prior would be -inf).

    Every profile gives the last class ``int(n_max / ratio)`` images, so the bound is ``ratio <= n_max`` up to
    float rounding (e.g. CIFAR-10, n_max 5000: ``imbalance_ratio=10000`` leaves class 9 empty).

    Args:
        counts: per-class counts from ``longtail_counts``.
        ratio, profile, n_max: the arguments they came from, for the message.
        val_per_class: images per class held out before ``n_max`` was taken, for the message.
    Raises:
        ConfigError: naming ``data.imbalance_ratio``, the first empty class and its count.
    """
    empty = [c for c, n in enumerate(counts) if n < 1]
    if not empty:
        return
    c = empty[0]
    pool = f"n_max={n_max} after data.val_per_class={val_per_class} held out" if val_per_class else f"n_max={n_max}"
    lower = "lower data.imbalance_ratio or data.val_per_class" if val_per_class else "lower data.imbalance_ratio"
    raise ConfigError(
        f"data.imbalance_ratio={ratio:g} leaves class {c} with {counts[c]} training images ({len(empty)} of "
        f"{len(counts)} classes empty; {profile} profile, {pool}): the rarest class gets int(n_max / ratio) "
        f"images, so {lower}"
    )


def longtail_indices(labels: np.ndarray, counts: list[int], seed: int) -> np.ndarray:
    """Indices of the images LDAM-DRW's ``gen_imbalanced_data`` keeps, in the same order.

    LDAM-DRW calls ``np.random.seed(seed)`` once, then for each class ``c`` in ``np.unique(labels)`` order
    shuffles ``np.where(labels == c)[0]`` with ``np.random.shuffle`` and keeps the first ``counts[k]``.
    We draw the same stream from a local ``np.random.RandomState(seed)`` (legacy MT19937 + the legacy shuffle
    algorithm, bit-identical to the seeded global functions) and never touch global state. ``default_rng``
    would be cleaner but uses PCG64 and a different shuffle, so it would select different images and break
    comparability with published CIFAR-LT numbers.

    Args:
        labels: (N,) integer class labels of the balanced pool.
        counts: images to keep for the k-th class of ``np.unique(labels)``.
        seed: LDAM-DRW's ``rand_number`` (0 in the paper's runs).
    Returns:
        (sum(counts),) int64 indices into ``labels``, grouped by class in ascending class order.
    """
    labels = np.asarray(labels)
    classes = np.unique(labels)
    if len(counts) != len(classes):
        raise ValueError(f"counts has {len(counts)} entries but labels hold {len(classes)} classes")
    rng = np.random.RandomState(seed)
    kept = []
    for c, n in zip(classes, counts):
        idx = np.where(labels == c)[0]
        if n > len(idx):
            raise ValueError(f"class {c} needs {n} images but the pool has only {len(idx)}")
        rng.shuffle(idx)
        kept.append(idx[:n])
    return np.concatenate(kept).astype(np.int64) if kept else np.zeros(0, dtype=np.int64)


def balanced_holdout(labels: np.ndarray, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``per_class`` images of every class from a pool.

    Uses ``np.random.default_rng(seed)`` (this step has no reference implementation to reproduce).

    Args:
        labels: (N,) integer class labels.
        per_class: images per class moved to the held-out set.
        seed: seed of the holdout draw.
    Returns:
        (rest, held): int64 indices into ``labels``; ``rest`` ascending (file order preserved), ``held`` grouped
        by ascending class, ``per_class`` each.
    Raises:
        ConfigError: naming ``data.val_per_class``, if it would take every image of some class.
    """
    labels = np.asarray(labels)
    if per_class < 0:
        raise ValueError(f"val_per_class={per_class} must be >= 0")
    classes, pool_counts = np.unique(labels, return_counts=True)
    if len(classes) and per_class >= pool_counts.min():
        c, n = int(classes[pool_counts.argmin()]), int(pool_counts.min())
        raise ConfigError(
            f"data.val_per_class={per_class} takes all {n} images of class {c}, leaving none to train on; "
            f"use data.val_per_class < {n}"
        )
    rng = np.random.default_rng(seed)
    held = []
    for c in classes:
        idx = np.where(labels == c)[0]
        held.append(rng.permutation(idx)[:per_class])
    held_idx = np.concatenate(held).astype(np.int64) if held else np.zeros(0, dtype=np.int64)
    mask = np.ones(len(labels), dtype=bool)
    mask[held_idx] = False
    return np.flatnonzero(mask).astype(np.int64), held_idx


def longtail_train_val(
    labels: np.ndarray, ratio: float, profile: str, seed: int, val_per_class: int
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Split a balanced training pool into a long-tailed train set and a balanced validation set.

    Validation images are held out of the full pool first (``balanced_holdout``), then the long-tail
    selection runs on the remainder, so validation is balanced and disjoint from train, and the tail classes
    keep their full count. With ``val_per_class == 0`` nothing is held out and the selection is exactly
    LDAM-DRW's. ``n_max`` is the smallest per-class count left in the pool (5000 on full CIFAR-10, as LDAM's
    ``len(data) / cls_num``; ``5000 - val_per_class`` with a holdout).

    Args:
        labels: (N,) class labels of the balanced pool.
        ratio: imbalance ratio n_max / n_min.
        profile: ``"exp"`` or ``"step"``.
        seed: subsampling seed (LDAM-DRW's ``rand_number``); also seeds the holdout.
        val_per_class: validation images per class (0: no validation split).
    Returns:
        (train_idx, val_idx, counts): indices into ``labels`` and the per-class train counts.
    Raises:
        ConfigError: naming ``data.val_per_class`` or ``data.imbalance_ratio`` if a class would get no training
            image.
    """
    labels = np.asarray(labels)
    if val_per_class > 0:
        pool, val_idx = balanced_holdout(labels, val_per_class, seed)
    else:
        pool, val_idx = np.arange(len(labels), dtype=np.int64), np.zeros(0, dtype=np.int64)
    pool_labels = labels[pool]
    n_max = int(np.bincount(pool_labels)[np.unique(pool_labels)].min())
    counts = longtail_counts(n_max, len(np.unique(pool_labels)), ratio, profile)
    check_every_class_kept(counts, ratio=ratio, profile=profile, n_max=n_max, val_per_class=val_per_class)
    train_idx = pool[longtail_indices(pool_labels, counts, seed)]
    return train_idx, val_idx, counts


def first_per_class(labels: np.ndarray, k: int | None) -> np.ndarray:
    """Positions of the first ``k`` occurrences of every class, in their original order (all if ``k`` is None).

    Args:
        labels: (N,) class labels in selection order.
        k: cap per class, or None for no cap.
    Returns:
        ascending int64 positions into ``labels``.
    """
    labels = np.asarray(labels)
    if k is None:
        return np.arange(len(labels), dtype=np.int64)
    if k < 1:
        raise ValueError(f"per-class cap {k} must be >= 1")
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank_in_class = np.arange(len(labels)) - starts
    return np.sort(order[rank_in_class < k]).astype(np.int64)
