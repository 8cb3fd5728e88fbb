"""Turn a finished sweep or ablation into a markdown + HTML report with tables, plots and an honest verdict.

    python -m platform.report experiments/cifar10_reduced [--out DIR] [--tracking-uri URI] [--experiment NAME]

Reads the experiment's MLflow store (``<dir>/mlflow.db`` by default; child runs tagged ``elm.role=trial``) or,
without one, ``<dir>/trials.csv``. Every number is a trial's value at its final evaluated epoch (never its best
epoch), averaged over seeds as mean ± sample std. Writes ``report.md``, ``report.html`` (self-contained, images
embedded), ``aggregate.csv`` and ``plots/*.png`` to ``<dir>/report/`` (or ``--out``).
An ablation (runs tagged with variant names) gets per-variant tables, the LA paper's Table 3 beside ours
(Menon et al. 2021, https://arxiv.org/abs/2007.07314), per-class plots and a verdict on CE < post-hoc <= LA <= ELM
and on ELM's tighter tail geometry (Jitkrittum et al. 2022, https://arxiv.org/abs/2204.13208). A search sweep
gets its best trial (``platform.best``: among trials that reached the last epoch, the best last evaluated value),
its other trials marked complete or not, and the head-vs-tail (Many vs Few accuracy) Pareto front. The papers'
figures always carry the epochs of their protocol and of these runs, and "not comparable" when ours are fewer
(a ``--smoke`` run). Every table uses one unit, named in its headers (accuracies in %).
"""
from __future__ import annotations

import argparse
import base64
import html
import json
import math
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import unquote, urlparse

import pandas as pd
import yaml

from platform import report_plots as rp
from platform.report_blocks import Block, Bullets, Heading, Image, Para, Table, table  # noqa: F401  (re-exported)
from platform import report_posthoc as rpost
from platform import report_tables as rt
from platform.best import best_index, describe_no_best, reached_last_epoch
from platform.plots import spread_key
from platform.layout import ExperimentDir
from platform.mlflow_schema import (
    PER_CLASS_ARTIFACT, SEARCH_VARIANT, TAG_ROLE, TAG_SWEEP_ID, TAG_TRIAL, TAG_VARIANT, quote,
)

CONFIG_PREFIX = "config/"  # params columns, as in Ray's trials.csv
TOP_TRIALS = 10
DENSE_CLASSES = 30  # above this many classes, per-class plots show log-size bin means
SIZE_BINS = 12
PAPER_DATASETS = ", ".join(rt.PAPER_RESULTS)


@dataclass(frozen=True)
class RunSet:
    """The finished trials of one experiment, in memory.

    Attributes:
        trials: one row per trial: run_id, trial_id, variant, seed, loss, status, epoch (final evaluated epoch,
            nan if unknown), ``config/<dotted key>`` params and ``<split>/<metric>`` final values.
        per_class: run_id -> the per-class table (``margins/per_class.json``) of its final evaluation.
        config: the experiment's base config as a raw mapping ({} if unknown).
        source: where the numbers came from, for the report.
        excluded: one line per run left out (failed or unfinished), for the report.
    """

    trials: pd.DataFrame
    per_class: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    excluded: tuple[str, ...] = ()

    @property
    def is_ablation(self) -> bool:
        return bool(len(self.trials)) and bool((self.trials[rt.VARIANT] != SEARCH_VARIANT).any())

    @property
    def dataset(self) -> str:
        data = self.config.get("data", {})
        if isinstance(data, Mapping) and data.get("name"):
            return str(data["name"])
        col = CONFIG_PREFIX + "data.name"
        return str(self.trials[col].dropna().iloc[0]) if col in self.trials and self.trials[col].notna().any() else ""


# ---------------------------------------------------------------------------------------------------- loading


