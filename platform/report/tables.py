"""The tables of a report, as pure functions: one row per trial in, mean ± std per variant, Pareto fronts and the
per-class and per-group summaries the plots draw out.

Nothing here reads files or talks to MLflow (``platform.report.runs`` does the I/O). Inputs are pandas frames with
one row per finished trial: a ``variant`` column, a ``seed`` column and one column per metric (the trial's value at
its final evaluated epoch, never its best epoch). Means are over seeds; stds are sample stds (ddof = 1), so a single
seed has no std. The papers' figures are in ``platform.report.papers``, the verdict in ``platform.report.verdict``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

VARIANT, SEED = "variant", "seed"
GROUPS = ("many", "medium", "few")  # class-size groups, head to tail (elm.metrics.accuracy.GROUP_NAMES)


@dataclass(frozen=True)
class Column:
    """A metric column of a report table: the key under the split prefix, and its header (with its unit)."""

    key: str
    label: str
    percent: bool = False  # a fraction shown x100, in %


# One unit per table: every table's measured columns share one unit, named in each header.
ACCURACY_COLUMNS = (  # %
    Column("balanced_acc", "balanced acc (%)", True),
    Column("acc", "acc (%)", True),
    Column("acc_many", "Many (%)", True),
    Column("acc_medium", "Medium (%)", True),
    Column("acc_few", "Few (%)", True),
    Column("ece", "ECE (%)", True),
    Column("logit_margin/frac_negative", "negative margin (%)", True),  # test examples with f_y < max f_y'
)
MARGIN_COLUMNS = (  # logits
    Column("logit_margin/mean", "margin mean (logits)"),
    Column("logit_margin/std", "margin std (logits)"),
    Column("logit_margin/class_mean_std", "class-mean std (logits)"),
)
# Where a run's embedding geometry is, first found first: the L2-normalised projections the ELM loss shapes, the
# backbone features (elm.metrics.geometry, pairwise spread: unbiased whatever the class size), then the in-sample
# ``embedding/`` keys of runs before it. (key prefix under the split, spread statistic, what the space is)
GEOMETRY_SPACES = (
    ("emb_proj/", "spread_pairwise", "projections"),
    ("emb_backbone/", "spread_pairwise", "backbone features"),
    ("embedding/", "spread", "embeddings"),
)


def geometry_space(metrics: Sequence[str], prefix: str) -> tuple[str, str, str]:
    """The ``GEOMETRY_SPACES`` entry of the first space any of ``metrics`` (``split/...`` names) reports."""
    for space in GEOMETRY_SPACES:
        if any(m.startswith(prefix + space[0]) for m in metrics):
            return space
    return GEOMETRY_SPACES[-1]


def geometry_columns(metrics: Sequence[str], prefix: str) -> tuple[Column, ...]:
    """Spread per group and the smallest class separation, all cosine distances (1 - cos)."""
    space, spread, _ = geometry_space(metrics, prefix)
    return (
        *(Column(f"{space}{spread}_{g}", f"spread {g.capitalize()} (1 - cos)") for g in GROUPS),
        Column(f"{space}separation_min", "separation min (1 - cos)"),
    )


def is_percent_metric(metric: str) -> bool:
    """Whether a ``split/name`` metric is an accuracy (a fraction that reports show in %): ``acc``,
    ``balanced_acc``, ``acc_few``, ``posthoc_tau1/balanced_acc`` ..."""
    name = metric.rsplit("/", 1)[-1]
    return name in ("acc", "balanced_acc") or name.startswith("acc_")


def posthoc_columns(taus: Sequence[str]) -> tuple[Column, ...]:
    """Balanced and Few accuracy after post-hoc adjustment at each tau (tau as written in the key, e.g. '1.5')."""
    cols: list[Column] = []
    for t in taus:
        cols.append(Column(f"posthoc_tau{t}/balanced_acc", f"tau={t} balanced (%)", True))
        cols.append(Column(f"posthoc_tau{t}/acc_few", f"tau={t} Few (%)", True))
    return tuple(cols)


def calibration_columns(taus: Sequence[str]) -> tuple[Column, ...]:
    """ECE overall and per Many / Medium / Few (examples grouped by true class), before post-hoc adjustment and at
    each tau (``elm.metrics.calibration_by_group``), in %."""
    cols = [Column("ece", "ECE (%)", True)] + [Column(f"ece_{g}", f"ECE {g.capitalize()} (%)", True) for g in GROUPS]
    for t in taus:
        cols += [Column(f"posthoc_tau{t}/ece", f"tau={t} ECE (%)", True)]
        cols += [Column(f"posthoc_tau{t}/ece_{g}", f"tau={t} ECE {g.capitalize()} (%)", True) for g in GROUPS]
    return tuple(cols)


def posthoc_taus(columns: Sequence[str], prefix: str) -> list[str]:
    """The taus present among metric columns ``{prefix}posthoc_tau{t}/balanced_acc``, sorted numerically."""
    head, tail = f"{prefix}posthoc_tau", "/balanced_acc"
    taus = [c[len(head) : -len(tail)] for c in columns if c.startswith(head) and c.endswith(tail)]
    return sorted(taus, key=float)


@dataclass(frozen=True)
class Stat:
    """Mean and sample std over seeds of one metric of one variant; std is nan for a single seed."""

    mean: float
    std: float
    n: int


def mean_std(values: Sequence[float]) -> Stat:
    """Mean and sample std (ddof = 1) of the finite ``values``; nan mean for none, nan std for one."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(float(x))], dtype=float)
    if v.size == 0:
        return Stat(math.nan, math.nan, 0)
    return Stat(float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan, int(v.size))


