"""One row per trial of a finished sweep: ``TrialRecord`` from Tune's results, and the ``trials.csv`` table.

A trial's status is ``finished`` (reached the last epoch), ``stopped early`` (by the scheduler) or ``failed`` (with
its one-line reason); its value is the last evaluated value of the sweep's metric (of each, with several).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from platform.best import EPOCH
from platform.failures import FAILURE_KEY
from platform.plan import Plan
from platform.report.runs import CONFIG_PREFIX

FINISHED, STOPPED, FAILED, INTERRUPTED = "finished", "stopped early", "failed", "interrupted"  # trial statuses
# JSON blobs, and Ray's report counters (they count reports, not epochs: "epochs" is the progress column)
DROPPED_COLUMNS = (
    "per_class_json",
    "restored_history_json",
    "config",
    EPOCH,
    "training_iteration",
    "iterations_since_restore",
)
EPOCHS = "epochs"  # the last epoch a trial reached (0 if it never finished one)
TRIAL_COLUMNS = ("trial_id", "status", "epochs", "reason")


@dataclass(frozen=True)
class TrialRecord:
    """One trial as the sweep left it.

    Attributes:
        last: its last reported result (Tune's ``Result.metrics``).
        last_evaluated: its last reported value of the sweep's (first) metric (NaN if it never evaluated).
        epochs: the last epoch it completed (0 if none).
        error: its error's one-line reason, or None.
        ended: False if the sweep stopped before the trial ended (Ctrl-C, or a driver that died).
        values: every tuned metric -> its last reported value (NaN if never evaluated).
    """

    last: Mapping[str, Any]
    last_evaluated: float
    epochs: int
    error: str | None
    ended: bool = True
    values: Mapping[str, float] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        """Ended without an error after training at least one epoch (to the end, or until the scheduler stopped it)."""
        return self.error is None and self.ended and self.epochs > 0


def last_value(last: Mapping[str, Any], history: Any, metric: str) -> float:
    """A trial's last reported value of ``metric``: in its last result, else the last one in its history."""
    value = last.get(metric)
    if value is None and history is not None and metric in history:
        evaluated = history[metric].dropna()
        value = evaluated.iloc[-1] if len(evaluated) else None
    return float(value) if value is not None else math.nan


def records_from_results(results: Iterable[Any], metric: str | Sequence[str]) -> list[TrialRecord]:
    """``TrialRecord``s from a Tune ``ResultGrid``; ``metric``: the tuned metric, or the list of them."""
    metrics = (metric,) if isinstance(metric, str) else tuple(metric)
    # Tune's Trial objects say which trials ended; a Result does not (a private attribute: read defensively).
    trials = getattr(getattr(results, "_experiment_analysis", None), "trials", None) or []
    ended = {t.trial_id: t.status in ("TERMINATED", "ERROR") for t in trials}
    out = []
    for r in results:
        last = dict(r.metrics or {})
        reached = last.get(EPOCH)
        history = r.metrics_dataframe  # every result of the trial (a failed trial's last one has no metrics)
        values = {m: last_value(last, history, m) for m in metrics}
        if reached is None and history is not None and EPOCH in history:
            reached = history[EPOCH].max()
        error = None
        if r.error is not None:
            error = str(last.get(FAILURE_KEY) or "") or error_line(r.error)
        out.append(
            TrialRecord(
                last,
                values[metrics[0]],
                int(reached) if reached is not None and not pd.isna(reached) else 0,
                error,
                ended.get(str(last.get("trial_id")), True),
                values,
            )
        )
    return out


def error_line(error: BaseException) -> str:
    """The last non-empty line of an error's text, prefixed with its type when the text does not name it."""
    lines = [ln.strip() for ln in str(error).strip().splitlines() if ln.strip()]
    line = lines[-1] if lines else ""
    return line if ":" in line else f"{type(error).__name__}: {line}".rstrip(": ")


def trial_table(records: list[TrialRecord], plan: Plan) -> pd.DataFrame:
    """One row per trial: id, status, epochs reached, reason, searched values (and variant, seed), the metric, then
    every other reported column."""
    metrics, epochs = plan.spec.tune.metrics, plan.cfg.optim.epochs
    searched = [CONFIG_PREFIX + k for k in plan.space] + [
        CONFIG_PREFIX + k for k in ("variant", "seed") if plan.spec.ablation is not None
    ]
    rows = []
    for rec in records:
        last = rec.last
        reached = rec.epochs
        status = (
            FAILED
            if rec.error
            else INTERRUPTED
            if not rec.succeeded  # stopped before it ended or started
            else STOPPED
            if reached < epochs
            else FINISHED
        )
        config = last.get("config") or {}
        row: dict[str, Any] = {
            "trial_id": str(last.get("trial_id", "")),
            "status": status,
            EPOCHS: reached,
            "reason": rec.error or "",
        }
        row.update({c: config.get(c[len(CONFIG_PREFIX) :]) for c in searched})
        row.update({m: rec.values.get(m, rec.last_evaluated if m == metrics[0] else math.nan) for m in metrics})
        row.update({k: v for k, v in last.items() if k not in row and k not in DROPPED_COLUMNS})
        row.update({CONFIG_PREFIX + k: v for k, v in config.items() if CONFIG_PREFIX + k not in row})
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else [*TRIAL_COLUMNS, *metrics])