def load_mlflow(tracking_uri: str, experiment: str, metric: str, experiment_dir: Path | None = None,
                sweep_id: str | None = None) -> RunSet:
    """Trial runs, their final metrics, params, per-class artifacts and the parent's config from an MLflow store.

    Args:
        metric: the sweep's metric; its history gives each trial's final epoch (the step of its last value).
        experiment_dir: where to look for ``mlartifacts/`` when the recorded artifact location has moved.
        sweep_id: only the runs of this sweep (``elm.sweep_id``; several sweeps may share a store and a name).

    Raises:
        FileNotFoundError: no experiment of that name in the store.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        known = [e.name for e in client.search_experiments()]
        raise FileNotFoundError(f"no MLflow experiment '{experiment}' in {tracking_uri}; known: {known}")
    runs = []
    token = None
    of_sweep = f" and tags.`{TAG_SWEEP_ID}` = {quote(sweep_id)}" if sweep_id else ""
    trial_filter = f"tags.`{TAG_ROLE}` = 'trial'" + of_sweep
    while True:
        page = client.search_runs([exp.experiment_id], filter_string=trial_filter, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            break
    rows, per_class, excluded = [], {}, []
    with tempfile.TemporaryDirectory(prefix="elm-report-") as tmp:
        for run in sorted(runs, key=lambda r: r.info.run_name or ""):
            tags = run.data.tags
            label = f"{run.info.run_name} (variant {tags.get('variant', '?')}, seed {tags.get('seed', '?')})"
            if run.info.status != "FINISHED":
                reason = tags.get("error", "")
                excluded.append(f"{label}: status {run.info.status}" + (f": {reason}" if reason else ""))
                continue
            history = client.get_metric_history(run.info.run_id, metric) if metric in run.data.metrics else []
            row: dict[str, Any] = {
                "run_id": run.info.run_id,
                "trial_id": tags.get(TAG_TRIAL, run.info.run_name),
                rt.VARIANT: tags.get(TAG_VARIANT, SEARCH_VARIANT),
                rt.SEED: _int_or_nan(tags.get("seed", run.data.params.get("seed"))),
                "loss": tags.get("loss", run.data.params.get("loss.name", "")),
                "status": run.info.status,
                "epoch": max((m.step for m in history), default=math.nan),
            }
            row.update({CONFIG_PREFIX + k: _parse_param(v) for k, v in run.data.params.items()})
            row.update(run.data.metrics)  # MLflow's latest value = the largest step = the final evaluated epoch
            rows.append(row)
            text = _read_artifact(client, run, PER_CLASS_ARTIFACT, Path(tmp), experiment_dir, MlflowException)
            if text is not None:
                per_class[run.info.run_id] = json.loads(text)
        config = _parent_config(client, exp.experiment_id, Path(tmp), experiment_dir, MlflowException)
    trials = pd.DataFrame(rows, columns=None if rows else ["run_id", "trial_id", rt.VARIANT, rt.SEED, "loss"])
    return RunSet(trials, per_class, config, f"MLflow store `{tracking_uri}`, experiment `{experiment}`",
                  tuple(excluded))


def _read_artifact(client: Any, run: Any, relpath: str, tmp: Path, experiment_dir: Path | None,
                   error: type[Exception]) -> str | None:
    """A run artifact's text: read in place from a local artifact store, else downloaded; None if absent."""
    path = artifact_file(client, run, relpath, tmp, experiment_dir, error)
    return path.read_text() if path is not None else None


def artifact_file(client: Any, run: Any, relpath: str, tmp: Path, experiment_dir: Path | None,
                  error: type[Exception] = Exception) -> Path | None:
    """Where a run's artifact ``relpath`` can be read: in place in a local artifact store (or under
    ``experiment_dir/mlartifacts`` when the folder has moved), else downloaded under ``tmp``; None if absent.

    Args:
        run: an ``mlflow.entities.Run``.
        error: the store's exception type for a missing artifact (``MlflowException``).
    """
    candidates = []
    uri = urlparse(run.info.artifact_uri or "")
    if uri.scheme == "file":
        candidates.append(Path(unquote(uri.path)) / relpath)
    if experiment_dir is not None:  # the store records absolute URIs; a moved experiment folder still has them here
        candidates.append(experiment_dir / "mlartifacts" / run.info.run_id / "artifacts" / relpath)
    for path in candidates:
        if path.is_file():
            return path
    if uri.scheme in ("file", ""):
        return None
    try:  # a remote artifact store
        return Path(client.download_artifacts(run.info.run_id, relpath, str(tmp / run.info.run_id)))
    except (OSError, error):
        return None


def _parent_config(client: Any, experiment_id: str, tmp: Path, experiment_dir: Path | None,
                   error: type[Exception]) -> dict[str, Any]:
    parents = client.search_runs([experiment_id], filter_string=f"tags.`{TAG_ROLE}` = 'parent'", max_results=1)
    text = _read_artifact(client, parents[0], "config.yaml", tmp, experiment_dir, error) if parents else None
    raw = yaml.safe_load(text) if text else None
    return raw if isinstance(raw, dict) else {}


