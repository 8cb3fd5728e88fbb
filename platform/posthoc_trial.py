"""One trial's post-hoc analysis on its stored logits (``platform.posthoc`` runs it over a sweep).

Every setting is chosen on the validation split (test, flagged as an oracle, without one) and read once on test:
a global tau (Menon et al. 2021, eq. 7, https://arxiv.org/abs/2007.07314), a tau per group on a grid, and shifted
test priors (Hong et al. 2021, LADE, https://arxiv.org/abs/2012.00321) adjusted with the known prior.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from elm.metrics.accuracy import GROUP_NAMES, group_means, group_of_classes, per_class_accuracy
from elm.metrics.calibration import group_calibration_errors, expected_calibration_error
from elm.metrics.classification import correct_per_class
from elm.metrics.posthoc_search import (
    adjusted_logits,
    choose,
    group_tau_grid,
    log_prior,
    per_class_tau,
    prior_weighted_accuracy,
    shifted_prior,
    tau_curve,
)
from elm.metrics.stored_logits import StoredLogits


GLOBAL_TAUS = tuple(round(0.05 * i, 2) for i in range(61))  # 0 .. 3
GROUP_TAUS = tuple(round(0.25 * i, 2) for i in range(13))  # 0 .. 3, each group (13^3 = 2,197 points with 3 groups)
SHIFTS = (2.0, 5.0, 10.0, 25.0, 50.0)  # imbalance k of the shifted test priors (LADE's range)
RELIABILITY_BINS = 15
NO_ADJUSTMENT, TAU_ONE, GLOBAL, PER_GROUP = "none", "tau=1 (paper)", "global tau", "tau per group"
BALANCED_ONLY, KNOWN_PRIOR_ONE, KNOWN_PRIOR = "balanced post-hoc", "known prior, tau=1", "known prior, tau"
UNIFORM = "uniform"


@dataclass(frozen=True)
class Splits:
    """The splits one trial is chosen and read on (torch, float32 logits)."""

    select: tuple[torch.Tensor, torch.Tensor]
    report: tuple[torch.Tensor, torch.Tensor]
    selected_on: str  # "val", or "test (oracle)" when there is no validation split
    counts: torch.Tensor


def splits_of(stored: StoredLogits) -> Splits:
    """Validation for selection and test for the report; test for both (flagged) without a validation split.

    Raises:
        ValueError: no test split in the file.
    """
    if "test" not in stored.splits:
        raise ValueError(f"stored logits hold {sorted(stored.splits)}, no test split")
    t = {k: (torch.from_numpy(f), torch.from_numpy(y)) for k, (f, y) in stored.splits.items()}
    select, on = (t["val"], "val") if "val" in t else (t["test"], "test (oracle)")
    return Splits(select, t["test"], on, torch.from_numpy(stored.class_counts))


def _row(method: str, test_prior: str, setting: str, val: float, test: float) -> dict[str, Any]:
    """One row of ``TrialAnalysis.rows``: a method under a test prior, its setting, and its two accuracies."""
    return {"method": method, "test_prior": test_prior, "setting": setting, "val": val, "test": test}


def _balanced_row(
    method: str, setting: str, val: float, scores: torch.Tensor, targets: torch.Tensor, counts: torch.Tensor
) -> dict[str, Any]:
    """Test balanced accuracy, Many/Medium/Few and ECE (overall, per group) of adjusted ``scores``."""
    groups = group_of_classes(counts)
    per_class = per_class_accuracy(scores, targets, scores.shape[1])
    row = _row(method, UNIFORM, setting, val, float(per_class.nanmean()))
    row.update({f"test_{k}": v for k, v in group_means(per_class, groups, "acc_").items()})
    row["ece"] = expected_calibration_error(scores.float(), targets, RELIABILITY_BINS)
    row.update(group_calibration_errors(scores.float(), targets, groups, GROUP_NAMES, RELIABILITY_BINS))
    return row


@dataclass(frozen=True)
class TrialAnalysis:
    """One trial's post-hoc analysis.

    Attributes:
        rows: one per (method, test prior): ``val`` (on the selection split) and ``test`` are balanced accuracy
            under the uniform prior, else the accuracy under the shifted prior.
        tau_star: the global tau chosen on ``selected_on``.
        curve: balanced accuracy per ``GLOBAL_TAUS`` value, on the selection split and on test.
    """

    rows: list[dict[str, Any]]
    tau_star: float
    curve: dict[str, list[float]]


def analyse(stored: StoredLogits) -> TrialAnalysis:
    """Every method of the module docstring on one trial's stored logits."""
    s = splits_of(stored)
    (fv, yv), (ft, yt), counts = s.select, s.report, s.counts
    taus, gtaus = torch.tensor(GLOBAL_TAUS, dtype=torch.float64), torch.tensor(GROUP_TAUS, dtype=torch.float64)
    zero, one = GLOBAL_TAUS.index(0.0), GLOBAL_TAUS.index(1.0)
    lp = log_prior(counts)
    hits_v, hits_t = correct_per_class(fv, yv, lp, taus), correct_per_class(ft, yt, lp, taus)  # (T, C), every prior
    n_v, n_t = torch.bincount(yv, minlength=len(counts)), torch.bincount(yt, minlength=len(counts))
    curve_v, curve_t = prior_weighted_accuracy(hits_v, n_v), prior_weighted_accuracy(hits_t, n_t)  # balanced
    rows = [
        _balanced_row(NO_ADJUSTMENT, "tau=0", float(curve_v[zero]), ft, yt, counts),
        _balanced_row(TAU_ONE, "tau=1", float(curve_v[one]), adjusted_logits(ft, counts, 1.0), yt, counts),
    ]
    glob = choose(curve_v, curve_t)
    tau_star = float(taus[glob.index[0]])
    rows.append(
        _balanced_row(GLOBAL, f"tau={tau_star:g}", glob.selected, adjusted_logits(ft, counts, tau_star), yt, counts)
    )
    groups = group_of_classes(counts)
    present = torch.unique(groups).tolist()
    grid = group_tau_grid(fv, yv, counts, groups, gtaus)
    best = choose(grid, grid)  # test is read at this one point only
    chosen = [float(gtaus[i]) for i in best.index]
    setting = ", ".join(f"tau_{GROUP_NAMES[g]}={v:g}" for g, v in zip(present, chosen))
    rows.append(
        _balanced_row(
            PER_GROUP,
            setting,
            best.selected,
            adjusted_logits(ft, counts, per_class_tau(groups, chosen, present)),
            yt,
            counts,
        )
    )
    for direction in ("forward", "backward"):
        for k in SHIFTS:
            prior = shifted_prior(counts, k, direction)  # type: ignore[arg-type]
            name = f"{direction} {k:g}"
            plain_v = prior_weighted_accuracy(hits_v, n_v, prior)  # the balanced rule read under the prior
            plain_t = prior_weighted_accuracy(hits_t, n_t, prior)
            known_v, known_t = tau_curve(fv, yv, counts, taus, prior), tau_curve(ft, yt, counts, taus, prior)
            kc = choose(known_v, known_t)
            rows += [
                _row(NO_ADJUSTMENT, name, "tau=0", float(plain_v[zero]), float(plain_t[zero])),
                _row(
                    BALANCED_ONLY,
                    name,
                    f"tau={tau_star:g} (chosen for uniform)",
                    float(plain_v[glob.index[0]]),
                    float(plain_t[glob.index[0]]),
                ),
                _row(KNOWN_PRIOR_ONE, name, "tau=1", float(known_v[one]), float(known_t[one])),
                _row(KNOWN_PRIOR, name, f"tau={float(taus[kc.index[0]]):g}", kc.selected, kc.reported),
            ]
    for r in rows:
        r["selected_on"] = s.selected_on
    return TrialAnalysis(rows, tau_star, {"select": curve_v.tolist(), "test": curve_t.tolist()})
