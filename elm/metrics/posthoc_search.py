"""Post-hoc adjustment searched on stored logits: a global tau, a tau per frequency group, and a known shifted
test prior. Pure functions on CPU tensors; ``platform.posthoc`` runs them per trial.

- Global tau: argmax_y f_y(x) - tau * log pi_y (Menon et al. 2021, "Long-tail learning via logit adjustment",
  eq. 7, https://arxiv.org/abs/2007.07314).
- Per-group tau: tau_g for the classes of group g (Many / Medium / Few, ``group_of_classes``), searched on a grid
  of every combination.
- Shifted test prior: a test set whose labels follow pi_t instead of the uniform prior, made by reweighting the
  balanced test set (class y weighs pi_t(y) / pi_test(y)); its accuracy is sum_y pi_t(y) * recall_y. Priors are
  "forward / backward imbalance k" (Hong et al. 2021, LADE, "Disentangling Label Distribution for Long-tailed
  Visual Recognition", Sec. 5, https://arxiv.org/abs/2012.00321): the classes in training-frequency order (forward)
  or reversed (backward) with geometric weights from k down to 1. With the prior known, the Bayes-optimal
  adjustment for label shift is f_y(x) - tau * log pi_train(y) + log pi_t(y) (Menon et al. 2021, Sec. 4 with a
  non-uniform target; Hong et al. 2021, eq. 3).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal, Sequence

import torch
from torch import Tensor

from elm.metrics.classification import correct_per_class

Direction = Literal["forward", "backward"]


def log_prior(class_counts: Tensor) -> Tensor:
    """(C,) float64 log(n_y / sum n). Raises ValueError on a non-positive count."""
    if bool((class_counts <= 0).any()):
        raise ValueError("class_counts must be positive to take the log prior")
    c = class_counts.double()
    return (c / c.sum()).log()


def shifted_prior(class_counts: Tensor, k: float, direction: Direction) -> Tensor:
    """A test label prior with imbalance ratio ``k`` (Hong et al. 2021, Sec. 5).

    The class of training-frequency rank r (0 = most frequent; ties keep class order) gets weight k^(-r/(C-1))
    (``forward``: the head stays the head) or k^(-(C-1-r)/(C-1)) (``backward``: the tail becomes the head).
    k = 1 is the uniform prior.

    Args:
        class_counts: (C,) training images per class.
        k: max / min target class frequency, >= 1.
        direction: ``forward`` or ``backward``.

    Returns:
        (C,) float64, sums to 1.
    """
    if k < 1:
        raise ValueError(f"imbalance k={k} must be >= 1")
    if direction not in ("forward", "backward"):
        raise ValueError(f"direction={direction!r} must be 'forward' or 'backward'")
    c = class_counts.shape[0]
    rank = torch.empty(c, dtype=torch.float64)
    rank[torch.argsort(-class_counts.double(), stable=True)] = torch.arange(c, dtype=torch.float64)
    if direction == "backward":
        rank = (c - 1) - rank
    w = torch.as_tensor(float(k), dtype=torch.float64) ** (-rank / max(c - 1, 1))
    return w / w.sum()


def prior_weighted_accuracy(hits: Tensor, n_eval: Tensor, target_prior: Tensor | None = None) -> Tensor:
    """Accuracy on the evaluation set reweighted to ``target_prior``: sum_y pi_t(y) * hits_y / n_y over the
    classes present (pi_t renormalised over them). None gives balanced accuracy (the uniform prior).

    Args:
        hits: (..., C) correct examples per class.
        n_eval: (C,) examples per class.
        target_prior: (C,) or None.

    Returns:
        (...,) float64.
    """
    present = n_eval > 0
    prior = torch.ones(len(n_eval), dtype=torch.float64) if target_prior is None else target_prior.double()
    w = torch.where(present, prior, torch.zeros_like(prior))
    w = w / w.sum()
    recall = hits.double()[..., present] / n_eval.double()[present]
    return (recall * w[present]).sum(dim=-1)


def tau_curve(
    logits: Tensor,
    targets: Tensor,
    class_counts: Tensor,
    taus: Tensor,
    target_prior: Tensor | None = None,
    *,
    add_target_log_prior: bool = True,
) -> Tensor:
    """(T,) accuracy of argmax_y f_y - tau * log pi_train(y) [+ log pi_t(y)] for each tau, under the target prior.

    Args:
        logits: (N, C); targets: (N,); class_counts: (C,) training counts; taus: (T,).
        target_prior: (C,) the test label prior the accuracy is weighted to; None is uniform (balanced accuracy).
        add_target_log_prior: add log pi_t to the scores (the prior is known); False reads the balanced rule
            under the shifted prior.
    """
    f = logits.double()
    if target_prior is not None and add_target_log_prior:
        f = f + target_prior.double().log()[None, :]
    hits = correct_per_class(f, targets, log_prior(class_counts), taus)
    return prior_weighted_accuracy(hits, torch.bincount(targets, minlength=logits.shape[1]), target_prior)


def group_tau_grid(logits: Tensor, targets: Tensor, class_counts: Tensor, groups: Tensor, taus: Tensor) -> Tensor:
    """Balanced accuracy for every combination of one tau per group present in ``groups``.

    The classes of group g are adjusted by tau_g * log pi_train(y). For each combination of the other groups' taus,
    the last group's tau is swept exactly with ``correct_per_class`` (the score is linear in it), so the grid costs
    T^(G-1) sweeps, not T^G evaluations.

    Args:
        logits: (N, C); targets: (N,); class_counts: (C,) training counts.
        groups: (C,) group index per class; the present groups, in increasing index, are the grid's axes.
        taus: (T,) the values each group's tau takes.

    Returns:
        (T,) * G float64 balanced accuracies; axis i is the i-th present group.
    """
    lp = log_prior(class_counts)
    present = torch.unique(groups).tolist()
    dirs = [torch.where(groups == g, lp, torch.zeros_like(lp)) for g in present]  # (C,) each
    n_eval = torch.bincount(targets, minlength=logits.shape[1])
    f = logits.double()
    t = taus.double()
    out = torch.empty((len(t),) * len(present), dtype=torch.float64)
    for idx in itertools.product(range(len(t)), repeat=len(present) - 1):
        shift = sum((t[i] * d for i, d in zip(idx, dirs[:-1])), torch.zeros_like(lp))
        hits = correct_per_class(f - shift[None, :], targets, dirs[-1], t)
        out[idx] = prior_weighted_accuracy(hits, n_eval)
    return out


def per_class_tau(groups: Tensor, group_taus: Sequence[float], present: Sequence[int]) -> Tensor:
    """(C,) tau of each class from one tau per present group (``present[i]`` takes ``group_taus[i]``)."""
    tau = torch.zeros(groups.shape, dtype=torch.float64)
    for g, v in zip(present, group_taus):
        tau[groups == g] = float(v)
    return tau


def adjusted_logits(
    logits: Tensor, class_counts: Tensor, tau: float | Tensor, target_prior: Tensor | None = None
) -> Tensor:
    """(N, C) f - tau * log pi_train [+ log pi_t]; ``tau`` a number or a (C,) per-class tau."""
    out = logits.double() - torch.as_tensor(tau, dtype=torch.float64) * log_prior(class_counts)[None, :]
    return out if target_prior is None else out + target_prior.double().log()[None, :]


@dataclass(frozen=True)
class Choice:
    """A setting chosen on one split and read on another.

    Attributes:
        index: the chosen point's index in the searched grid (a tuple for a grid of several axes).
        selected: the value on the split it was chosen on.
        reported: the value at the same point on the reporting split.
    """

    index: tuple[int, ...]
    selected: float
    reported: float


def choose(select: Tensor, report: Tensor) -> Choice:
    """The best point of ``select`` (first in row-major order among ties) and ``report`` there.

    Args:
        select, report: values on the same grid, any shape.
    """
    if select.shape != report.shape or select.numel() == 0:
        raise ValueError(f"select {tuple(select.shape)} and report {tuple(report.shape)} must be equal, non-empty")
    flat = int(torch.argmax(select.reshape(-1)))  # first maximum
    idx = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), select.shape))
    return Choice(index=idx, selected=float(select[idx]), reported=float(report[idx]))