def load_trials_csv(path: Path, config: Mapping[str, Any]) -> RunSet:
    """Ray's ``trials.csv`` (last reported result of every trial) when there is no MLflow store.

    The variant's loss comes from the config's ``ablation.variants`` (else the base ``loss.name``); there is
    no per-class table and no run status (every row is kept).
    """
    df = pd.read_csv(path)
    variants = (config.get("ablation") or {}).get("variants") or {}
    base_loss = (config.get("loss") or {}).get("name", "")
    variant = df[CONFIG_PREFIX + "variant"].astype(str) if CONFIG_PREFIX + "variant" in df else SEARCH_VARIANT
    out = df.assign(**{rt.VARIANT: variant})
    if CONFIG_PREFIX + "seed" in out:
        out[rt.SEED] = out[CONFIG_PREFIX + "seed"]
    else:
        out[rt.SEED] = config.get("seed", math.nan)

    def loss_of(v: str) -> str:
        over = variants.get(v) or {}
        loss = over.get("loss") if isinstance(over, Mapping) else None
        if isinstance(loss, Mapping) and "name" in loss:
            return str(loss["name"])
        return str(over.get("loss.name", base_loss)) if isinstance(over, Mapping) else base_loss

    out["loss"] = out[rt.VARIANT].map(loss_of)
    out["status"] = "unknown"
    if "epoch" not in out:
        out["epoch"] = out.get("training_iteration", math.nan)
    if "run_id" not in out:
        out["run_id"] = out.get("trial_id", pd.Series(range(len(out)))).astype(str)
    return RunSet(out, {}, dict(config), f"`{path}` (Ray's last reported result per trial; no MLflow store)")


def _int_or_nan(v: Any) -> float | int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return math.nan


def _parse_param(v: str) -> Any:
    """MLflow params are strings; numbers back to numbers so that varying params sort and plot."""
    try:
        return yaml.safe_load(v) if isinstance(v, str) and len(v) < 200 else v
    except yaml.YAMLError:
        return v


# ---------------------------------------------------------------------------------------------- the document


def to_markdown(blocks: Sequence[Block]) -> str:
    """Render blocks as GitHub markdown (pipes in cells escaped)."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Para):
            out += [b.text, ""]
        elif isinstance(b, Bullets):
            out += [f"- {item}" for item in b.items] + [""]
        elif isinstance(b, Table):
            cell = lambda s: str(s).replace("|", "\\|")  # noqa: E731
            out.append("| " + " | ".join(cell(h) for h in b.header) + " |")
            out.append("|" + "|".join("---" for _ in b.header) + "|")
            out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in b.rows]
            out.append("")
        elif isinstance(b, Image):
            out += [f"![{b.alt}]({b.path})", ""]
    return "\n".join(out)


def _inline_html(text: str) -> str:
    escaped = html.escape(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


def to_html(blocks: Sequence[Block], title: str, root: Path | None = None) -> str:
    """Render blocks as one HTML page; images are embedded as base64 when ``root`` holds them, else linked."""
    body: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{_inline_html(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            body.append(f"<p>{_inline_html(b.text)}</p>")
        elif isinstance(b, Bullets):
            body.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{_inline_html(h)}</th>" for h in b.header)
            rows = "".join("<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in r) + "</tr>" for r in b.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(b, Image):
            src = html.escape(b.path)
            if root is not None and (root / b.path).is_file():
                src = "data:image/png;base64," + base64.b64encode((root / b.path).read_bytes()).decode("ascii")
            body.append(f'<figure><img src="{src}" alt="{html.escape(b.alt)}"><figcaption>'
                        f"{html.escape(b.alt)}</figcaption></figure>")
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
             "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
             "td:first-child,th:first-child{text-align:left}img{max-width:100%}code{background:#f3f3f3}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


# ------------------------------------------------------------------------------------------------ building


def roles_of(trials: pd.DataFrame) -> dict[str, str]:
    """variant -> role ('ce', 'la', 'embedding_only', 'elm', or the loss name) from the loss each variant trains."""
    roles: dict[str, str] = {}
    for variant, loss in zip(trials[rt.VARIANT], trials["loss"]):
        roles.setdefault(str(variant), rt.ROLE_OF_LOSS.get(str(loss), str(loss) or str(variant)))
    return roles


def per_class_frame(runs: RunSet) -> pd.DataFrame:
    """One row per (trial, class) of the per-class tables, with the trial's variant and seed."""
    rows = []
    for run_id, variant, seed in zip(runs.trials["run_id"], runs.trials[rt.VARIANT], runs.trials[rt.SEED]):
        for r in runs.per_class.get(str(run_id), []):
            rows.append({rt.VARIANT: variant, rt.SEED: seed, "run_id": run_id, **r})
    return pd.DataFrame(rows)


def _save(fig: Any, out: Path, name: str) -> str:
    import matplotlib.pyplot as plt

    (out / "plots").mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "plots" / name, dpi=110)
    plt.close(fig)
    return f"plots/{name}"


def _per_class_plot(pc: pd.DataFrame, value: str, ylabel: str, title: str, out: Path, name: str) -> Image:
    """Per-class ``value`` vs class size, averaged over seeds; binned when there are many classes."""
    means = rt.per_class_mean(pc, value)
    dense = means.groupby(rt.VARIANT).size().max() > DENSE_CLASSES
    binned = rt.binned_by_size(means, value, SIZE_BINS) if dense else None
    return Image(_save(rp.per_class_vs_size(means, value, ylabel, title, binned), out, name), title)


