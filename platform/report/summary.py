"""The end-of-sweep summary: ``trials.csv`` (every trial, status and searched values first) and ``summary.md``.

A trial's status is ``finished`` (reached the last epoch), ``stopped early`` (by the scheduler) or ``failed`` (with
its one-line reason). Its value is the last evaluated value of the sweep's metric (of each, with several). The best
trial comes from ``platform.best`` (the one definition ``from_sweep`` and the report use too); a sweep with several
metrics has a Pareto front instead, read from its Optuna study (``platform.pareto``).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import pandas as pd

from platform.best import best_index, describe_no_best
from platform.pareto import FrontTrial, load_front
from platform.plan import Plan
from platform.report.document import markdown_table
from platform.report.runs import CONFIG_PREFIX
from platform.report.trials import EPOCHS, FAILED, FINISHED, INTERRUPTED, STOPPED, TrialRecord, trial_table


def fmt(v: Any) -> str:
    """A table cell: floats to 4 significant digits, NaN/None as a dash."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def front_lines(df: pd.DataFrame, plan: Plan, front: Sequence[FrontTrial]) -> list[str]:
    """The Pareto front section: the study's own front (``platform.pareto``), one row per trial on it."""
    t = plan.spec.tune
    objectives = " and ".join(f"`{m}` ({d})" for m, d in zip(t.metrics, t.modes))
    lines = [
        "## Pareto front",
        "",
        f"{len(front)} trial(s) on the front of {objectives}, as the Optuna study holds it "
        f"(`optuna.load_study(study_name='{plan.sweep_name}', storage='sqlite:///{plan.layout.optuna_db}')"
        f".best_trials`; complete trials only).",
        "",
    ]
    if not front:
        return lines + ["None: no trial of the study completed.", ""]
    cols = searched_columns(df, plan)
    by_id = df.set_index("trial_id") if len(df) else df
    rows = []
    for f in front:
        row = by_id.loc[f.trial_id] if f.trial_id in by_id.index else None
        rows.append(
            [
                f.trial_id or "?",
                str(f.number),
                *[fmt(f.values[m]) for m in t.metrics],
                *[fmt(row[c]) if row is not None else "—" for c in cols],
            ]
        )
    header = ["trial", "optuna #", *t.metrics, *[c[len(CONFIG_PREFIX) :] for c in cols]]
    return lines + markdown_table(header, rows) + [""]


def best_lines(df: pd.DataFrame, plan: Plan, idx: object | None) -> list[str]:
    """The best trial section of a single-metric sweep (``platform.best``)."""
    t, epochs = plan.spec.tune, plan.cfg.optim.epochs
    lines = ["## Best trial", ""]
    if idx is None:
        return lines + [f"None: {describe_no_best(df, t.metric, epochs, epoch_col=EPOCHS)}.", ""]
    best = df.loc[idx]
    lines += [
        f"Trial `{best['trial_id']}`: {t.metric} = {best[t.metric]:.4f} at epoch {int(best['epochs'])} "
        f"(the best last evaluated value among the trials that reached epoch {epochs}).",
        "",
    ]
    lines += [f"- {c[len(CONFIG_PREFIX) :]} = {fmt(best[c])}" for c in searched_columns(df, plan)]
    return lines + [""]


