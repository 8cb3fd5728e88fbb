"""Saving a report's figures under ``<out>/plots/`` and the per-class figures of its sections, as ``Image`` blocks.

The figures themselves are ``platform.report.plots`` (across trials) and ``platform.report.class_plots`` (one
evaluation's per-class table); this module only decides bins, labels and file names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from platform.report import plots as rp
from platform.report import per_class
from platform.report import tables as rt
from platform.report.class_plots import spread_key
from platform.report.document import Image
from platform.report.runs import RunSet

PLOTS_DIR = "plots"  # inside the report folder
DPI = 110
DENSE_CLASSES = 30  # above this many classes, per-class plots show log-size bin means
SIZE_BINS = 12


def save_figure(fig: Any, out: Path, name: str) -> str:
    """Write a matplotlib Figure to ``out/plots/name`` (PNG) and close it; returns the path relative to ``out``."""
    import matplotlib.pyplot as plt

    (out / PLOTS_DIR).mkdir(parents=True, exist_ok=True)
    fig.savefig(out / PLOTS_DIR / name, dpi=DPI)
    plt.close(fig)
    return f"{PLOTS_DIR}/{name}"


def per_class_frame(runs: RunSet) -> pd.DataFrame:
    """One row per (trial, class) of the per-class tables, with the trial's variant and seed."""
    rows = []
    for run_id, variant, seed in zip(runs.trials["run_id"], runs.trials[rt.VARIANT], runs.trials[rt.SEED]):
        for r in runs.per_class.get(str(run_id), []):
            rows.append({rt.VARIANT: variant, rt.SEED: seed, "run_id": run_id, **r})
    return pd.DataFrame(rows)


def per_class_image(pc: pd.DataFrame, value: str, ylabel: str, title: str, out: Path, name: str) -> Image:
    """Per-class ``value`` vs class size, averaged over seeds; binned when there are many classes.

    Args:
        pc: ``per_class_frame`` rows (or any rows with variant, class, train_count, group and ``value``).
    """
    means = per_class.per_class_mean(pc, value)
    dense = means.groupby(rt.VARIANT).size().max() > DENSE_CLASSES
    binned = per_class.binned_by_size(means, value, SIZE_BINS) if dense else None
    return Image(save_figure(rp.per_class_vs_size(means, value, ylabel, title, binned), out, name), title)


def spread_image(pc: pd.DataFrame, title: str, out: Path, name: str) -> Image:
    """Per-class spread vs class size, in the feature space ``class_plots.spread_key`` picks for the tracker."""
    key, space = spread_key(pc.to_dict("records"))
    return per_class_image(pc, key, f"intra-class spread, {space} (1 - cos)", title, out, name)
