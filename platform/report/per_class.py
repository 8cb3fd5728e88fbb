"""Per-class arithmetic for the report: per-class values averaged over seeds, per-group margin quantiles, and
classes binned by training-set size (the inputs of the per-class plots).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from platform.report.tables import GROUPS, VARIANT, Stat


def per_class_mean(rows: pd.DataFrame, value: str) -> pd.DataFrame:
    """Per-class ``value`` averaged over seeds, per variant.

    Args:
        rows: one row per (variant, seed, class), with columns variant, class, train_count, group and ``value``.

    Returns:
        Columns variant, class, train_count, group, ``value`` (mean over seeds), n (seeds), sorted by variant
        (order of first appearance) then decreasing train_count.
    """
    order = {v: i for i, v in enumerate(pd.unique(rows[VARIANT]))}
    g = (
        rows.groupby([VARIANT, "class"], sort=False)
        .agg(
            train_count=("train_count", "first"),
            group=("group", "first"),
            **{value: (value, "mean")},
            n=(value, "count"),
        )
        .reset_index()
    )
    g["_order"] = g[VARIANT].map(order)
    g = g.sort_values(["_order", "train_count", "class"], ascending=[True, False, True])
    return g.drop(columns="_order").reset_index(drop=True)


def group_quantiles(
    stats: Mapping[str, Mapping[str, Stat]], prefix: str, groups: Sequence[str] = GROUPS
) -> dict[str, dict[str, dict[str, float]]]:
    """``{variant: {group: {q10, q50, q90, mean}}}`` of per-example logit margins, each averaged over seeds.

    Groups a variant does not report (no class in the group) are left out.
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    for variant, by_metric in stats.items():
        out[variant] = {}
        for g in groups:
            vals = {q: by_metric.get(f"{prefix}logit_margin/{q}_{g}") for q in ("q10", "q50", "q90", "mean")}
            if all(v is not None and v.n > 0 for v in vals.values()):
                out[variant][g] = {q: v.mean for q, v in vals.items() if v is not None}
    return out


def binned_by_size(per_class: pd.DataFrame, value: str, bins: int) -> pd.DataFrame:
    """Mean of a per-class ``value`` in ``bins`` log-spaced bins of training-class size, per variant.

    Args:
        per_class: ``per_class_mean`` output.

    Returns:
        Columns variant, train_count (geometric mean of the bin's class sizes), ``value`` (mean over the bin's
        classes), classes (count); empty bins dropped.
    """
    sizes = per_class["train_count"].to_numpy(dtype=float)
    if bins < 1 or sizes.size == 0 or sizes.min() <= 0:
        raise ValueError(f"need bins >= 1 and positive class sizes; got bins={bins}, sizes min {sizes.min(initial=0)}")
    edges = np.geomspace(sizes.min(), sizes.max(), bins + 1)  # (bins + 1,); the inner edges split the classes
    frame = per_class.assign(_bin=np.digitize(sizes, edges[1:-1], right=False), _log=np.log(sizes))
    g = (
        frame.groupby([VARIANT, "_bin"], sort=False)
        .agg(_log=("_log", "mean"), **{value: (value, "mean")}, classes=(value, "count"))
        .reset_index()
    )
    g["train_count"] = np.exp(g["_log"])
    order = {v: i for i, v in enumerate(pd.unique(per_class[VARIANT]))}
    g = g.assign(_order=g[VARIANT].map(order)).sort_values(["_order", "train_count"])
    return g[[VARIANT, "train_count", value, "classes"]].reset_index(drop=True)