def summary_text(
    df: pd.DataFrame,
    plan: Plan,
    *,
    config_path: str,
    tracking_uri: str,
    stopped: str | None = None,
    front: Sequence[FrontTrial] | None = None,
) -> str:
    """``summary.md``: counts, the best trial (or the Pareto front of several metrics), every trial, per-variant
    means (ablations), and what to run next."""
    t, epochs = plan.spec.tune, plan.cfg.optim.epochs
    counts = df["status"].value_counts() if len(df) else pd.Series(dtype=int)
    tally = ", ".join(
        f"{int(counts.get(s, 0))} {s}"
        for s in (FINISHED, STOPPED, FAILED, INTERRUPTED)
        if s != INTERRUPTED or counts.get(s, 0)
    )
    named = ", ".join(f"`{m}` ({d})" for m, d in zip(t.metrics, t.modes))
    lines = [
        f"# {plan.sweep_name}: {len(df)} trials ({tally})",
        "",
        f"Metric{'s' if t.multi_objective else ''} {named}; a trial's value is its last evaluated one. "
        f"Schedule: {epochs} epochs.",
        "",
    ]
    if stopped:
        lines += [f"**The sweep stopped early:** {stopped}.", ""]
    idx = None if t.multi_objective else best_index(df, t.metric, t.mode, epochs, epoch_col=EPOCHS)
    on_front = {f.trial_id for f in front or ()}
    lines += front_lines(df, plan, front or []) if t.multi_objective else best_lines(df, plan, idx)
    lines += ["## Trials", ""]
    cols = searched_columns(df, plan)
    header = ["trial", "status", "epochs", *[c[len(CONFIG_PREFIX) :] for c in cols], *t.metrics, "reason"]
    rows = [
        [
            str(r["trial_id"]) + (" **(best)**" if i == idx else " **(front)**" if r["trial_id"] in on_front else ""),
            str(r["status"]),
            str(r["epochs"]),
            *[fmt(r[c]) for c in cols],
            *[fmt(r[m]) for m in t.metrics],
            str(r["reason"]),
        ]
        for i, r in df.iterrows()
    ]
    lines += markdown_table(header, rows) + [""]
    if plan.spec.ablation is not None and len(df):
        lines += per_variant(df[df["status"] == FINISHED], plan)
    lines += next_steps(
        plan,
        config_path=config_path,
        tracking_uri=tracking_uri,
        interrupted=bool(len(df)) and bool((df["status"] == INTERRUPTED).any()),
    )
    return "\n".join(lines) + "\n"


def searched_columns(df: pd.DataFrame, plan: Plan) -> list[str]:
    keys = [*(("variant", "seed") if plan.spec.ablation is not None else ()), *plan.space]
    return [CONFIG_PREFIX + k for k in keys if CONFIG_PREFIX + k in df.columns]


def per_variant(df: pd.DataFrame, plan: Plan) -> list[str]:
    """Mean and std over seeds of each variant's finished trials, in percent."""
    metric = plan.spec.tune.metric
    split = metric.split("/")[0]
    cols = [
        c
        for c in (
            metric,
            f"{split}/acc_many",
            f"{split}/acc_medium",
            f"{split}/acc_few",
            f"{split}/posthoc_tau1/balanced_acc",
        )
        if c in df.columns and df[c].notna().any()
    ]
    if not cols or CONFIG_PREFIX + "variant" not in df:
        return []
    g = df.groupby(CONFIG_PREFIX + "variant")[cols]
    mean, std, n = g.mean() * 100, g.std() * 100, g.size()
    rows = [
        [str(v), str(int(n[v])), *[f"{mean.loc[v, c]:.2f} ± {fmt(std.loc[v, c])}" for c in cols]] for v in mean.index
    ]
    return [
        "## Per variant (finished trials; mean ± std over seeds, %)",
        "",
        *markdown_table(["variant", "seeds", *cols], rows),
        "",
    ]


def next_steps(plan: Plan, *, config_path: str, tracking_uri: str, interrupted: bool) -> list[str]:
    ui = (
        f"`.venv/bin/mlflow ui --backend-store-uri {tracking_uri}`"
        if not tracking_uri.startswith("http")
        else f"open {tracking_uri}"
    )
    lines = [
        "## Next",
        "",
        f"- Compare trials in MLflow: {ui}",
        f"- Report: `.venv/bin/python -m platform.report {plan.out}`",
    ]
    if interrupted:
        lines.append(
            f"- Continue the interrupted trials: `.venv/bin/python -m platform.tune {config_path} --resume "
            f"--out {plan.out}`"
        )
    return lines + [""]


def sweep_front(plan: Plan) -> list[FrontTrial] | None:
    """The Pareto front of a multi-objective sweep from its study (``platform.pareto``); None for one metric."""
    t = plan.spec.tune
    if not t.multi_objective:
        return None
    return load_front(plan.layout.optuna_db, plan.sweep_name, t.metrics) if plan.layout.optuna_db.is_file() else []


def write_summary(
    records: list[TrialRecord],
    plan: Plan,
    *,
    config_path: str,
    tracking_uri: str,
    stopped: str | None = None,
    front: Sequence[FrontTrial] | None = None,
) -> tuple[pd.DataFrame, str]:
    """Write ``trials.csv`` and ``summary.md``; return the trial table and the summary text. ``front``: the study's
    Pareto front of a multi-objective sweep (``sweep_front``)."""
    df = trial_table(records, plan)
    df.to_csv(plan.layout.trials_csv, index=False)
    text = summary_text(df, plan, config_path=config_path, tracking_uri=tracking_uri, stopped=stopped, front=front)
    plan.layout.summary.write_text(text)
    return df, text
