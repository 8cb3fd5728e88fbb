"""The one definition of a sweep's best trial, shared by ``summary.md``, ``from_sweep`` and the report.

The best trial is, among the trials that reached the last epoch (``optim.epochs``), the one with the best last
evaluated value of the sweep's metric. Trials stopped early by ASHA, or failed, never compete with complete ones:
an early value is measured on a shorter schedule. Pure pandas; nothing here reads files.

This is the rule for one metric. A sweep with several metrics (a list in ``tune.metric``) has no single best trial:
its "best" is the Pareto front its Optuna study holds (``platform.pareto``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TRIAL_ID = "trial_id"  # ties go to the smallest trial id
EPOCH = "epoch"  # the column holding the last epoch a trial reached (reported by every epoch of elm.train.fit)


def reached_last_epoch(trials: pd.DataFrame, epochs: int, epoch_col: str = EPOCH) -> pd.Series:
    """Boolean mask of the trials (rows) whose last epoch is ``epochs`` or more.

    Args:
        trials: one row per trial, with ``epoch_col``.
        epochs: the schedule's length (``optim.epochs``).
    """
    if epoch_col not in trials.columns:
        return pd.Series(False, index=trials.index)
    return pd.to_numeric(trials[epoch_col], errors="coerce").fillna(0) >= epochs


def best_index(trials: pd.DataFrame, metric: str, mode: str, epochs: int, epoch_col: str = EPOCH) -> object | None:
    """Index label of the best trial in ``trials``, or None when no trial reached the last epoch with a finite value.
    Ties go to the smallest ``trial_id`` (when the column exists), so every caller picks the same trial.

    Args:
        trials: one row per trial with ``metric`` (its last evaluated value) and ``epoch_col``.
        metric: a ``split/name`` column.
        mode: ``"max"`` or ``"min"``.
        epochs: the schedule's length (``optim.epochs``).
    Raises:
        ValueError: ``mode`` is not max or min.
    """
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    if metric not in trials.columns:
        return None
    values = pd.to_numeric(trials[metric], errors="coerce")
    ok = reached_last_epoch(trials, epochs, epoch_col) & np.isfinite(values.astype(float))
    values = values[ok]
    if values.empty:
        return None
    best = values.max() if mode == "max" else values.min()
    tied = values[values == best]
    if len(tied) > 1 and TRIAL_ID in trials.columns:  # the same trial whatever order the caller's rows are in
        return trials.loc[tied.index, TRIAL_ID].astype(str).sort_values().index[0]
    return tied.index[0]


def describe_no_best(trials: pd.DataFrame, metric: str, epochs: int, epoch_col: str = EPOCH) -> str:
    """Why ``best_index`` found nothing, in one line."""
    if len(trials) == 0:
        return "no trial ran"
    if metric not in trials.columns:
        return f"no trial reported {metric}"
    reached = int(reached_last_epoch(trials, epochs, epoch_col).sum())
    if reached == 0:
        return f"no trial reached the last epoch ({epochs})"
    return f"none of the {reached} trials that reached epoch {epochs} has a finite {metric}"
