"""Classification metrics of logits: the standard long-tail summary, and a post-hoc logit-adjustment sweep.

The sweep evaluates argmax_y f_y(x) - tau * log pi_y for many tau at once (post-hoc logit adjustment,
Menon et al. 2021, "Long-tail learning via logit adjustment", eq. 7, https://arxiv.org/abs/2007.07314).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from elm.metrics.accuracy import (
    DEFAULT_FEW_THRESHOLD,
    DEFAULT_MANY_THRESHOLD,
    GROUP_NAMES,
    balanced_accuracy,
    group_accuracies,
    group_of_classes,
    per_class_accuracy,
    top1_accuracy,
)
from elm.metrics.calibration import DEFAULT_BINS, expected_calibration_error, group_calibration_errors

# Upper bound on the elements of one (examples, classes) block of ``correct_tau_intervals``, to bound memory.
CHUNK_ELEMENTS = 1 << 24


def _check(logits: Tensor, targets: Tensor, class_counts: Tensor) -> None:
    if logits.ndim != 2 or targets.shape != logits.shape[:1] or class_counts.shape != logits.shape[1:]:
        raise ValueError(
            f"need logits (N, C), targets (N,), class_counts (C,); got {tuple(logits.shape)}, "
            f"{tuple(targets.shape)}, {tuple(class_counts.shape)}"
        )


def classification_metrics(
    logits: Tensor,
    targets: Tensor,
    class_counts: Tensor,
    many_threshold: int = DEFAULT_MANY_THRESHOLD,
    few_threshold: int = DEFAULT_FEW_THRESHOLD,
    n_bins: int = DEFAULT_BINS,
) -> dict[str, float]:
    """``acc``, ``balanced_acc``, ``acc_many``/``acc_medium``/``acc_few`` (empty groups omitted) and ``ece``.

    Args:
        logits: (N, C).
        targets: (N,) labels.
        class_counts: (C,) training images per class (defines the groups).
        many_threshold, few_threshold: group boundaries, see ``group_of_classes``.
        n_bins: confidence bins of the ECE.
    """
    _check(logits, targets, class_counts)
    num_classes = logits.shape[1]
    out = {"acc": top1_accuracy(logits, targets), "balanced_acc": balanced_accuracy(logits, targets, num_classes)}
    per_class = per_class_accuracy(logits, targets, num_classes)
    out.update(group_accuracies(per_class, class_counts, many_threshold, few_threshold))
    out["ece"] = expected_calibration_error(logits, targets, n_bins)
    return out


def _log_prior(class_counts: Tensor) -> Tensor:
    """(C,) float64 log pi_y = log(n_y / sum n)."""
    if bool((class_counts <= 0).any()):
        raise ValueError("class_counts must be positive to take the log prior")
    counts = class_counts.double()
    return (counts / counts.sum()).log()


def correct_tau_intervals(logits: Tensor, targets: Tensor, log_prior: Tensor) -> tuple[Tensor, Tensor]:
    """The open interval of tau on which argmax_c (f_c - tau * log_prior_c) is the target, per example.

    Example n is correct iff a_c - tau * b_c > 0 for every c != y, with a_c = f_y - f_c and
    b_c = log_prior_y - log_prior_c: each constraint bounds tau on one side, so the set is an interval
    (lo, hi). It is empty (lo = hi = inf) when some class with b_c = 0 has a_c <= 0. Exact ties count as errors.

    Args:
        logits: (N, C).
        targets: (N,) labels.
        log_prior: (C,) log class prior.

    Returns:
        lo, hi: (N,) float64 each.
    """
    n, c = logits.shape
    rows = max(1, CHUNK_ELEMENTS // c)
    lo_parts, hi_parts = [], []
    for start in range(0, n, rows):
        f = logits[start : start + rows].double()
        y = targets[start : start + rows]
        a = f.gather(1, y[:, None]) - f  # (rows, C)
        b = log_prior[y][:, None] - log_prior[None, :]  # (rows, C)
        rival = torch.ones_like(a, dtype=torch.bool).scatter(1, y[:, None], False)
        ratio = a / b  # inf / nan where b == 0, masked out below
        hi = torch.where(rival & (b > 0), ratio, math.inf).min(dim=1).values
        lo = torch.where(rival & (b < 0), ratio, -math.inf).max(dim=1).values
        blocked = (rival & (b == 0) & (a <= 0)).any(dim=1) | (lo >= hi)
        lo_parts.append(lo.masked_fill(blocked, math.inf))
        hi_parts.append(hi.masked_fill(blocked, math.inf))
    return torch.cat(lo_parts), torch.cat(hi_parts)


def _rows_by_class(values: Tensor, targets: Tensor, n_eval: Tensor) -> Tensor:
    """(C, M) matrix whose row c holds class c's ``values`` sorted ascending, padded with +inf (M = max n_eval)."""
    order = torch.argsort(values, stable=True)
    order = order[torch.argsort(targets[order], stable=True)]  # by class, then by value
    cls = targets[order]
    rank = torch.arange(len(order)) - (torch.cumsum(n_eval, 0) - n_eval)[cls]
    rows = torch.full((len(n_eval), int(n_eval.max())), math.inf, dtype=torch.float64)
    rows[cls, rank] = values[order].double()
    return rows