def _spread_plot(pc: pd.DataFrame, title: str, out: Path, name: str) -> Image:
    """Per-class spread vs class size, in the feature space ``platform.plots.spread_key`` picks for the tracker."""
    key, space = spread_key(pc.to_dict("records"))
    return _per_class_plot(pc, key, f"intra-class spread, {space} (1 - cos)", title, out, name)


def schedule_epochs(runs: RunSet) -> int | None:
    """The experiment's schedule length: the config's ``optim.epochs``, else the most epochs any trial reached."""
    optim = runs.config.get("optim")
    if isinstance(optim, Mapping) and isinstance(optim.get("epochs"), int):
        return int(optim["epochs"])
    reached = pd.to_numeric(runs.trials["epoch"], errors="coerce").dropna() if "epoch" in runs.trials else None
    return int(reached.max()) if reached is not None and len(reached) else None


def trial_epochs(trials: pd.DataFrame) -> list[int]:
    """The epochs the shown trials trained (each trial's last epoch); empty when unknown."""
    if "epoch" not in trials:
        return []
    return sorted({int(e) for e in pd.to_numeric(trials["epoch"], errors="coerce").dropna()})


def _paper_para(dataset: str, epochs: list[int]) -> Para:
    note, comparable = rt.paper_epochs_note(dataset, epochs)
    if not note:
        return Para(f"No published figures for dataset `{dataset or '?'}` in the code's table ({PAPER_DATASETS}); "
                    "the paper column is empty.")
    if comparable:
        return Para(f"Paper figures: {rt.PAPER_SOURCE}, dataset `{dataset}` ({note}). They come from the papers' "
                    "full recipes.")
    return Para(f"Paper figures: {rt.PAPER_SOURCE}, dataset `{dataset}`. **{note[0].upper() + note[1:]}**: the "
                "papers' numbers come from their full training schedules, so the differences below say nothing "
                "about the methods; they are shown only to place this run.")


def _epochs_text(trials: pd.DataFrame) -> str:
    epochs = sorted({int(e) for e in trials["epoch"].dropna()}) if "epoch" in trials else []
    if not epochs:
        return "final evaluated epoch (unknown)"
    return f"final evaluated epoch {epochs[0]}" if len(epochs) == 1 else f"final evaluated epochs {epochs}"


def ablation_blocks(runs: RunSet, out: Path, prefix: str) -> tuple[list[Block], dict[str, dict[str, rt.Stat]]]:
    """Tables, plots and the verdict of a variants x seeds ablation; plots are written under ``out``."""
    trials = rt.with_derived(runs.trials, prefix)
    metrics = [c for c in trials.columns if c.startswith(prefix) or c.startswith("train/")]
    stats = rt.aggregate(trials, metrics)
    roles = roles_of(trials)
    taus = rt.posthoc_taus(metrics, prefix)
    blocks: list[Block] = []

    comparisons = rt.verdict(stats, roles, prefix)
    blocks += [Heading("Verdict"),
               Para("Computed from the mean over seeds of each trial's final-epoch value. A gap counts as beyond "
                    "seed noise only if it exceeds the larger of the two sample stds; with 2-3 seeds this is a "
                    "rough screen, not a significance test. The ELM loss here is this project's reconstruction from "
                    "the ELM paper's abstract (elm/losses/elm.py), so a claim that does not hold speaks about the "
                    "reconstruction as much as about the paper.")]
    for source in dict.fromkeys(c.source for c in comparisons):
        blocks += [Para(f"**Claims of the {source}:**" if "hypothesis" not in source else f"**A {source}:**"),
                   Bullets(tuple(c.sentence() for c in comparisons if c.source == source))]

    epochs = trial_epochs(trials) or ([e] if (e := schedule_epochs(runs)) is not None else [])
    h, r = rt.paper_rows(stats, roles, runs.dataset, prefix, epochs)
    blocks += [Heading("Balanced accuracy beside the papers"), _paper_para(runs.dataset, epochs), table(h, r)]

    blocks += [Heading("Accuracy (mean ± std over seeds)"), table(*rt.stat_table(stats, rt.ACCURACY_COLUMNS, prefix))]
    if taus:
        blocks += [Heading("Post-hoc logit adjustment of each variant's logits"),
                   Para("Logits minus tau x log prior after training (Menon et al. 2021, eq. 7); tau=1 on the CE "
                        "variant is the paper's post-hoc baseline."),
                   table(*rt.stat_table(stats, rt.posthoc_columns(taus), prefix))]
    blocks += rpost.calibration_blocks(stats, metrics, prefix)
    blocks += [Heading("Logit margins (logits; mean ± std over seeds)"),
               Para("Logit margin f_y - max f_y' over test examples; class-mean std is the std over classes of the "
                    "per-class mean margin (lower: more uniform margins across head and tail). The share of "
                    "negative margins is in the accuracy table."),
               table(*rt.stat_table(stats, rt.MARGIN_COLUMNS, prefix))]
    blocks += geometry_blocks(stats, metrics, prefix)
    anchors = rt.stat_table(stats, rt.ANCHOR_COLUMNS, "train/")
    if any(cell != "—" for row in anchors[1] for cell in row[2:]):
        margin = rt.stat_table(stats, (rt.Column("emb_margin_applied_mean", "mean margin applied (1 - cos units)"),),
                               "train/")
        blocks += [Heading("Where the embedding term acts (training, last epoch)"),
                   Para("Anchors of the contrastive term with at least one positive in their batch, per group, and "
                        "each group's share of the anchors that contribute; with 2 augmented views every anchor has "
                        "one. Variants without an embedding term have no entries."),
                   table(*anchors), table(*margin)]

    blocks.append(Heading("Plots"))
    pc = per_class_frame(runs)
    if len(pc):
        blocks.append(_per_class_plot(pc, "accuracy", "per-class test accuracy",
                                      "Per-class accuracy vs class size (mean over seeds)", out,
                                      "accuracy_vs_class_size.png"))
        blocks.append(_spread_plot(pc, "Embedding spread vs class size (mean over seeds)", out,
                                   "spread_vs_class_size.png"))
    else:
        blocks.append(Para("No per-class tables (`margins/per_class.json`) were found, so the per-class plots are "
                           "missing."))
    quantiles = rt.group_quantiles(stats, prefix)
    if any(quantiles.values()):
        blocks.append(Image(_save(rp.logit_margin_groups(quantiles), out, "logit_margins_by_group.png"),
                            "Logit-margin distribution per group and variant"))

    blocks += [Heading("Trials"),
               table(["variant", "seed", "trial", "epoch", "balanced acc (%)", "Few (%)"],
                     [[str(t[rt.VARIANT]), _fmt_int(t[rt.SEED]), str(t["trial_id"]), _fmt_int(t["epoch"]),
                       _pct(t.get(prefix + "balanced_acc")), _pct(t.get(prefix + "acc_few"))]
                      for _, t in trials.iterrows()])]
    return blocks, stats