def aggregate(frame: pd.DataFrame, metrics: Sequence[str], by: str = VARIANT) -> dict[str, dict[str, Stat]]:
    """``{variant: {metric: Stat over seeds}}`` in the frame's order of first appearance; missing metrics skipped.

    Args:
        frame: one row per trial, with column ``by`` and the metric columns (final-epoch values).
        metrics: metric column names.
    """
    out: dict[str, dict[str, Stat]] = {}
    for variant in pd.unique(frame[by]):
        rows = frame[frame[by] == variant]
        out[str(variant)] = {m: mean_std(rows[m].tolist()) for m in metrics if m in frame.columns}
    return out


def format_stat(s: Stat | None, percent: bool = False, digits: int | None = None) -> str:
    """'mean ± std' (x100 for percentages); '—' when undefined; just the mean for one seed."""
    if s is None or s.n == 0 or math.isnan(s.mean):
        return "—"
    scale = 100.0 if percent else 1.0
    d = digits if digits is not None else (2 if percent else 3)
    if math.isnan(s.std):
        return f"{scale * s.mean:.{d}f}"
    return f"{scale * s.mean:.{d}f} ± {scale * s.std:.{d}f}"


def stat_table(
    stats: Mapping[str, Mapping[str, Stat]], columns: Sequence[Column], prefix: str
) -> tuple[list[str], list[list[str]]]:
    """Header and rows (one per variant) of 'mean ± std' cells, with the number of seeds."""
    header = ["variant", "seeds", *[c.label for c in columns]]
    rows = []
    for variant, by_metric in stats.items():
        n = max((s.n for s in by_metric.values()), default=0)
        rows.append([variant, str(n), *[format_stat(by_metric.get(prefix + c.key), c.percent) for c in columns]])
    return header, rows


def pareto_front(x: Sequence[float], y: Sequence[float]) -> list[int]:
    """Indices of the points no other point dominates when maximising both x and y, ordered by increasing x.

    A point dominates another if it is >= in both coordinates and > in at least one. Ties (equal points) are
    all kept. Points with a nan coordinate are never on the front.
    """
    pts = [(float(a), float(b)) for a, b in zip(x, y)]
    front = []
    for i, (xi, yi) in enumerate(pts):
        if math.isnan(xi) or math.isnan(yi):
            continue
        dominated = any(
            xj >= xi and yj >= yi and (xj > xi or yj > yi)
            for j, (xj, yj) in enumerate(pts)
            if j != i and not (math.isnan(xj) or math.isnan(yj))
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (pts[i][0], -pts[i][1]))


def geometry_tables(
    stats: Mapping[str, Mapping[str, Stat]], prefix: str
) -> list[tuple[str, list[str], list[list[str]]]]:
    """Embedding-geometry tables, one unit each: per feature space (the projections the ELM loss shapes first,
    then the backbone), spread (1 - cos, pairwise estimator) and the within-class variance ratio (unitless), per
    group, on the evaluation split and on the fixed training sample; then the Spearman correlation of class
    tightness with log class size. Returns (title, header, rows) for the spaces the runs report."""
    metrics = {k for by in stats.values() for k in by}
    spaces = [
        (s, name)
        for s, name in (("emb_proj", "projections (where the ELM loss acts)"), ("emb_backbone", "backbone features"))
        if any(m.startswith(f"{prefix}{s}/") or m.startswith(f"train/{s}/") for m in metrics)
    ]
    split = prefix.rstrip("/")
    out: list[tuple[str, list[str], list[list[str]]]] = []

    def table_of(keys: list[tuple[str, str]], digits: int = 3) -> tuple[list[str], list[list[str]]]:
        present = [(k, label) for k, label in keys if k in metrics]
        header = ["variant", "seeds", *[label for _, label in present]]
        rows = [
            [
                v,
                str(max((s.n for s in by.values()), default=0)),
                *[format_stat(by.get(k), digits=digits) for k, _ in present],
            ]
            for v, by in stats.items()
        ]
        return header, rows

    for s, name in spaces:
        for stat, unit in (("spread_pairwise", "1 - cos"), ("var_ratio", "tr S_c / tr S_T, unitless")):
            keys = [
                (f"{where}/{s}/{stat}_{g}", f"{where} {g.capitalize()}") for where in (split, "train") for g in GROUPS
            ]
            h, r = table_of(keys)
            if len(h) > 2:
                out.append(
                    (
                        f"{'Spread' if stat.startswith('spread') else 'Within-class variance ratio'} in the "
                        f"{name} ({unit}; mean ± std over seeds)",
                        h,
                        r,
                    )
                )
    keys = [
        (f"{where}/{s}/{stat}_logsize_spearman", f"{where} {s.removeprefix('emb_')} {stat}")
        for s, _ in spaces
        for where in (split, "train")
        for stat in ("spread", "var_ratio")
    ]
    h, r = table_of(keys, digits=2)
    if len(h) > 2:
        out.append(
            (
                "Spearman correlation of class tightness with log class size (unitless; negative: larger "
                "classes are tighter, positive: smaller classes are tighter)",
                h,
                r,
            )
        )
    return out


ANCHOR_COLUMNS = (
    *(Column(f"emb_anchor_pos_frac_{g}", f"{g.capitalize()} anchors with a positive (%)", True) for g in GROUPS),
    *(Column(f"emb_anchor_share_{g}", f"{g.capitalize()} share of contributing anchors (%)", True) for g in GROUPS),
)
