"""Building a report's document: the introduction, the ablation or search-sweep section, the post-hoc and Optuna
(or confirmation) sections and the runs left out, from a ``RunSet``; writes ``aggregate.csv`` for an ablation."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from platform.report import tables as rt
from platform.report.ablation import ablation_blocks
from platform.report.cells import fmt_value
from platform.report.document import Block, Bullets, Heading, Para
from platform.report.optuna_section import optuna_blocks
from platform.report.posthoc_section import posthoc_blocks
from platform.report.runs import RunSet, epochs_text
from platform.report.sweep import sweep_blocks

AGGREGATE_CSV = "aggregate.csv"  # an ablation's mean, std and n per variant and metric, in the report folder


def variant_sources_blocks(variant_sources: Mapping[str, Mapping[str, Any]]) -> list[Block]:
    """Which sweep trial each ``from_sweep`` variant took its values from (``<dir>/variant_sources.yaml``)."""
    return [
        Heading("Variant hyperparameters taken from sweeps"),
        Bullets(
            tuple(
                f"`{v}`: {', '.join(f'{k} = {fmt_value(x)}' for k, x in src.get('values', {}).items())} from trial "
                f"`{src.get('trial_id')}` of `{src.get('sweep')}` "
                f"({src.get('metric')} = {fmt_value(src.get('value'))}, its last reported value)"
                + (
                    " — chosen on the test split, so this variant's test numbers are optimistic"
                    if src.get("chosen_on_test_split")
                    else ""
                )
                for v, src in variant_sources.items()
            )
        ),
    ]


def build_report(
    runs: RunSet,
    out: Path,
    *,
    name: str,
    metric: str = "test/balanced_acc",
    mode: str = "max",
    prefix: str = "test/",
    variant_sources: Mapping[str, Mapping[str, Any]] | None = None,
    experiment_dir: Path | None = None,
    objectives: Sequence[str] = (),
) -> list[Block]:
    """The whole document; writes plots under ``out/plots`` and ``out/aggregate.csv`` for an ablation.

    ``variant_sources``: ``<dir>/variant_sources.yaml``, the sweep trials that ``from_sweep`` variants came from.
    ``experiment_dir``: the sweep's folder, where ``platform.posthoc`` output and ``optuna.db`` are looked for.
    ``objectives``: every tuned metric of a multi-objective sweep (``metric``, ``mode``: its first).
    """
    out.mkdir(parents=True, exist_ok=True)
    trials = runs.trials
    kind = "ablation" if runs.is_ablation else "search sweep"
    variants = list(pd.unique(trials[rt.VARIANT])) if len(trials) else []
    seeds = sorted({int(s) for s in trials[rt.SEED].dropna()}) if len(trials) else []
    blocks: list[Block] = [
        Heading(f"Report: {name}", 1),
        Para(
            f"Source: {runs.source}. Dataset `{runs.dataset or '?'}`; {kind}; {len(trials)} finished trials"
            + (f" ({len(variants)} variants x seeds {seeds})" if runs.is_ablation else "")
            + f". Every number is a trial's value at its {epochs_text(trials)}, never its best epoch; "
            "means and sample stds (ddof=1) are over seeds; accuracies in %."
        ),
    ]
    if variant_sources:
        blocks += variant_sources_blocks(variant_sources)
    if not len(trials):
        blocks.append(Para("No finished trials."))
    elif runs.is_ablation:
        ab, stats = ablation_blocks(runs, out, prefix)
        blocks += ab
        pd.DataFrame(
            [
                {rt.VARIANT: v, "metric": m, "mean": s.mean, "std": s.std, "n": s.n}
                for v, by in stats.items()
                for m, s in by.items()
            ]
        ).to_csv(out / AGGREGATE_CSV, index=False)
    else:
        blocks += sweep_blocks(runs, out, prefix, metric, mode, objectives)
    if len(trials):
        from platform.posthoc import group_label_of

        ordered = (
            trials
            if runs.is_ablation or metric not in trials
            else trials.sort_values(metric, ascending=mode == "min", na_position="last")
        )  # a search's best trials first
        groups = list(
            dict.fromkeys(group_label_of(str(v), str(t)) for v, t in zip(ordered[rt.VARIANT], ordered["trial_id"]))
        )
        blocks += posthoc_blocks(experiment_dir, out, groups)
    if runs.is_ablation:
        from platform.confirm import confirm_blocks

        blocks += confirm_blocks(experiment_dir)
    else:
        blocks += optuna_blocks(experiment_dir, out, name, objectives)
    if runs.excluded:
        blocks += [Heading("Runs left out"), Bullets(runs.excluded)]
    return blocks
