"""Embedding geometry of one feature space, with leave-one-out class means: spread, separation, embedding margins,
a scale-free within-class variance ratio, and the rank correlation of class tightness with class size.

ELM (Jitkrittum et al. 2022, https://arxiv.org/abs/2204.13208) claims tighter tail-class embeddings. Measuring that
needs estimators whose bias does not depend on how many examples a class has, because the tail classes are the
small ones. Counting an example in its own class mean pulls the mean towards it: with 3 unit vectors per class whose
true spread is about 0.45, the in-sample spread is about 0.27. Here every per-example quantity uses the
leave-one-out (LOO) mean of the example's class instead:

    mu_{y,-i} = normalise(sum_{j: y_j = y, j != i} z_j)

The LOO mean is independent of z_i, so there is no self-inclusion bias; it is estimated from n_y - 1 examples, so its
direction is noisy, and at small n_y the LOO spread *over*-estimates the population spread (about 0.62 for the case
above). ``spread_pairwise`` and ``var_ratio`` use pairwise (U-statistic) estimators whose expectation does not depend
on n_y (exactly for ``var_ratio``, up to a square root for ``spread_pairwise``); see ``class_geometry``.

Call ``embedding_statistics`` once per feature space (e.g. the L2-normalised projections the ELM loss acts on, and
the backbone features) and prefix its keys with the space's name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from elm.metrics.accuracy import (
    DEFAULT_FEW_THRESHOLD,
    DEFAULT_MANY_THRESHOLD,
    GROUP_NAMES,
    group_means,
    group_of_classes,
)
from elm.metrics.margins import DEFAULT_QUANTILES, MarginStats, _json_float, _per_class_mean, _summary

# The feature spaces whose geometry evaluation measures (metric prefix -> ModelOutput field): the L2-normalised
# projection-head outputs the ELM loss acts on, and the backbone (penultimate) features.
FEATURE_SPACES = {"emb_proj": "projections", "emb_backbone": "embeddings"}


@dataclass(frozen=True)
class ClassGeometry:
    """Per-class and per-example geometry of one feature space (output of ``class_geometry``); float64 except n_eval.

    Attributes:
        class_means: (C, D) unit directions of the full class means mu_c; rows of absent classes are nan.
        n_eval: (C,) int64 examples per class.
        own_cos: (N,) cos(z_i, mu_{y_i,-i}), the cosine to the leave-one-out mean of the example's own class;
            nan when the class has a single example.
        sample_margins: (N,) own_cos - max over other present classes c of cos(z_i, mu_c) (full means); nan when
            own_cos is nan or no other class is present.
        spread: (C,) mean over the class's examples of 1 - own_cos; nan when n_eval < 2.
        spread_pairwise: (C,) 1 - clamp(A_c / sqrt(B_c), -1, 1), a pairwise estimate of the same population
            spread whose bias does not grow as n_eval shrinks (see ``class_geometry``); nan when n_eval < 2.
        separation: (C,) min over other present classes c' of 1 - cos(mu_c, mu_c'); nan if undefined.
        separation_pairs: (P,) 1 - cos(mu_a, mu_b) over unordered pairs a < b of present classes.
        var_ratio: (C,) tr(S_c) / tr(S_T), see ``class_geometry``; nan when n_eval < 2 or tr(S_T) = 0.
    """

    class_means: Tensor
    n_eval: Tensor
    own_cos: Tensor
    sample_margins: Tensor
    spread: Tensor
    spread_pairwise: Tensor
    separation: Tensor
    separation_pairs: Tensor
    var_ratio: Tensor


def class_geometry(features: Tensor, targets: Tensor, num_classes: int, *, normalize: bool = True) -> ClassGeometry:
    """Leave-one-out spread and margins, full-mean separation and the within-class variance ratio.

    Let x_i be the features, L2-normalised per row when ``normalize`` (a zero row stays zero), else as given;
    S_c = sum_{i in c} x_i, n_c the number of examples of class c, and cos(a, b) = <a, b> / (|a| |b|) with
    cos = 0 when either vector is zero (``F.normalize`` semantics). Then

    - mu_c = S_c / |S_c|; mu_{c,-i} = (S_c - x_i) / |S_c - x_i| for i in c (needs n_c >= 2);
    - own_cos_i = cos(x_i, mu_{y_i,-i}); margin_i = own_cos_i - max_{c != y_i, n_c > 0} cos(x_i, mu_c);
    - spread_c = (1 / n_c) sum_{i in c} (1 - own_cos_i);
    - spread_pairwise_c = 1 - clamp(A_c / sqrt(B_c), -1, 1), with A_c and B_c the means over ordered pairs i != j
      in c of <x_i / |x_i|, x_j> and <x_i, x_j>; 1 when B_c <= 0 (no resolved mean direction). Both are unbiased
      (i and j independent) for <E x/|x|, E x> and |E x|^2, so their ratio estimates the population spread
      1 - E cos(x, E x) without the LOO mean's small-sample noise. On the unit sphere A = B and
      spread_pairwise = 1 - sqrt(max(1 - tr(S_c), 0)).
    - separation_c = min_{c' != c, n_c' > 0} (1 - cos(mu_c, mu_c'));
    - var_ratio_c = tr(S_c) / tr(S_T), where S_c = (1 / (n_c - 1)) sum_{i in c} (x_i - xbar_c)(x_i - xbar_c)^T is
      the unbiased within-class covariance (xbar_c = S_c / n_c) and S_T = (1 / (N - 1)) sum_i (x_i - xbar)(x_i -
      xbar)^T the covariance of all N examples. tr(S_c) is unbiased for the class's total variance at every
      n_c >= 2. The ratio is scale-free: multiplying every feature by a > 0 multiplies both traces by a^2. With
      ``normalize`` it is also free of per-example norms. Below 1: the class is tighter than the data as a whole.

    Cost O(N * (C + D) + C^2 * D) time and O(N * C + C^2) memory.

    Args:
        features: (N, D) embeddings, N > 0, finite.
        targets: (N,) int labels in [0, num_classes).
        num_classes: C.
        normalize: L2-normalise each row first (cosine geometry on the sphere, as the ELM loss sees projections).

    Raises:
        ValueError: on bad shapes, labels out of range, or non-finite features.
    """
    if features.ndim != 2 or targets.shape != features.shape[:1] or targets.numel() == 0:
        raise ValueError(
            f"features must be (N, D) and targets (N,) with N > 0; got {tuple(features.shape)}, {tuple(targets.shape)}"
        )
    if int(targets.min()) < 0 or int(targets.max()) >= num_classes:
        raise ValueError(f"targets must lie in [0, num_classes={num_classes})")
    if not bool(torch.isfinite(features).all()):
        raise ValueError("features contain nan or inf")
    nan = math.nan
    x = features.detach().to(torch.float64)
    if normalize:
        x = F.normalize(x, dim=1)
    n_total, dim = x.shape
    u = F.normalize(x, dim=1)  # (N, D) example directions
    n = torch.bincount(targets, minlength=num_classes)  # (C,)
    present, has_loo = n > 0, n >= 2
    sums = torch.zeros(num_classes, dim, dtype=x.dtype).index_add_(0, targets, x)  # (C, D) S_c
    mu = F.normalize(sums, dim=1)  # (C, D); zero rows for absent classes

    loo = F.normalize(sums[targets] - x, dim=1)  # (N, D) mu_{y_i,-i}; zero for single-example classes
    own = (u * loo).sum(dim=1).masked_fill(~has_loo[targets], nan)  # (N,)
    cos = u @ mu.t()  # (N, C) cos to full class means
    rival_ok = present[None, :].expand_as(cos).scatter(1, targets[:, None], False)  # (N, C)
    rival = cos.masked_fill(~rival_ok, -math.inf).max(dim=1).values
    margins = (own - rival).masked_fill(rival.isinf(), nan)

    n_f = n.to(x.dtype)
    spread = torch.bincount(targets, weights=(1.0 - own).nan_to_num(0.0), minlength=num_classes) / n_f
    spread = spread.masked_fill(~has_loo, nan)

    pairs_n = n_f * (n_f - 1)  # ordered pairs i != j per class
    norms = x.norm(dim=1)  # (N,) |x_i| = <x_i / |x_i|, x_i>
    dir_sums = torch.zeros(num_classes, dim, dtype=x.dtype).index_add_(0, targets, u)  # (C, D)
    a = ((dir_sums * sums).sum(1) - torch.bincount(targets, weights=norms, minlength=num_classes)) / pairs_n
    b = ((sums * sums).sum(1) - torch.bincount(targets, weights=norms**2, minlength=num_classes)) / pairs_n
    mean_cos = torch.where(b > 0, (a / b.clamp_min(torch.finfo(x.dtype).tiny).sqrt()).clamp(-1.0, 1.0), 0.0)
    spread_pairwise = (1.0 - mean_cos).masked_fill(~has_loo, nan)

    dist = 1.0 - mu @ mu.t()  # (C, C)
    valid_pair = present[:, None] & present[None, :] & ~torch.eye(num_classes, dtype=torch.bool)
    separation = dist.masked_fill(~valid_pair, math.inf).min(dim=1).values
    separation = separation.masked_fill(separation.isinf(), nan)
    separation_pairs = dist[valid_pair.triu(diagonal=1)]

    xbar = sums / n_f.clamp_min(1.0)[:, None]  # (C, D) class centroids
    within_ss = torch.bincount(targets, weights=((x - xbar[targets]) ** 2).sum(1), minlength=num_classes)
    tr_within = (within_ss / (n_f - 1)).masked_fill(~has_loo, nan)  # (C,)
    tr_total = float(((x - x.mean(dim=0)) ** 2).sum()) / (n_total - 1) if n_total >= 2 else 0.0
    var_ratio = tr_within / tr_total if tr_total > 0 else torch.full_like(tr_within, nan)

    return ClassGeometry(
        class_means=mu.masked_fill(~present[:, None], nan),
        n_eval=n,
        own_cos=own,
        sample_margins=margins,
        spread=spread,
        spread_pairwise=spread_pairwise,
        separation=separation,
        separation_pairs=separation_pairs,
        var_ratio=var_ratio,
    )


def average_ranks(values: Tensor) -> Tensor:
    """Ranks 1..n of ``values``, tied values sharing the mean of their ranks (as ``scipy.stats.rankdata``).

    Args:
        values: (n,) without nan.

    Returns:
        (n,) float64.
    """
    if values.ndim != 1:
        raise ValueError(f"values must be (n,), got shape {tuple(values.shape)}")
    if bool(values.isnan().any()):
        raise ValueError("values contain nan: ranks are undefined")
    sorted_values, order = torch.sort(values, stable=True)
    _, inverse, counts = torch.unique_consecutive(sorted_values, return_inverse=True, return_counts=True)
    last = counts.cumsum(0).to(torch.float64)  # rank of the last member of each block of ties
    block_rank = last - (counts.to(torch.float64) - 1.0) / 2.0  # mean of ranks last - count + 1 .. last
    ranks = torch.empty(values.shape, dtype=torch.float64)
    ranks[order] = block_rank[inverse]
    return ranks


def spearman_correlation(x: Tensor, y: Tensor) -> float:
    """Spearman's rank correlation: Pearson correlation of the average ranks (ties share their mean rank).

    Args:
        x: (n,) without nan.
        y: (n,) without nan.

    Returns:
        A float in [-1, 1]; nan when n < 2 or either variable is constant.
    """
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be (n,) of one length; got {tuple(x.shape)}, {tuple(y.shape)}")
    if x.numel() < 2:
        return math.nan
    rx, ry = average_ranks(x), average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = float((rx.square().sum() * ry.square().sum()).sqrt())
    return float((rx * ry).sum()) / denom if denom > 0 else math.nan


def _spearman_with_size(values: Tensor, class_counts: Tensor) -> float:
    """Spearman of per-class ``values`` (C,) against training counts over the classes where ``values`` is defined."""
    ok = ~values.isnan()
    return spearman_correlation(values[ok], class_counts[ok].to(torch.float64))


def embedding_statistics(
    features: Tensor,
    targets: Tensor,
    class_counts: Tensor,
    *,
    normalize: bool = True,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    many_threshold: int = DEFAULT_MANY_THRESHOLD,
    few_threshold: int = DEFAULT_FEW_THRESHOLD,
) -> MarginStats:
    """Spread, separation, embedding margins and variance ratio of one feature space, overall, per group, per class.

    Quantities are those of ``class_geometry`` (leave-one-out means for per-example spread and margins). A class
    with one example has no spread, margin or variance ratio; it is left out of every summary of those (its full
    mean still counts as a rival in other classes' margins and in separation).

    Scalar keys (floats; undefined ones omitted, never nan; ``{g}`` is many / medium / few, ``{q}`` e.g. q10):
      ``spread_mean`` and ``spread_{g}``: mean of per-class LOO spread over classes (all, in group g);
      ``spread_pairwise_mean`` and ``spread_pairwise_{g}``: the same for the pairwise spread estimate;
      ``separation_min`` and ``separation_mean`` over pairs of present classes, and ``separation_{g}``: mean
      per-class nearest-other-mean distance in the group;
      ``margin/{mean,std,{q},frac_negative}`` over examples, and ``margin/..._{g}`` over examples whose class is in
      group g (std is the population std; quantiles interpolate linearly, as numpy);
      ``var_ratio_mean`` and ``var_ratio_{g}``: mean of per-class tr(S_c) / tr(S_T) over classes;
      ``spread_logsize_spearman`` and ``var_ratio_logsize_spearman``: Spearman correlation between the per-class
      value and log training count over classes where the value is defined (the log is monotone, so it is also
      the correlation with the count). Sign: negative means larger classes are tighter (smaller spread or variance
      ratio), positive means smaller classes are tighter, as ELM's tighter tail-class embeddings would make it.
      With unequal n_eval per class, prefer ``var_ratio_logsize_spearman``: the LOO spread's small-sample bias
      grows as n_eval shrinks, so on a training sample it alone correlates with class size.

    Per-class rows: ``class``, ``train_count``, ``group``, ``n_eval``, ``spread``, ``spread_pairwise``,
    ``separation``, ``margin_mean`` (mean LOO margin of the class's examples) and ``var_ratio``; nan written as None.

    Args:
        features: (N, D) embeddings of one space.
        targets: (N,) labels in [0, C).
        class_counts: (C,) training images per class (defines the groups and the class size).
        normalize: L2-normalise each row first (see ``class_geometry``).
        quantiles: levels in [0, 1] for the margin summaries.
        many_threshold, few_threshold: group boundaries, see ``group_of_classes``.

    Raises:
        ValueError: on bad shapes, labels, quantiles or non-finite features.
    """
    if class_counts.ndim != 1:
        raise ValueError(f"class_counts must be (C,), got shape {tuple(class_counts.shape)}")
    if any(not 0.0 <= q <= 1.0 for q in quantiles):
        raise ValueError(f"quantiles={list(quantiles)!r} must lie in [0, 1]")
    num_classes = int(class_counts.numel())
    geo = class_geometry(features, targets, num_classes, normalize=normalize)
    class_group = group_of_classes(class_counts, many_threshold, few_threshold)
    sample_group = class_group[targets]

    scalars: dict[str, float] = {}
    for name, values in (("spread", geo.spread), ("spread_pairwise", geo.spread_pairwise)):
        if bool((~values.isnan()).any()):
            scalars[f"{name}_mean"] = float(values.nanmean())
        scalars.update(group_means(values, class_group, f"{name}_"))
    if geo.separation_pairs.numel() > 0:
        scalars["separation_min"] = float(geo.separation_pairs.min())
        scalars["separation_mean"] = float(geo.separation_pairs.mean())
    scalars.update(group_means(geo.separation, class_group, "separation_"))
    scalars.update(_summary(geo.sample_margins, "margin", "", quantiles))
    for g, name in enumerate(GROUP_NAMES):
        scalars.update(_summary(geo.sample_margins[sample_group == g], "margin", f"_{name}", quantiles))
    if bool((~geo.var_ratio.isnan()).any()):
        scalars["var_ratio_mean"] = float(geo.var_ratio.nanmean())
    scalars.update(group_means(geo.var_ratio, class_group, "var_ratio_"))
    for name, values in (("spread", geo.spread), ("var_ratio", geo.var_ratio)):
        rho = _spearman_with_size(values, class_counts)
        if not math.isnan(rho):
            scalars[f"{name}_logsize_spearman"] = rho

    margin_mean = _per_class_mean(geo.sample_margins, targets, num_classes)  # nan where any margin is nan
    per_class = [
        {
            "class": c,
            "train_count": int(class_counts[c]),
            "group": GROUP_NAMES[int(class_group[c])],
            "n_eval": int(geo.n_eval[c]),
            "spread": _json_float(geo.spread[c]),
            "spread_pairwise": _json_float(geo.spread_pairwise[c]),
            "separation": _json_float(geo.separation[c]),
            "margin_mean": _json_float(margin_mean[c]),
            "var_ratio": _json_float(geo.var_ratio[c]),
        }
        for c in range(num_classes)
    ]
    return MarginStats(scalars=scalars, per_class=per_class)
