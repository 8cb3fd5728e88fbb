"""Plots of one evaluation's per-class table (the per-class rows of ``elm.train.evaluate``).

Pure functions from a per-class table to a matplotlib Figure; used by MLflow tracking and by reports.
"""

from __future__ import annotations

from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

GROUP_COLOURS = {"many": "tab:blue", "medium": "tab:orange", "few": "tab:red"}


def _column(rows: Sequence[dict[str, Any]], key: str) -> list[float]:
    return [float("nan") if r.get(key) is None else float(r[key]) for r in rows]


def _scatter_vs_size(rows: Sequence[dict[str, Any]], key: str, ylabel: str, title: str) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for group, colour in GROUP_COLOURS.items():
        sel = [r for r in rows if r.get("group") == group]
        if sel:
            ax.scatter(_column(sel, "train_count"), _column(sel, key), c=colour, label=group, s=18)
    ax.set_xscale("log")
    ax.set_xlabel("training images in class (log)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_vs_class_size(rows: Sequence[dict[str, Any]]) -> Figure:
    return _scatter_vs_size(rows, "accuracy", "per-class accuracy", "Accuracy vs class size")


def spread_key(rows: Sequence[dict[str, Any]]) -> tuple[str, str]:
    """The per-class spread to plot and its space: the projection head's (where the ELM loss acts) when the rows
    have it, else the backbone's; the pairwise estimate, whose bias does not depend on class size
    (``elm.metrics.geometry``). Older tables have a plain ``spread``."""
    for key, space in (("emb_proj_spread_pairwise", "projections"), ("emb_backbone_spread_pairwise", "backbone")):
        if any(r.get(key) is not None for r in rows):
            return key, space
    return "spread", "embeddings"


def spread_vs_class_size(rows: Sequence[dict[str, Any]]) -> Figure:
    key, space = spread_key(rows)
    return _scatter_vs_size(rows, key, f"intra-class spread, {space} (1 - cos)", "Embedding spread vs class size")


def logit_margins_by_group(rows: Sequence[dict[str, Any]]) -> Figure:
    """Per-class mean logit margin with its std as an error bar, classes ordered by size, coloured by group."""
    ordered = sorted(rows, key=lambda r: -float(r.get("train_count", 0)))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for i, r in enumerate(ordered):
        mean = r.get("logit_margin_mean")
        if mean is None:
            continue
        ax.errorbar(
            i,
            mean,
            yerr=r.get("logit_margin_std") or 0.0,
            fmt="o",
            ms=3,
            color=GROUP_COLOURS.get(str(r.get("group")), "gray"),
        )
    ax.axhline(0.0, color="black", lw=0.5)
    ax.set_xlabel("class (by decreasing training size)")
    ax.set_ylabel("logit margin f_y - max f_y'")
    ax.set_title("Logit margins per class (mean ± std)")
    fig.tight_layout()
    return fig


PLOTS = {
    "accuracy_vs_class_size.png": accuracy_vs_class_size,
    "logit_margins_by_group.png": logit_margins_by_group,
    "spread_vs_class_size.png": spread_vs_class_size,
}
