"""Margin diagnostics: logit margins, embedding geometry (spread, separation, margins), and their summaries.

The project's key diagnostic for ELM (Jitkrittum et al. 2022, "ELM: Embedding and Logit Margins for Long-Tail
Learning", https://arxiv.org/abs/2204.13208): long-tail methods should enlarge tail-class margins in logit space
and tighten tail-class embeddings. The logit margin of an example is
f_y(x) - max_{c != y} f_c(x) (Cao et al. 2019, LDAM, eq. 2, https://arxiv.org/abs/1906.07413); embedding
quantities use cosine geometry of L2-normalised embeddings and their class-mean directions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from elm.metrics.accuracy import (
    DEFAULT_FEW_THRESHOLD,
    DEFAULT_MANY_THRESHOLD,
    GROUP_NAMES,
    group_means,
    group_of_classes,
    per_class_accuracy,
)

DEFAULT_QUANTILES = (0.1, 0.5, 0.9)


def logit_margins(logits: Tensor, targets: Tensor) -> Tensor:
    """Per-example logit margin f_y(x) - max_{c != y} f_c(x) (Cao et al. 2019, eq. 2); negative means misclassified.

    Args:
        logits: (N, C) with C >= 2.
        targets: (N,) true labels.

    Returns:
        (N,) float32.
    """
    if logits.ndim != 2 or logits.shape[1] < 2 or targets.shape != logits.shape[:1]:
        raise ValueError(
            f"logits must be (N, C>=2) and targets (N,); got {tuple(logits.shape)}, {tuple(targets.shape)}"
        )
    logits = logits.float()
    own = logits.gather(1, targets[:, None]).squeeze(1)
    others = logits.scatter(1, targets[:, None], -math.inf)
    return own - others.max(dim=1).values


@dataclass(frozen=True)
class EmbeddingGeometry:
    """Cosine geometry of normalised embeddings around their class-mean directions.

    Attributes:
        class_means: (C, D) unit class-mean directions mu_c; rows of absent classes are nan.
        spread: (C,) mean of 1 - cos(z, mu_c) over the class's examples (nan if absent).
        separation: (C,) min over other present classes c' of 1 - cos(mu_c, mu_c') (nan if undefined).
        separation_min: min of pairwise class-mean distances (nan with < 2 classes present).
        separation_mean: mean of the pairwise class-mean distances over unordered pairs.
        sample_margins: (N,) cos(z, mu_y) - max_{c != y, c present} cos(z, mu_c) (nan with < 2 classes).
    """

    class_means: Tensor
    spread: Tensor
    separation: Tensor
    separation_min: float
    separation_mean: float
    sample_margins: Tensor


def embedding_geometry(embeddings: Tensor, targets: Tensor, num_classes: int) -> EmbeddingGeometry:
    """Class-mean directions, intra-class spread, inter-class separation and per-example embedding margins.

    Embeddings are L2-normalised; mu_c is the re-normalised mean of class c's normalised embeddings.
    Only classes present in ``targets`` have a mean; the others are ignored in separations and margins.

    Args:
        embeddings: (N, D).
        targets: (N,) labels in [0, num_classes).
        num_classes: C.
    """
    if embeddings.ndim != 2 or targets.shape != embeddings.shape[:1] or targets.numel() == 0:
        raise ValueError(f"embeddings must be (N, D), targets (N,), N > 0; got {tuple(embeddings.shape)}")
    if int(targets.min()) < 0 or int(targets.max()) >= num_classes:
        raise ValueError(f"targets must lie in [0, num_classes={num_classes})")
    z = F.normalize(embeddings.float(), dim=1)  # (N, D), unit rows
    n_eval = torch.bincount(targets, minlength=num_classes)
    present = n_eval > 0
    sums = torch.zeros(num_classes, z.shape[1], dtype=z.dtype).index_add_(0, targets, z)
    mu = F.normalize(sums, dim=1)  # (C, D); zero rows for absent classes
    cos = z @ mu.t()  # (N, C)
    own = cos.gather(1, targets[:, None]).squeeze(1)
    spread = torch.bincount(targets, weights=(1.0 - own).double(), minlength=num_classes) / n_eval
    # pairwise distances between present class means; inf on the diagonal and for absent classes
    dist = (1.0 - mu @ mu.t()).double()
    valid_pair = present[:, None] & present[None, :] & ~torch.eye(num_classes, dtype=torch.bool)
    masked = dist.masked_fill(~valid_pair, math.inf)
    separation = masked.min(dim=1).values
    separation = separation.masked_fill(separation.isinf(), math.nan)
    upper = valid_pair.triu(diagonal=1)
    pairs = dist[upper]
    sep_min = float(pairs.min()) if pairs.numel() else math.nan
    sep_mean = float(pairs.mean()) if pairs.numel() else math.nan
    rival_ok = present[None, :].expand_as(cos).scatter(1, targets[:, None], False)  # (N, C)
    rival = cos.masked_fill(~rival_ok, -math.inf).max(dim=1).values
    margins = own - rival
    margins = margins.masked_fill(rival.isinf(), math.nan)
    means = mu.masked_fill(~present[:, None], math.nan)
    return EmbeddingGeometry(means, spread, separation, sep_min, sep_mean, margins)


@dataclass(frozen=True)
class MarginStats:
    """Output of ``margin_statistics``.

    Attributes:
        scalars: flat ``{name: float}`` for a logger; never nan (undefined entries are omitted).
        per_class: one JSON-serialisable dict per class (nan written as None).
    """

    scalars: dict[str, float]
    per_class: list[dict[str, Any]]


def _quantile_key(q: float) -> str:
    return f"q{100 * q:g}"  # 0.1 -> q10, 0.5 -> q50


def _summary(values: Tensor, prefix: str, suffix: str, quantiles: Sequence[float]) -> dict[str, float]:
    """mean, population std, quantiles and fraction < 0 of the finite ``values``; {} if there are none."""
    v = values[~values.isnan()].double()
    if v.numel() == 0:
        return {}
    out = {f"{prefix}/mean{suffix}": float(v.mean()), f"{prefix}/std{suffix}": float(v.std(correction=0))}
    qs = torch.quantile(v, torch.tensor(list(quantiles), dtype=v.dtype))  # linear interpolation, as numpy
    out.update({f"{prefix}/{_quantile_key(q)}{suffix}": float(x) for q, x in zip(quantiles, qs)})
    out[f"{prefix}/frac_negative{suffix}"] = float((v < 0).double().mean())
    return out


def _per_class_mean(values: Tensor, targets: Tensor, num_classes: int) -> Tensor:
    """(C,) mean of per-example ``values`` within each class (nan for absent classes)."""
    n = torch.bincount(targets, minlength=num_classes)
    return torch.bincount(targets, weights=values.double(), minlength=num_classes) / n


def _per_class_std(values: Tensor, targets: Tensor, num_classes: int) -> Tensor:
    """(C,) population std of per-example ``values`` within each class (nan for absent classes)."""
    n = torch.bincount(targets, minlength=num_classes)
    mean = _per_class_mean(values, targets, num_classes)
    sq = torch.bincount(targets, weights=(values.double() - mean[targets]) ** 2, minlength=num_classes)
    return (sq / n).sqrt()


def _json_float(x: Tensor | float) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def margin_statistics(
    logits: Tensor,
    embeddings: Tensor | None,
    targets: Tensor,
    class_counts: Tensor,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    many_threshold: int = DEFAULT_MANY_THRESHOLD,
    few_threshold: int = DEFAULT_FEW_THRESHOLD,
) -> MarginStats:
    """Logit- and embedding-margin summaries, overall, per frequency group and per class.

    Scalar keys (all floats, undefined ones omitted; ``{g}`` is many / medium / few, ``{q}`` e.g. q10):
      ``logit_margin/{mean,std,{q},frac_negative}`` over all examples and ``..._{g}`` over examples whose
      true class is in group g (pooled over examples; std is the population std);
      ``logit_margin/class_mean_std``: std over present classes of the per-class mean margin;
      ``embedding/spread_mean`` and ``embedding/spread_{g}``: mean of per-class spread (overall, in group);
      ``embedding/separation_min``, ``embedding/separation_mean`` (pairwise class-mean cosine distances) and
      ``embedding/separation_{g}``: mean of the per-class nearest-other-mean distance within the group;
      ``embedding_margin/{mean,std,{q},frac_negative}`` and ``..._{g}``, as for logit margins.
    The ``embedding/`` and ``embedding_margin/`` keys (and the per-class ``spread``, ``separation`` and
    ``embedding_margin_mean``) count each example in its own class mean, which biases spread down and margins up
    for classes with few examples; ``elm.metrics.geometry.embedding_statistics`` uses leave-one-out means.

    Args:
        logits: (N, C).
        embeddings: (N, D) penultimate features (normalised here); None leaves out every embedding key.
        targets: (N,) labels.
        class_counts: (C,) training images per class (defines the groups).
        quantiles: levels in [0, 1] to report.
        many_threshold, few_threshold: group boundaries, see ``group_of_classes``.
    """
    num_classes = logits.shape[1] if logits.ndim == 2 else -1
    if class_counts.shape != (num_classes,):
        raise ValueError(f"class_counts {tuple(class_counts.shape)} must be (C,) for logits {tuple(logits.shape)}")
    if embeddings is not None and embeddings.shape[:1] != logits.shape[:1]:
        raise ValueError(f"embeddings {tuple(embeddings.shape)} and logits {tuple(logits.shape)} must share N")
    if any(not 0.0 <= q <= 1.0 for q in quantiles):
        raise ValueError(f"quantiles={list(quantiles)!r} must lie in [0, 1]")
    lm = logit_margins(logits, targets)
    class_group = group_of_classes(class_counts, many_threshold, few_threshold)
    sample_group = class_group[targets]

    scalars = _summary(lm, "logit_margin", "", quantiles)
    for g, name in enumerate(GROUP_NAMES):
        scalars.update(_summary(lm[sample_group == g], "logit_margin", f"_{name}", quantiles))
    class_lm = _per_class_mean(lm, targets, num_classes)
    present_lm = class_lm[~class_lm.isnan()]
    scalars["logit_margin/class_mean_std"] = float(present_lm.std(correction=0))

    n_eval = torch.bincount(targets, minlength=num_classes)
    acc = per_class_accuracy(logits, targets, num_classes)
    lm_std = _per_class_std(lm, targets, num_classes)
    lm_neg = _per_class_mean((lm < 0).double(), targets, num_classes)
    per_class: list[dict[str, Any]] = [
        {
            "class": c,
            "train_count": int(class_counts[c]),
            "group": GROUP_NAMES[int(class_group[c])],
            "n_eval": int(n_eval[c]),
            "accuracy": _json_float(acc[c]),
            "logit_margin_mean": _json_float(class_lm[c]),
            "logit_margin_std": _json_float(lm_std[c]),
            "logit_margin_frac_negative": _json_float(lm_neg[c]),
        }
        for c in range(num_classes)
    ]
    if embeddings is None:
        return MarginStats(scalars=scalars, per_class=per_class)

    geo = embedding_geometry(embeddings, targets, num_classes)
    spread_present = geo.spread[~geo.spread.isnan()]
    scalars["embedding/spread_mean"] = float(spread_present.mean())
    scalars.update(group_means(geo.spread, class_group, "embedding/spread_"))
    if not math.isnan(geo.separation_min):
        scalars["embedding/separation_min"] = geo.separation_min
        scalars["embedding/separation_mean"] = geo.separation_mean
    scalars.update(group_means(geo.separation, class_group, "embedding/separation_"))
    scalars.update(_summary(geo.sample_margins, "embedding_margin", "", quantiles))
    for g, name in enumerate(GROUP_NAMES):
        scalars.update(_summary(geo.sample_margins[sample_group == g], "embedding_margin", f"_{name}", quantiles))

    em_mean = _per_class_mean(geo.sample_margins, targets, num_classes)
    for c, row in enumerate(per_class):
        row["spread"] = _json_float(geo.spread[c])
        row["separation"] = _json_float(geo.separation[c])
        row["embedding_margin_mean"] = _json_float(em_mean[c])
    return MarginStats(scalars=scalars, per_class=per_class)
