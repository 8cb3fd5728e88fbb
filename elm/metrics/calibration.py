"""Expected calibration error (Guo et al. 2017, "On Calibration of Modern Neural Networks", eq. 3,
https://arxiv.org/abs/1706.04599): equal-width confidence bins on [0, 1], |accuracy - confidence| per bin,
weighted by the fraction of examples in the bin; per frequency group, and the points of a reliability diagram.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

DEFAULT_BINS = 15  # Guo et al. 2017 use M = 15 bins


def binned_calibration_error(confidences: Tensor, correct: Tensor, n_bins: int = DEFAULT_BINS) -> float:
    """ECE from per-example confidences; bin m holds confidences in ((m-1)/M, m/M] (0 falls in the first bin).

    Args:
        confidences: (N,) predicted-class probability in [0, 1].
        correct: (N,) bool, whether the prediction is right.
        n_bins: M.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins={n_bins!r} must be >= 1")
    if confidences.ndim != 1 or confidences.shape != correct.shape or confidences.numel() == 0:
        raise ValueError(f"confidences and correct must be equal non-empty (N,); got {tuple(confidences.shape)}")
    conf = confidences.double()
    inner_edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64)[1:-1]
    bins = torch.bucketize(conf, inner_edges, right=False)  # edges[m-1] < c <= edges[m]
    conf_sum = torch.bincount(bins, weights=conf, minlength=n_bins)
    hit_sum = torch.bincount(bins, weights=correct.double(), minlength=n_bins)
    # sum_m |B_m|/N * |acc(B_m) - conf(B_m)| = sum_m |hits_m - conf_m| / N
    return float((hit_sum - conf_sum).abs().sum() / conf.numel())


def expected_calibration_error(
    scores: Tensor,
    targets: Tensor,
    n_bins: int = DEFAULT_BINS,
    *,
    inputs: Literal["logits", "probs"] = "logits",
) -> float:
    """ECE of the top-1 prediction (Guo et al. 2017, eq. 3).

    Args:
        scores: (N, C) logits (softmax is applied) or probabilities, as ``inputs`` says.
        targets: (N,) true labels.
        n_bins: number of equal-width confidence bins M.
        inputs: ``"logits"`` or ``"probs"``.
    """
    if inputs not in ("logits", "probs"):
        raise ValueError(f"inputs={inputs!r} must be 'logits' or 'probs'")
    if scores.ndim != 2 or targets.shape != scores.shape[:1]:
        raise ValueError(f"scores must be (N, C) and targets (N,); got {tuple(scores.shape)}, {tuple(targets.shape)}")
    probs = scores.float().softmax(dim=1) if inputs == "logits" else scores.float()
    confidences, preds = probs.max(dim=1)
    return binned_calibration_error(confidences.double(), preds == targets, n_bins)


def reliability_bins(confidences: Tensor, correct: Tensor, n_bins: int = DEFAULT_BINS) -> tuple[Tensor, Tensor, Tensor]:
    """The points of a reliability diagram (Guo et al. 2017, Fig. 1): per confidence bin, as in
    ``binned_calibration_error``, the mean confidence, the accuracy and the number of examples.

    Args:
        confidences: (N,) predicted-class probability in [0, 1].
        correct: (N,) bool.
        n_bins: M.

    Returns:
        confidence (M,), accuracy (M,) (nan in empty bins) and count (M,) float64.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins={n_bins!r} must be >= 1")
    if confidences.ndim != 1 or confidences.shape != correct.shape or confidences.numel() == 0:
        raise ValueError(f"confidences and correct must be equal non-empty (N,); got {tuple(confidences.shape)}")
    conf = confidences.double()
    bins = torch.bucketize(conf, torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64)[1:-1], right=False)
    size = torch.bincount(bins, minlength=n_bins).double()
    mean_conf = torch.bincount(bins, weights=conf, minlength=n_bins) / size
    acc = torch.bincount(bins, weights=correct.double(), minlength=n_bins) / size
    return mean_conf, acc, size


def group_calibration_errors(
    logits: Tensor, targets: Tensor, groups: Tensor, names: tuple[str, ...], n_bins: int = DEFAULT_BINS
) -> dict[str, float]:
    """ECE (Guo et al. 2017, eq. 3) over the examples whose true class is in each group: ``ece_<name>``.

    Grouping by the true class (not the predicted one) asks how trustworthy the confidence is on the images of
    the Many / Medium / Few classes; a group without examples has no key.

    Args:
        logits: (N, C).
        targets: (N,) labels.
        groups: (C,) group index of each class (e.g. ``elm.metrics.accuracy.group_of_classes``).
        names: group index -> name (``GROUP_NAMES``).
        n_bins: M.
    """
    if groups.ndim != 1 or groups.shape[0] != logits.shape[1]:
        raise ValueError(f"groups must be (C,) = ({logits.shape[1]},); got {tuple(groups.shape)}")
    example_group = groups[targets]
    out: dict[str, float] = {}
    for g, name in enumerate(names):
        mask = example_group == g
        if bool(mask.any()):
            out[f"ece_{name}"] = expected_calibration_error(logits[mask], targets[mask], n_bins)
    return out