def geometry_blocks(stats: Mapping[str, Mapping[str, rt.Stat]], metrics: Sequence[str], prefix: str) -> list[Block]:
    """The embedding-geometry section: ``report_tables.geometry_tables`` (both spaces, eval split and training
    sample), or the older single table of runs from before the two spaces were measured."""
    tables = rt.geometry_tables(stats, prefix)
    intro = Para("Estimators from `elm.metrics.geometry`: spread is the pairwise estimate of 1 - cos to the class "
                 "mean direction (its bias does not depend on class size, unlike an in-sample or leave-one-out "
                 "mean), the variance ratio is the unbiased within-class trace over the total trace. `train` is a "
                 "fixed sample of up to 50 training images per class. The projection head is trained only by "
                 "variants with an embedding term: compare variants with each other in the backbone space.")
    if tables:
        out: list[Block] = [Heading("Embedding geometry"), intro]
        for title, header, rows in tables:
            out += [Para(f"**{title}**"), table(header, rows)]
        return out
    return [Heading("Embedding geometry (cosine distance 1 - cos; mean ± std over seeds)"),
            Para(f"Measured on the {rt.geometry_space(metrics, prefix)[2]}. Spread is 1 - cos to the class mean "
                 "direction (lower: tighter classes); separation min is the smallest cosine distance between "
                 "class means."),
            table(*rt.stat_table(stats, rt.geometry_columns(metrics, prefix), prefix))]


def _head_group(trials: pd.DataFrame, prefix: str) -> tuple[str | None, str]:
    """The accuracy column of the head: Many if any trial has it, else Medium (small data has no Many class)."""
    for group, name in (("acc_many", "Many"), ("acc_medium", "Medium")):
        if prefix + group in trials and trials[prefix + group].notna().any():
            return prefix + group, name
    return None, "Many"


def _tail_group(trials: pd.DataFrame, prefix: str) -> tuple[str | None, str]:
    """The accuracy column of the tail: Few if any trial has it, else Medium (CIFAR-10-LT has no Few class)."""
    for group, name in (("acc_few", "Few"), ("acc_medium", "Medium")):
        if prefix + group in trials and trials[prefix + group].notna().any():
            return prefix + group, name
    return None, "Few"


