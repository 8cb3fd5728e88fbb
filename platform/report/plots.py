"""Cross-trial figures of a report: pure functions from ``platform.report.tables`` outputs (and ``platform.posthoc``
rows) to matplotlib Figures."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from platform.report.tables import GROUPS, VARIANT  # noqa: E402

MARKERS = "osD^vP*X"


def per_class_vs_size(
    per_class: pd.DataFrame, value: str, ylabel: str, title: str, binned: pd.DataFrame | None = None
) -> Figure:
    """Per-class ``value`` (mean over seeds) against training-class size (log x), one series per variant.

    With ``binned`` (``platform.report.per_class.binned_by_size``), classes are faint dots and each variant's line joins
    its bin means: readable with hundreds of classes. Without it, the line joins the classes themselves.

    Args:
        per_class: ``platform.report.per_class.per_class_mean`` output.
    """
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (variant, rows) in enumerate(per_class.groupby(VARIANT, sort=False)):
        rows = rows.sort_values("train_count")
        colour, label = f"C{i}", f"{variant} ({int(rows['n'].max())} seeds)"
        if binned is None:
            ax.plot(
                rows["train_count"],
                rows[value],
                marker=MARKERS[i % len(MARKERS)],
                ms=4,
                lw=1,
                alpha=0.85,
                color=colour,
                label=label,
            )
            continue
        ax.scatter(rows["train_count"], rows[value], s=4, alpha=0.25, color=colour)
        b = binned[binned[VARIANT] == variant]
        ax.plot(
            b["train_count"],
            b[value],
            marker=MARKERS[i % len(MARKERS)],
            ms=4,
            lw=1.5,
            color=colour,
            label=label + ", bin means",
        )
    ax.set_xscale("log")
    ax.set_xlabel("training images in class (log)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def logit_margin_groups(quantiles: Mapping[str, Mapping[str, Mapping[str, float]]]) -> Figure:
    """Per-example logit-margin distribution per group and variant: q10-q90 bar, median dot, mean cross.

    Args:
        quantiles: ``platform.report.per_class.group_quantiles`` output (values averaged over seeds).
    """
    fig, ax = plt.subplots(figsize=(6, 4))
    variants = list(quantiles)
    width = 0.8 / max(len(variants), 1)
    for i, variant in enumerate(variants):
        colour, label = f"C{i}", variant
        for gi, g in enumerate(GROUPS):
            q = quantiles[variant].get(g)
            if q is None:
                continue
            x = gi - 0.4 + width * (i + 0.5)
            ax.vlines(x, q["q10"], q["q90"], color=colour, lw=3, alpha=0.6)
            ax.plot(x, q["q50"], "o", color=colour, ms=5, label=label)
            label = None  # one legend entry per variant
            ax.plot(x, q["mean"], "x", color="black", ms=5)
    if variants:
        ax.legend(fontsize=8)
    ax.axhline(0.0, color="black", lw=0.5)
    ax.set_xticks(range(len(GROUPS)), [g.capitalize() for g in GROUPS])
    ax.set_ylabel("logit margin f_y - max f_y'")
    ax.set_title("Logit margins per group: q10-q90, median (dot), mean (x)")
    fig.tight_layout()
    return fig


def pareto_scatter(
    x: Sequence[float], y: Sequence[float], front: Sequence[int], labels: Sequence[str], xlabel: str, ylabel: str
) -> Figure:
    """Every trial as a point, the Pareto front (maximising both) as a line, front points labelled."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(x, y, s=18, color="tab:gray", label="trial")
    fx, fy = [x[i] for i in front], [y[i] for i in front]
    ax.plot(fx, fy, "o-", color="tab:red", ms=5, label="Pareto front")
    for i in front:
        ax.annotate(labels[i], (x[i], y[i]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title("Head vs tail accuracy (final epoch of each trial)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def tau_curves(
    taus: Sequence[float], curves: Mapping[str, Sequence[tuple[Mapping[str, Sequence[float]], float]]]
) -> Figure:
    """Balanced accuracy (%) against the post-hoc tau, on the selection split (dashed) and on test (solid), mean
    over the trials of each group; a faint vertical line marks each trial's chosen tau (``platform.posthoc``).

    Args:
        taus: the grid (T,).
        curves: group -> one (``{"select": (T,), "test": (T,)}``, chosen tau) per trial.
    """
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (group, per_trial) in enumerate(curves.items()):
        colour = f"C{i % 10}"
        for split, style in (("select", "--"), ("test", "-")):
            mean = [100 * sum(c[split][j] for c, _ in per_trial) / len(per_trial) for j in range(len(taus))]
            ax.plot(
                taus,
                mean,
                style,
                color=colour,
                lw=1.2,
                label=f"{group} ({'selection split' if split == 'select' else 'test'})",
            )
        for _, tau in per_trial:
            ax.axvline(tau, color=colour, lw=0.8, alpha=0.4)
    ax.set_xlabel("post-hoc tau (logits - tau x log prior)")
    ax.set_ylabel("balanced accuracy (%)")
    ax.set_title("Post-hoc adjustment: global tau")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def shifted_prior_curves(rows: pd.DataFrame, shifts: Sequence[float]) -> Figure:
    """Test accuracy (%) under shifted label priors, one panel per group (at most 4), one line per method; x runs
    from backward k (tail becomes head) through uniform to forward k (``platform.posthoc`` rows)."""
    groups = list(dict.fromkeys(rows["group"]))[:4]
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.8), squeeze=False, sharey=True)
    order = [f"backward {k:g}" for k in reversed(shifts)] + [f"forward {k:g}" for k in shifts]
    xs = [-math.log10(k) for k in reversed(shifts)] + [math.log10(k) for k in shifts]
    for ax, group in zip(axes[0], groups):
        sub = rows[rows["group"] == group]
        for i, (method, m) in enumerate(sub.groupby("method", sort=False)):
            means = m.groupby("test_prior")["test"].mean()
            ax.plot(
                xs,
                [100 * means.get(p, float("nan")) for p in order],
                marker=MARKERS[i % len(MARKERS)],
                ms=4,
                lw=1.2,
                label=method,
            )
        ax.set_xticks(xs, [p.replace("backward ", "b").replace("forward ", "f") for p in order], fontsize=7)
        ax.set_xlabel("test prior: backward k (tail-heavy) ... forward k (head-heavy)")
        ax.set_title(group, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy under the prior (%)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def reliability_diagram(bins: Mapping[str, Sequence[Any]], title: str) -> Figure:
    """Accuracy against mean confidence per confidence bin (Guo et al. 2017, Fig. 1), one line per labelled
    variant of the logits (e.g. before and after post-hoc adjustment); the diagonal is perfect calibration.

    Args:
        bins: label -> ``elm.metrics.reliability_bins`` output (confidence, accuracy, count), each (M,).
    """
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], ":", color="grey", lw=1)
    for i, (label, (conf, acc, count)) in enumerate(bins.items()):
        keep = [j for j in range(len(count)) if float(count[j]) > 0]
        total = float(sum(float(c) for c in count))
        ece = sum(float(count[j]) * abs(float(acc[j]) - float(conf[j])) for j in keep) / total
        ax.plot(
            [float(conf[j]) for j in keep],
            [float(acc[j]) for j in keep],
            marker=MARKERS[i % len(MARKERS)],
            ms=4,
            lw=1.2,
            label=f"{label}: ECE {100 * ece:.1f}%",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (mean in bin)")
    ax.set_ylabel("accuracy in bin")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
