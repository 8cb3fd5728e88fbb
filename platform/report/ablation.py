"""The ablation section of a report (variants x seeds): the verdict, balanced accuracy beside the papers, the
accuracy, post-hoc, calibration, margin and embedding-geometry tables, the per-class plots and every trial."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from platform.report import plots as rp
from platform.report import per_class
from platform.report import tables as rt
from platform.report.cells import fmt_int, pct
from platform.report.document import Block, Bullets, Heading, Image, Para, table
from platform.report.figures import per_class_frame, per_class_image, save_figure, spread_image
from platform.report.papers import PAPER_RESULTS, PAPER_SOURCE, paper_epochs_note, paper_rows
from platform.report.posthoc_section import calibration_blocks
from platform.report.runs import RunSet, schedule_epochs, trial_epochs
from platform.report.verdict import roles_of, verdict, with_derived

PAPER_DATASETS = ", ".join(PAPER_RESULTS)


def paper_para(dataset: str, epochs: list[int]) -> Para:
    """Where the papers' figures come from, and whether these runs' ``epochs`` make them comparable."""
    note, comparable = paper_epochs_note(dataset, epochs)
    if not note:
        return Para(
            f"No published figures for dataset `{dataset or '?'}` in the code's table ({PAPER_DATASETS}); "
            "the paper column is empty."
        )
    if comparable:
        return Para(
            f"Paper figures: {PAPER_SOURCE}, dataset `{dataset}` ({note}). They come from the papers' full recipes."
        )
    return Para(
        f"Paper figures: {PAPER_SOURCE}, dataset `{dataset}`. **{note[0].upper() + note[1:]}**: the "
        "papers' numbers come from their full training schedules, so the differences below say nothing "
        "about the methods; they are shown only to place this run."
    )


def ablation_blocks(runs: RunSet, out: Path, prefix: str) -> tuple[list[Block], dict[str, dict[str, rt.Stat]]]:
    """Tables, plots and the verdict of a variants x seeds ablation; plots are written under ``out``.

    Returns:
        (blocks, stats): ``stats`` is ``tables.aggregate`` of every ``prefix`` and ``train/`` metric.
    """
    trials = with_derived(runs.trials, prefix)
    metrics = [c for c in trials.columns if c.startswith(prefix) or c.startswith("train/")]
    stats = rt.aggregate(trials, metrics)
    roles = roles_of(trials)
    taus = rt.posthoc_taus(metrics, prefix)
    blocks: list[Block] = []

    comparisons = verdict(stats, roles, prefix)
    blocks += [
        Heading("Verdict"),
        Para(
            "Computed from the mean over seeds of each trial's final-epoch value. A gap counts as beyond "
            "seed noise only if it exceeds the larger of the two sample stds; with 2-3 seeds this is a "
            "rough screen, not a significance test. The ELM loss here is this project's reconstruction from "
            "the ELM paper's abstract (elm/losses/elm.py), so a claim that does not hold speaks about the "
            "reconstruction as much as about the paper."
        ),
    ]
    for source in dict.fromkeys(c.source for c in comparisons):
        blocks += [
            Para(f"**Claims of the {source}:**" if "hypothesis" not in source else f"**A {source}:**"),
            Bullets(tuple(c.sentence() for c in comparisons if c.source == source)),
        ]

    epochs = trial_epochs(trials) or ([e] if (e := schedule_epochs(runs)) is not None else [])
    h, r = paper_rows(stats, roles, runs.dataset, prefix, epochs)
    blocks += [Heading("Balanced accuracy beside the papers"), paper_para(runs.dataset, epochs), table(h, r)]

    blocks += [Heading("Accuracy (mean ± std over seeds)"), table(*rt.stat_table(stats, rt.ACCURACY_COLUMNS, prefix))]
    if taus:
        blocks += [
            Heading("Post-hoc logit adjustment of each variant's logits"),
            Para(
                "Logits minus tau x log prior after training (Menon et al. 2021, eq. 7); tau=1 on the CE "
                "variant is the paper's post-hoc baseline."
            ),
            table(*rt.stat_table(stats, rt.posthoc_columns(taus), prefix)),
        ]
    blocks += calibration_blocks(stats, metrics, prefix)
    blocks += [
        Heading("Logit margins (logits; mean ± std over seeds)"),
        Para(
            "Logit margin f_y - max f_y' over test examples; class-mean std is the std over classes of the "
            "per-class mean margin (lower: more uniform margins across head and tail). The share of "
            "negative margins is in the accuracy table."
        ),
        table(*rt.stat_table(stats, rt.MARGIN_COLUMNS, prefix)),
    ]
    blocks += geometry_blocks(stats, metrics, prefix)
    anchors = rt.stat_table(stats, rt.ANCHOR_COLUMNS, "train/")
    if any(cell != "—" for row in anchors[1] for cell in row[2:]):
        margin = rt.stat_table(
            stats, (rt.Column("emb_margin_applied_mean", "mean margin applied (1 - cos units)"),), "train/"
        )
        blocks += [
            Heading("Where the embedding term acts (training, last epoch)"),
            Para(
                "Anchors of the contrastive term with at least one positive in their batch, per group, and "
                "each group's share of the anchors that contribute; with 2 augmented views every anchor has "
                "one. Variants without an embedding term have no entries."
            ),
            table(*anchors),
            table(*margin),
        ]

    blocks.append(Heading("Plots"))
    pc = per_class_frame(runs)
    if len(pc):
        blocks.append(
            per_class_image(
                pc,
                "accuracy",
                "per-class test accuracy",
                "Per-class accuracy vs class size (mean over seeds)",
                out,
                "accuracy_vs_class_size.png",
            )
        )
        blocks.append(
            spread_image(pc, "Embedding spread vs class size (mean over seeds)", out, "spread_vs_class_size.png")
        )
    else:
        blocks.append(
            Para("No per-class tables (`margins/per_class.json`) were found, so the per-class plots are missing.")
        )
    quantiles = per_class.group_quantiles(stats, prefix)
    if any(quantiles.values()):
        blocks.append(
            Image(
                save_figure(rp.logit_margin_groups(quantiles), out, "logit_margins_by_group.png"),
                "Logit-margin distribution per group and variant",
            )
        )

    blocks += [
        Heading("Trials"),
        table(
            ["variant", "seed", "trial", "epoch", "balanced acc (%)", "Few (%)"],
            [
                [
                    str(t[rt.VARIANT]),
                    fmt_int(t[rt.SEED]),
                    str(t["trial_id"]),
                    fmt_int(t["epoch"]),
                    pct(t.get(prefix + "balanced_acc")),
                    pct(t.get(prefix + "acc_few")),
                ]
                for _, t in trials.iterrows()
            ],
        ),
    ]
    return blocks, stats


def geometry_blocks(stats: Mapping[str, Mapping[str, rt.Stat]], metrics: Sequence[str], prefix: str) -> list[Block]:
    """The embedding-geometry section: ``tables.geometry_tables`` (both spaces, eval split and training sample),
    or the older single table of runs from before the two spaces were measured."""
    tables = rt.geometry_tables(stats, prefix)
    intro = Para(
        "Estimators from `elm.metrics.geometry`: spread is the pairwise estimate of 1 - cos to the class "
        "mean direction (its bias does not depend on class size, unlike an in-sample or leave-one-out "
        "mean), the variance ratio is the unbiased within-class trace over the total trace. `train` is a "
        "fixed sample of up to 50 training images per class. The projection head is trained only by "
        "variants with an embedding term: compare variants with each other in the backbone space."
    )
    if tables:
        out: list[Block] = [Heading("Embedding geometry"), intro]
        for title, header, rows in tables:
            out += [Para(f"**{title}**"), table(header, rows)]
        return out
    return [
        Heading("Embedding geometry (cosine distance 1 - cos; mean ± std over seeds)"),
        Para(
            f"Measured on the {rt.geometry_space(metrics, prefix)[2]}. Spread is 1 - cos to the class mean "
            "direction (lower: tighter classes); separation min is the smallest cosine distance between "
            "class means."
        ),
        table(*rt.stat_table(stats, rt.geometry_columns(metrics, prefix), prefix)),
    ]