def sweep_blocks(runs: RunSet, out: Path, prefix: str, metric: str, mode: str,
                 objectives: Sequence[str] = ()) -> list[Block]:
    """The best trial, the trials ranked, the head-vs-tail Pareto front and the best trial's per-class plots of a
    search sweep.

    The best trial is ``platform.best.best_index`` (the one definition ``summary.md`` and ``from_sweep`` use too):
    among the trials that reached the last epoch, the best last evaluated value. The table lists those trials
    first, then the ones stopped early (ASHA), each group by the metric, and says which is which.

    ``objectives``: every metric of a multi-objective sweep (``metric`` is the first). Such a sweep has no best
    trial and its front is the Optuna study's (``platform.report_optuna``), so neither is computed here: the trials
    are only ranked by ``metric``.
    """
    trials = runs.trials
    blocks: list[Block] = []
    varying = [c for c in trials.columns if c.startswith(CONFIG_PREFIX)
               and trials[c].dropna().astype(str).nunique() > 1 and c[len(CONFIG_PREFIX):] not in ("variant", "name")]
    if metric not in trials:
        return [Para(f"No trial reports `{metric}`.")]
    epochs = schedule_epochs(runs)
    complete = reached_last_epoch(trials, epochs) if epochs is not None else pd.Series(False, index=trials.index)
    several = len(objectives) > 1
    best = best_index(trials, metric, mode, epochs) if epochs is not None and not several else None
    ranked = trials.assign(_complete=complete).sort_values(
        ["_complete", metric], ascending=[False, mode == "min"], na_position="last")
    percent = rt.is_percent_metric(metric)  # one unit per table: accuracies in %, another metric on its own
    value = _pct if percent else _fmt_metric
    tail, tail_name = _tail_group(trials, prefix) if percent else (None, "Few")
    head, head_name = _head_group(trials, prefix) if percent else (None, "Many")
    if head == tail:  # one group only: no head-vs-tail view
        head = None
    last = "last epoch" if epochs is None else f"epoch {epochs}"
    if several:
        chosen = (f"This sweep optimised {len(objectives)} metrics ({', '.join(f'`{m}`' for m in objectives)}): it "
                  "has no single best trial. Its Pareto front, as the Optuna study holds it, is in the section "
                  f"'Pareto front (Optuna study)'; here the trials are only ranked by the first, `{metric}`.")
    elif best is None:
        why = "the trials' epochs are unknown" if epochs is None else describe_no_best(trials, metric, epochs)
        chosen = f"No best trial: {why}."
    else:
        b = trials.loc[best]
        chosen = (f"Best trial: `{b['trial_id']}`, {metric} = {value(b[metric])}{' %' if percent else ''} at "
                  f"epoch {_fmt_int(b['epoch'])} (`platform.best`: among the trials that reached the last epoch, "
                  f"{epochs}, the best last evaluated value; the same choice as `summary.md` and `from_sweep`).")
    blocks += [Heading(f"Trials by `{metric}` ({mode})"),
               Para(chosen + " Selected on the metric the sweep optimised; when that is a test metric the best value "
                    f"is an optimistic estimate of held-out performance. Trials that did not reach {last} (stopped "
                    "early by ASHA) are listed after the complete ones and never chosen: their values come from a "
                    "shorter schedule."),
               Para(f"The top {min(TOP_TRIALS, len(trials))} of {len(trials)} trials; `trials.csv` and MLflow have "
                    "all of them."),
               table(["trial", "epoch", f"reached {last}", metric + (" (%)" if percent else ""),
                      *([f"{head_name} (%)", f"{tail_name} (%)"] if percent else []),
                      *[f"{c[len(CONFIG_PREFIX):]} (setting)" for c in varying]],
                     [[str(t["trial_id"]) + (" (best)" if i == best else ""), _fmt_int(t["epoch"]),
                       "yes" if t["_complete"] else "no", value(t[metric]),
                       *([_pct(t.get(head)) if head else "—", _pct(t.get(tail)) if tail else "—"] if percent else []),
                       *[_fmt_value(t[c]) for c in varying]]
                      for i, t in ranked.head(TOP_TRIALS).iterrows()])]
    paper = rt.PAPER_RESULTS.get(runs.dataset)
    if paper:
        note, comparable = rt.paper_epochs_note(runs.dataset, [epochs] if epochs is not None else [])
        figures = ", ".join(f"{k} {v:.2f}" for k, v in paper.items())
        blocks.append(Para(f"{rt.PAPER_SOURCE}, `{runs.dataset}`, balanced accuracy (%): {figures} ("
                           + (note if comparable else f"**{note}**: shown only to place this run") + ")."))

    many = head
    if many is not None and tail is not None and not several:  # several metrics: the study's front instead
        # Only trials that reached the last epoch compete: one ASHA stopped early is not a point on the same front.
        full = trials[complete]
        full = full[full[many].notna() & full[tail].notna()]
        xs, ys = full[many].tolist(), full[tail].tolist()
        labels = [str(t) for t in full["trial_id"]]
        front = rt.pareto_front(xs, ys)
        fig = rp.pareto_scatter([100 * v for v in xs], [100 * v for v in ys], front, labels,
                                f"{head_name}-class accuracy (%)", f"{tail_name}-class accuracy (%)")
        blocks += [Heading("Head vs tail: Pareto front"),
                   Para(f"The {len(full)} trials that reached the last epoch ({_fmt_int(epochs)}); "
                        f"tail = the {tail_name} group"
                        + (" (no class has fewer than 20 training images)." if tail_name == "Medium" else ".")),
                   Image(_save(fig, out, "head_vs_tail_pareto.png"),
                         f"{head_name} vs {tail_name} accuracy of every trial"),
                   table(["trial", f"{head_name} (%)", f"{tail_name} (%)", f"{metric} (%)",
                          *[f"{c[len(CONFIG_PREFIX):]} (setting)" for c in varying]],
                         [[labels[i], _pct(xs[i]), _pct(ys[i]), _pct(full.iloc[i][metric]),
                           *[_fmt_value(full.iloc[i][c]) for c in varying]] for i in front])]
    rows = runs.per_class.get(str(trials.loc[best, "run_id"])) if best is not None and "run_id" in trials else None
    if rows:
        pc = pd.DataFrame([{rt.VARIANT: f"trial {trials.loc[best, 'trial_id']}", **r} for r in rows])
        blocks += [Heading("Best trial per class"),
                   _per_class_plot(pc, "accuracy", "per-class test accuracy",
                                   "Best trial: per-class accuracy vs class size", out,
                                   "best_accuracy_vs_class_size.png"),
                   _spread_plot(pc, "Best trial: embedding spread vs class size", out,
                                "best_spread_vs_class_size.png")]
    return blocks