def correct_per_class(logits: Tensor, targets: Tensor, direction: Tensor, taus: Tensor) -> Tensor:
    """Correct examples of each class when predicting argmax_c (f_c - tau * direction_c), for every tau at once.

    With ``direction`` = log prior this is post-hoc logit adjustment (Menon et al. 2021, eq. 7); any (C,) vector
    works, e.g. the log prior restricted to one frequency group (a per-group tau, the others folded into
    ``logits``). Exact, from the per-example intervals of ``correct_tau_intervals``: O(N C + C T log N).

    Args:
        logits: (N, C).
        targets: (N,) labels.
        direction: (C,) the vector tau multiplies.
        taus: (T,) adjustment strengths.

    Returns:
        (T, C) float64 counts.
    """
    num_classes = logits.shape[1]
    lo, hi = correct_tau_intervals(logits, targets, direction.double())
    n_eval = torch.bincount(targets, minlength=num_classes)
    grid = taus.double()[None, :].expand(num_classes, -1).contiguous()  # (C, T)
    entered = torch.searchsorted(_rows_by_class(lo, targets, n_eval), grid, right=False)  # #{lo < tau}
    left = torch.searchsorted(_rows_by_class(hi, targets, n_eval), grid, right=True)  # #{hi <= tau}
    return (entered - left).t().double()


def posthoc_sweep(
    logits: Tensor,
    targets: Tensor,
    class_counts: Tensor,
    taus: Sequence[float],
    many_threshold: int = DEFAULT_MANY_THRESHOLD,
    few_threshold: int = DEFAULT_FEW_THRESHOLD,
) -> dict[float, dict[str, float]]:
    """Accuracy of post-hoc adjusted logits ``logits - tau * log pi`` for every tau (Menon et al. 2021, eq. 7).

    Each example is correct on an open interval (lo, hi) of tau (``correct_tau_intervals``), so the number of
    correct examples of class c at tau is #{lo < tau} - #{hi <= tau}, read off per-class sorted endpoints with
    one batched ``searchsorted``: O(N C + C T log N), no (taus x examples x classes) tensor. 1,000 taus over
    10,000 x 100 logits take milliseconds.

    Args:
        logits: (N, C) unadjusted logits.
        targets: (N,) labels.
        class_counts: (C,) positive training counts; pi = counts / counts.sum().
        taus: adjustment strengths.

    Returns:
        ``{tau: {"acc", "balanced_acc", "acc_many", "acc_medium", "acc_few"}}`` (empty groups omitted).
    """
    _check(logits, targets, class_counts)
    num_classes = logits.shape[1]
    tau_all = torch.as_tensor(list(taus), dtype=torch.float64)
    hits = correct_per_class(logits, targets, _log_prior(class_counts), tau_all)  # (T, C)
    n_eval = torch.bincount(targets, minlength=num_classes)
    present = n_eval > 0
    n = n_eval.double()
    groups = group_of_classes(class_counts, many_threshold, few_threshold)
    rows: dict[str, Tensor] = {
        "acc": hits.sum(dim=1) / len(targets),
        "balanced_acc": (hits[:, present] / n[present]).mean(dim=1),
    }
    for g, name in enumerate(GROUP_NAMES):
        cols = present & (groups == g)
        if bool(cols.any()):
            rows[f"acc_{name}"] = (hits[:, cols] / n[cols]).mean(dim=1)
    values = {k: v.tolist() for k, v in rows.items()}
    return {tau: {k: v[i] for k, v in values.items()} for i, tau in enumerate(tau_all.tolist())}


def calibration_by_group(
    logits: Tensor,
    targets: Tensor,
    class_counts: Tensor,
    taus: Sequence[float],
    many_threshold: int = DEFAULT_MANY_THRESHOLD,
    few_threshold: int = DEFAULT_FEW_THRESHOLD,
    n_bins: int = DEFAULT_BINS,
) -> dict[str, float]:
    """ECE per Many / Medium / Few before post-hoc adjustment (``ece_many``, ...) and, for each tau, ECE overall
    and per group of the softmax of ``logits - tau * log pi`` (``posthoc_tau<tau>/ece``, ``.../ece_many``, ...).

    Groups are of the true class (``group_calibration_errors``); empty groups are omitted. Guo et al. 2017, eq. 3;
    the adjustment is Menon et al. 2021, eq. 7.

    Args:
        logits: (N, C).
        targets: (N,) labels.
        class_counts: (C,) positive training counts.
        taus: adjustment strengths.
    """
    _check(logits, targets, class_counts)
    groups = group_of_classes(class_counts, many_threshold, few_threshold)
    out = group_calibration_errors(logits, targets, groups, GROUP_NAMES, n_bins)
    lp = _log_prior(class_counts)
    for tau in taus:
        adjusted = logits.float() - float(tau) * lp.float()[None, :]  # float32: (N, C) can be 50,000 x 1,000
        out[f"posthoc_tau{float(tau):g}/ece"] = expected_calibration_error(adjusted, targets, n_bins)
        out.update(
            {
                f"posthoc_tau{float(tau):g}/{k}": v
                for k, v in group_calibration_errors(adjusted, targets, groups, GROUP_NAMES, n_bins).items()
            }
        )
    return out
