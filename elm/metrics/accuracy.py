"""Accuracy metrics for long-tailed classification: overall, per class, balanced, and per frequency group.

The many/medium/few split follows Liu et al. 2019, "Large-Scale Long-Tailed Recognition in an Open World"
(OLTR, https://arxiv.org/abs/1904.05160): a class is *many*-shot with more than 100 training images, *few*-shot
with fewer than 20, and *medium*-shot otherwise (20..100 inclusive). Group accuracy is the mean of the
per-class accuracies within the group, so it does not depend on how the evaluation set is balanced.
"""

from __future__ import annotations

import torch
from torch import Tensor

GROUP_NAMES = ("many", "medium", "few")  # group g of ``group_of_classes`` is GROUP_NAMES[g]
MANY, MEDIUM, FEW = range(len(GROUP_NAMES))
DEFAULT_MANY_THRESHOLD = 100  # OLTR: many-shot means > 100 training images
DEFAULT_FEW_THRESHOLD = 20  # OLTR: few-shot means < 20 training images


def _labels(preds: Tensor) -> Tensor:
    """(N,) predicted labels from (N,) labels or (N, C) scores (argmax)."""
    if preds.ndim == 2:
        return preds.argmax(dim=1)
    if preds.ndim == 1:
        return preds
    raise ValueError(f"preds must be (N,) labels or (N, C) scores, got shape {tuple(preds.shape)}")


def _check_targets(preds: Tensor, targets: Tensor) -> None:
    if targets.ndim != 1 or preds.shape[0] != targets.shape[0]:
        raise ValueError(f"targets must be (N,) matching preds; got {tuple(targets.shape)} vs {tuple(preds.shape)}")
    if targets.numel() == 0:
        raise ValueError("targets is empty: cannot compute a metric over zero examples")


def top1_accuracy(preds: Tensor, targets: Tensor) -> float:
    """Fraction of examples whose predicted label equals the target.

    Args:
        preds: (N,) predicted labels, or (N, C) scores whose argmax is the prediction.
        targets: (N,) true labels.
    """
    _check_targets(preds, targets)
    return float((_labels(preds) == targets).double().mean())


def per_class_accuracy(preds: Tensor, targets: Tensor, num_classes: int) -> Tensor:
    """Recall of each class: correct / present, with nan for classes absent from ``targets``.

    Args:
        preds: (N,) predicted labels, or (N, C) scores.
        targets: (N,) true labels in [0, num_classes).
        num_classes: C.

    Returns:
        (C,) float64.
    """
    _check_targets(preds, targets)
    if int(targets.min()) < 0 or int(targets.max()) >= num_classes:
        raise ValueError(f"targets must lie in [0, num_classes={num_classes})")
    correct = (_labels(preds) == targets).double()
    hits = torch.bincount(targets, weights=correct, minlength=num_classes)
    present = torch.bincount(targets, minlength=num_classes).double()
    return hits / present  # 0 / 0 = nan for absent classes


def balanced_accuracy(preds: Tensor, targets: Tensor, num_classes: int | None = None) -> float:
    """Mean per-class accuracy over the classes present in ``targets`` (Brodersen et al. 2010).

    Args:
        preds: (N,) predicted labels, or (N, C) scores.
        targets: (N,) true labels.
        num_classes: C; defaults to the number of columns of ``preds`` or max label + 1.
    """
    if num_classes is None:
        num_classes = preds.shape[1] if preds.ndim == 2 else int(torch.maximum(preds.max(), targets.max())) + 1
    return float(per_class_accuracy(preds, targets, num_classes).nanmean())


def group_of_classes(
    class_counts: Tensor, many_threshold: int = DEFAULT_MANY_THRESHOLD, few_threshold: int = DEFAULT_FEW_THRESHOLD
) -> Tensor:
    """Frequency group of each class (Liu et al. 2019): many (> many_threshold training images),
    few (< few_threshold), medium (few_threshold..many_threshold inclusive).

    Args:
        class_counts: (C,) training images per class.
        many_threshold: a class with strictly more images is many-shot.
        few_threshold: a class with strictly fewer images is few-shot.

    Returns:
        (C,) int64 with values MANY=0, MEDIUM=1, FEW=2 (names in ``GROUP_NAMES``).
    """
    if class_counts.ndim != 1:
        raise ValueError(f"class_counts must be (C,), got shape {tuple(class_counts.shape)}")
    if few_threshold > many_threshold:
        raise ValueError(f"few_threshold={few_threshold} must be <= many_threshold={many_threshold}")
    groups = torch.full(class_counts.shape, MEDIUM, dtype=torch.int64)
    groups[class_counts > many_threshold] = MANY
    groups[class_counts < few_threshold] = FEW
    return groups


def group_means(values: Tensor, groups: Tensor, prefix: str) -> dict[str, float]:
    """Mean of per-class ``values`` within each group, ignoring nan; groups with no finite value are omitted.

    Args:
        values: (C,) one value per class (nan where undefined).
        groups: (C,) output of ``group_of_classes``.
        prefix: key prefix, e.g. ``"acc_"`` gives ``acc_many``, ``acc_medium``, ``acc_few``.
    """
    out: dict[str, float] = {}
    for g, name in enumerate(GROUP_NAMES):
        v = values[groups == g]
        v = v[~v.isnan()]
        if v.numel() > 0:
            out[f"{prefix}{name}"] = float(v.double().mean())
    return out


def group_accuracies(
    per_class_acc: Tensor,
    class_counts: Tensor,
    many_threshold: int = DEFAULT_MANY_THRESHOLD,
    few_threshold: int = DEFAULT_FEW_THRESHOLD,
) -> dict[str, float]:
    """``{"acc_many", "acc_medium", "acc_few"}``: mean per-class accuracy within each frequency group.

    A group with no class present in the evaluation set has no accuracy; its key is omitted (never nan),
    so the dict can go straight to a logger.

    Args:
        per_class_acc: (C,) output of ``per_class_accuracy`` (nan for absent classes).
        class_counts: (C,) training images per class.
    """
    if per_class_acc.shape != class_counts.shape:
        raise ValueError(
            f"per_class_acc {tuple(per_class_acc.shape)} and class_counts {tuple(class_counts.shape)} must match"
        )
    return group_means(per_class_acc, group_of_classes(class_counts, many_threshold, few_threshold), "acc_")
