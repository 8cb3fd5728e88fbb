"""The search-sweep section of a report: the best trial (``platform.best``), the trials ranked, the papers'
figures, the head-vs-tail Pareto front and the best trial's per-class plots."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from platform.best import best_index, describe_no_best, reached_last_epoch
from platform.report import plots as rp
from platform.report import tables as rt
from platform.report.cells import fmt_int, fmt_metric, fmt_value, pct
from platform.report.document import Block, Heading, Image, Para, table
from platform.report.figures import per_class_image, save_figure, spread_image
from platform.report.papers import PAPER_RESULTS, PAPER_SOURCE, paper_epochs_note
from platform.report.runs import CONFIG_PREFIX, RunSet, schedule_epochs

TOP_TRIALS = 10
# The accuracy column of the head: Many if any trial has it, else Medium (small data has no Many class); of the
# tail: Few, else Medium (CIFAR-10-LT has no Few class). (group key, its name), first found first.
HEAD_GROUPS = (("acc_many", "Many"), ("acc_medium", "Medium"))
TAIL_GROUPS = (("acc_few", "Few"), ("acc_medium", "Medium"))


def _group_column(trials: pd.DataFrame, prefix: str, groups: Sequence[tuple[str, str]]) -> tuple[str | None, str]:
    """The first of ``groups`` any trial reports, as (its column, its name); (None, the first name) for none."""
    for group, name in groups:
        if prefix + group in trials and trials[prefix + group].notna().any():
            return prefix + group, name
    return None, groups[0][1]


def sweep_blocks(
    runs: RunSet, out: Path, prefix: str, metric: str, mode: str, objectives: Sequence[str] = ()
) -> list[Block]:
    """The best trial, the trials ranked, the head-vs-tail Pareto front and the best trial's per-class plots of a
    search sweep.

    The best trial is ``platform.best.best_index`` (the one definition ``summary.md`` and ``from_sweep`` use too):
    among the trials that reached the last epoch, the best last evaluated value. The table lists those trials
    first, then the ones stopped early (ASHA), each group by the metric, and says which is which.

    ``objectives``: every metric of a multi-objective sweep (``metric`` is the first). Such a sweep has no best
    trial and its front is the Optuna study's (``platform.report.optuna_section``), so neither is computed here:
    the trials are only ranked by ``metric``.
    """
    trials = runs.trials
    blocks: list[Block] = []
    varying = [
        c
        for c in trials.columns
        if c.startswith(CONFIG_PREFIX)
        and trials[c].dropna().astype(str).nunique() > 1
        and c[len(CONFIG_PREFIX) :] not in ("variant", "name")
    ]
    if metric not in trials:
        return [Para(f"No trial reports `{metric}`.")]
    epochs = schedule_epochs(runs)
    complete = reached_last_epoch(trials, epochs) if epochs is not None else pd.Series(False, index=trials.index)
    several = len(objectives) > 1
    best = best_index(trials, metric, mode, epochs) if epochs is not None and not several else None
    ranked = trials.assign(_complete=complete).sort_values(
        ["_complete", metric], ascending=[False, mode == "min"], na_position="last"
    )
    percent = rt.is_percent_metric(metric)  # one unit per table: accuracies in %, another metric on its own
    value = pct if percent else fmt_metric
    tail, tail_name = _group_column(trials, prefix, TAIL_GROUPS) if percent else (None, "Few")
    head, head_name = _group_column(trials, prefix, HEAD_GROUPS) if percent else (None, "Many")
    if head == tail:  # one group only: no head-vs-tail view
        head = None
    last = "last epoch" if epochs is None else f"epoch {epochs}"
    if several:
        chosen = (
            f"This sweep optimised {len(objectives)} metrics ({', '.join(f'`{m}`' for m in objectives)}): it "
            "has no single best trial. Its Pareto front, as the Optuna study holds it, is in the section "
            f"'Pareto front (Optuna study)'; here the trials are only ranked by the first, `{metric}`."
        )
    elif best is None:
        why = "the trials' epochs are unknown" if epochs is None else describe_no_best(trials, metric, epochs)
        chosen = f"No best trial: {why}."
    else:
        b = trials.loc[best]
        chosen = (
            f"Best trial: `{b['trial_id']}`, {metric} = {value(b[metric])}{' %' if percent else ''} at "
            f"epoch {fmt_int(b['epoch'])} (`platform.best`: among the trials that reached the last epoch, "
            f"{epochs}, the best last evaluated value; the same choice as `summary.md` and `from_sweep`)."
        )
    blocks += [
        Heading(f"Trials by `{metric}` ({mode})"),
        Para(
            chosen + " Selected on the metric the sweep optimised; when that is a test metric the best value "
            f"is an optimistic estimate of held-out performance. Trials that did not reach {last} (stopped "
            "early by ASHA) are listed after the complete ones and never chosen: their values come from a "
            "shorter schedule."
        ),
        Para(
            f"The top {min(TOP_TRIALS, len(trials))} of {len(trials)} trials; `trials.csv` and MLflow have all of them."
        ),
        table(
            [
                "trial",
                "epoch",
                f"reached {last}",
                metric + (" (%)" if percent else ""),
                *([f"{head_name} (%)", f"{tail_name} (%)"] if percent else []),
                *[f"{c[len(CONFIG_PREFIX) :]} (setting)" for c in varying],
            ],
            [
                [
                    str(t["trial_id"]) + (" (best)" if i == best else ""),
                    fmt_int(t["epoch"]),
                    "yes" if t["_complete"] else "no",
                    value(t[metric]),
                    *([pct(t.get(head)) if head else "—", pct(t.get(tail)) if tail else "—"] if percent else []),
                    *[fmt_value(t[c]) for c in varying],
                ]
                for i, t in ranked.head(TOP_TRIALS).iterrows()
            ],
        ),
    ]
    paper = PAPER_RESULTS.get(runs.dataset)
    if paper:
        note, comparable = paper_epochs_note(runs.dataset, [epochs] if epochs is not None else [])
        figures = ", ".join(f"{k} {v:.2f}" for k, v in paper.items())
        blocks.append(
            Para(
                f"{PAPER_SOURCE}, `{runs.dataset}`, balanced accuracy (%): {figures} ("
                + (note if comparable else f"**{note}**: shown only to place this run")
                + ")."
            )
        )

    many = head
    if many is not None and tail is not None and not several:  # several metrics: the study's front instead
        # Only trials that reached the last epoch compete: one ASHA stopped early is not a point on the same front.
        full = trials[complete]
        full = full[full[many].notna() & full[tail].notna()]
        xs, ys = full[many].tolist(), full[tail].tolist()
        labels = [str(t) for t in full["trial_id"]]
        front = rt.pareto_front(xs, ys)
        fig = rp.pareto_scatter(
            [100 * v for v in xs],
            [100 * v for v in ys],
            front,
            labels,
            f"{head_name}-class accuracy (%)",
            f"{tail_name}-class accuracy (%)",
        )
        blocks += [
            Heading("Head vs tail: Pareto front"),
            Para(
                f"The {len(full)} trials that reached the last epoch ({fmt_int(epochs)}); "
                f"tail = the {tail_name} group"
                + (" (no class has fewer than 20 training images)." if tail_name == "Medium" else ".")
            ),
            Image(
                save_figure(fig, out, "head_vs_tail_pareto.png"), f"{head_name} vs {tail_name} accuracy of every trial"
            ),
            table(
                [
                    "trial",
                    f"{head_name} (%)",
                    f"{tail_name} (%)",
                    f"{metric} (%)",
                    *[f"{c[len(CONFIG_PREFIX) :]} (setting)" for c in varying],
                ],
                [
                    [
                        labels[i],
                        pct(xs[i]),
                        pct(ys[i]),
                        pct(full.iloc[i][metric]),
                        *[fmt_value(full.iloc[i][c]) for c in varying],
                    ]
                    for i in front
                ],
            ),
        ]
    rows = runs.per_class.get(str(trials.loc[best, "run_id"])) if best is not None and "run_id" in trials else None
    if rows:
        pc = pd.DataFrame([{rt.VARIANT: f"trial {trials.loc[best, 'trial_id']}", **r} for r in rows])
        blocks += [
            Heading("Best trial per class"),
            per_class_image(
                pc,
                "accuracy",
                "per-class test accuracy",
                "Best trial: per-class accuracy vs class size",
                out,
                "best_accuracy_vs_class_size.png",
            ),
            spread_image(pc, "Best trial: embedding spread vs class size", out, "best_spread_vs_class_size.png"),
        ]
    return blocks