def _fmt_metric(v: Any) -> str:
    return "—" if v is None or pd.isna(v) else f"{float(v):.4f}"


def _pct(v: Any) -> str:
    return "—" if v is None or pd.isna(v) else f"{100 * float(v):.2f}"


def _fmt_int(v: Any) -> str:
    return "—" if v is None or pd.isna(v) else str(int(v))


def _fmt_value(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def build_report(runs: RunSet, out: Path, *, name: str, metric: str = "test/balanced_acc", mode: str = "max",
                 prefix: str = "test/", variant_sources: Mapping[str, Mapping[str, Any]] | None = None,
                 experiment_dir: Path | None = None, objectives: Sequence[str] = ()) -> list[Block]:
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
        Para(f"Source: {runs.source}. Dataset `{runs.dataset or '?'}`; {kind}; {len(trials)} finished trials"
             + (f" ({len(variants)} variants x seeds {seeds})" if runs.is_ablation else "")
             + f". Every number is a trial's value at its {_epochs_text(trials)}, never its best epoch; "
             "means and sample stds (ddof=1) are over seeds; accuracies in %."),
    ]
    if variant_sources:
        blocks += [Heading("Variant hyperparameters taken from sweeps"), Bullets([
            f"`{v}`: {', '.join(f'{k} = {_fmt_value(x)}' for k, x in src.get('values', {}).items())} from trial "
            f"`{src.get('trial_id')}` of `{src.get('sweep')}` ({src.get('metric')} = {_fmt_value(src.get('value'))}, "
            "its last reported value)"
            + (" — chosen on the test split, so this variant's test numbers are optimistic"
               if src.get("chosen_on_test_split") else "")
            for v, src in variant_sources.items()])]
    if not len(trials):
        blocks.append(Para("No finished trials."))
    elif runs.is_ablation:
        ab, stats = ablation_blocks(runs, out, prefix)
        blocks += ab
        pd.DataFrame([{rt.VARIANT: v, "metric": m, "mean": s.mean, "std": s.std, "n": s.n}
                      for v, by in stats.items() for m, s in by.items()]).to_csv(out / "aggregate.csv", index=False)
    else:
        blocks += sweep_blocks(runs, out, prefix, metric, mode, objectives)
    if len(trials):
        from platform.posthoc import group_label_of

        ordered = trials if runs.is_ablation or metric not in trials else trials.sort_values(
            metric, ascending=mode == "min", na_position="last")  # a search's best trials first
        groups = list(dict.fromkeys(group_label_of(str(v), str(t)) for v, t in zip(ordered[rt.VARIANT],
                                                                                   ordered["trial_id"])))
        blocks += rpost.posthoc_blocks(experiment_dir, out, groups)
    if runs.is_ablation:
        from platform.confirm import confirm_blocks

        blocks += confirm_blocks(experiment_dir)
    else:
        from platform.report_optuna import optuna_blocks

        blocks += optuna_blocks(experiment_dir, out, name, objectives)
    if runs.excluded:
        blocks += [Heading("Runs left out"), Bullets(runs.excluded)]
    return blocks


# ------------------------------------------------------------------------------------------------------ CLI


@dataclass(frozen=True)
class Source:
    name: str
    directory: Path | None
    tracking_uri: str | None
    experiment: str
    config: dict[str, Any]
    sweep_id: str | None = None  # the sweep's own id (sweep_id.txt), when the folder has one


def resolve(target: str, tracking_uri: str | None, experiment: str | None) -> Source:
    """Find the experiment folder, its config, its store (or trials.csv) and the MLflow experiment name.

    Raises:
        FileNotFoundError: no such folder (and no store given), or an http(s) store whose server does not answer.
    """
    path = Path(target)
    directory = path if path.is_dir() else (Path("experiments") / target if (Path("experiments") / target).is_dir()
                                            else None)
    if directory is None and tracking_uri is None:
        raise FileNotFoundError(f"{target}: no such experiment folder (nor experiments/{target}); "
                                "pass a folder written by platform.tune, or --tracking-uri and --experiment")
    directory = directory.resolve() if directory is not None else None
    config: dict[str, Any] = {}
    layout = ExperimentDir(directory) if directory is not None else None
    if layout is not None and layout.config.is_file():
        raw = yaml.safe_load(layout.config.read_text())
        config = raw if isinstance(raw, dict) else {}
    tracking = config.get("tracking") or {}
    if tracking_uri is None and tracking.get("uri"):  # the sweep tracked to a shared store
        tracking_uri = str(tracking["uri"])
    if tracking_uri is None and layout is not None and layout.mlflow_db.is_file():
        tracking_uri = layout.default_tracking_uri
    if tracking_uri is not None and tracking_uri.startswith(("http://", "https://")):
        from elm.config import ConfigError
        from platform.plan import check_tracking_uri

        try:  # MLflow's client would retry a server that is down for minutes
            check_tracking_uri(tracking_uri)
        except ConfigError as e:
            raise FileNotFoundError(str(e)) from None
    name = str(config.get("name") or (directory.name if directory is not None else target))
    sweep_id = layout.read_sweep_id(name) if layout is not None and layout.sweep_id.is_file() else None
    return Source(name=name, directory=directory, tracking_uri=tracking_uri,
                  experiment=experiment or str(tracking.get("experiment") or name), config=config, sweep_id=sweep_id)


def load(src: Source, metric: str) -> RunSet:
    if src.tracking_uri is not None:
        runs = load_mlflow(src.tracking_uri, src.experiment, metric, src.directory, src.sweep_id)
        return runs if runs.config else RunSet(runs.trials, runs.per_class, src.config, runs.source, runs.excluded)
    csv = ExperimentDir(src.directory).trials_csv if src.directory is not None else None
    if csv is None or not csv.is_file():
        raise FileNotFoundError(f"{src.directory}: neither mlflow.db nor trials.csv; has platform.tune run here?")
    return load_trials_csv(csv, src.config)


def tuned_metrics(tune_cfg: Mapping[str, Any], default: str) -> list[str]:
    """The sweep's ``tune.metric`` as a list (several for a multi-objective sweep), or ``[default]``."""
    metric = tune_cfg.get("metric", default)
    return [str(m) for m in metric] if isinstance(metric, list) else [str(metric)]


def write_report(blocks: Sequence[Block], out: Path, title: str) -> tuple[Path, Path]:
    md, page = out / "report.md", out / "report.html"
    md.write_text(to_markdown(blocks))
    page.write_text(to_html(blocks, title, root=out))
    return md, page


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m platform.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment_dir", help="folder written by platform.tune, or a name under experiments/")
    parser.add_argument("--out", default=None, help="report folder (default <experiment_dir>/report)")
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default sqlite:///<dir>/mlflow.db)")
    parser.add_argument("--experiment", default=None, help="MLflow experiment name (default: the config's name)")
    parser.add_argument("--split", default="test", choices=("test", "val"), help="metric split to report")
    args = parser.parse_args(argv)
    try:
        src = resolve(args.experiment_dir, args.tracking_uri, args.experiment)
        tune_cfg = src.config.get("tune") or {}
        objectives = tuned_metrics(tune_cfg, f"{args.split}/balanced_acc")
        runs = load(src, objectives[0])
        if runs.config and not src.config:
            tune_cfg = runs.config.get("tune") or {}
            objectives = tuned_metrics(tune_cfg, objectives[0])
        metric = objectives[0]
        out = Path(args.out) if args.out else (src.directory or Path("experiments") / src.name) / "report"
        sources_file = ExperimentDir(src.directory).sources if src.directory is not None else None
        sources = yaml.safe_load(sources_file.read_text()) if sources_file and sources_file.is_file() else None
        mode = tune_cfg.get("mode", "max")
        blocks = build_report(runs, out, name=src.name, metric=metric,
                              mode=str(mode[0] if isinstance(mode, list) else mode), prefix=f"{args.split}/",
                              variant_sources=sources, experiment_dir=src.directory,
                              objectives=objectives if len(objectives) > 1 else ())
        md, page = write_report(blocks, out, f"Report: {src.name}")
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {md} and {page}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
