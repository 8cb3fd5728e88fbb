"""Post-hoc analysis of a finished sweep on its stored logits, without retraining.

    python -m platform.posthoc EXPERIMENT_DIR [--out DIR] [--tracking-uri URI] [--experiment NAME]

Each trial that reached its last epoch logged ``stored_logits.npz`` (final val/test logits, labels, training
counts; ``elm.metrics.stored_logits``) to its MLflow run. Per trial this sweeps (``platform.posthoc_trial``):

- a global tau: f_y - tau * log pi_y (Menon et al. 2021, eq. 7, https://arxiv.org/abs/2007.07314);
- a tau per group (Many / Medium / Few), every combination on a grid;
- shifted test priors, forward / backward imbalance k (Hong et al. 2021, LADE, https://arxiv.org/abs/2012.00321),
  made by reweighting the balanced test set, adjusted with the known prior: f_y - tau * log pi_y + log pi_t(y).

Every setting is chosen on the validation split and read once on test. An experiment without a validation split
is chosen on test itself; its rows say ``test (oracle)`` and are upper bounds, not estimates. Writes
``posthoc.md``, ``posthoc.csv`` (every trial x method x test prior) and ``plots/*.png`` (tau curves, shifted
priors, a reliability diagram per variant before and after adjustment) to ``<dir>/posthoc/`` (or ``--out``);
``platform.report`` links them. Cost: 0.2 s per CIFAR-10 trial, about 1 s with CIFAR-100's 3 groups (printed at
the end). Expected: on CE logits validation picks tau near 1 and balanced accuracy rises (Menon et al. 2021, Table 3:
72.84 -> 77.40 on CIFAR-10-LT); on logit-adjusted losses it picks tau near 0; with a known backward-shifted prior
the known-prior rule beats balanced adjustment (docs/results/posthoc_cifar10_reduced_3ep).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from elm.metrics.calibration import reliability_bins
from elm.metrics.posthoc_search import adjusted_logits
from elm.metrics.stored_logits import STORED_LOGITS_FILE, load_stored_logits
from platform.posthoc_trial import (
    BALANCED_ONLY,
    GLOBAL_TAUS,
    GROUP_TAUS,
    KNOWN_PRIOR,
    KNOWN_PRIOR_ONE,
    NO_ADJUSTMENT,
    RELIABILITY_BINS,
    SHIFTS,
    UNIFORM,
    analyse,
)

POSTHOC_DIR = "posthoc"


class StoredLogitsError(ValueError):
    """A trial's stored-logits file cannot be analysed (corrupt, not an .npz, no test split)."""


@dataclass(frozen=True)
class TrialLogits:
    """A finished trial and where its stored logits are (None: it stored none)."""

    run_id: str
    trial_id: str
    variant: str
    seed: Any
    path: Path | None


def find_stored_logits(src: Any, metric: str, tmp: Path) -> list[TrialLogits]:
    """The finished trials of the experiment ``src`` (``platform.report.Source``) and their stored-logits files: the
    MLflow artifact, else the file in the trial's final checkpoint (``platform.backfill_logits``).

    Raises:
        FileNotFoundError: the experiment has no MLflow store (stored logits are MLflow artifacts).
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from platform.backfill_logits import stored_logits_in_run_folder
    from platform.report import artifact_file, load_mlflow

    if src.tracking_uri is None:
        raise FileNotFoundError(f"{src.directory}: no MLflow store; stored logits are logged there by platform.tune")
    runs = load_mlflow(src.tracking_uri, src.experiment, metric, src.directory, src.sweep_id)
    client = MlflowClient(tracking_uri=src.tracking_uri)
    out = []
    for _, t in runs.trials.iterrows():
        run = client.get_run(str(t["run_id"]))
        path = artifact_file(client, run, STORED_LOGITS_FILE, tmp, src.directory, MlflowException)
        if path is None and src.directory is not None and run.info.run_name:  # platform.backfill_logits wrote it
            path = stored_logits_in_run_folder(src.directory, run.info.run_name)
        out.append(TrialLogits(str(t["run_id"]), str(t["trial_id"]), str(t["variant"]), t["seed"], path))
    return out


def group_label_of(variant: str, trial_id: str) -> str:
    """Rows are aggregated over the seeds of an ablation variant; each trial of a search stands alone."""
    from platform.mlflow_schema import SEARCH_VARIANT

    return f"trial {trial_id}" if variant == SEARCH_VARIANT else variant


def _mean_std(values: pd.Series, percent: bool = True) -> str:
    v = values.dropna().astype(float) * (100 if percent else 1)
    if not len(v):
        return "—"
    fmt = "{:.2f}" if percent else "{:.4f}"
    return fmt.format(v.mean()) + (f" ± {fmt.format(v.std(ddof=1))}" if len(v) > 1 else "")


def markdown(df: pd.DataFrame, missing: Sequence[str], seconds: Sequence[float], name: str) -> str:
    """``posthoc.md``: the uniform-prior table (accuracy and ECE by group) and the shifted-prior table."""
    lines = [f"# Post-hoc analysis: {name}", ""]
    if not len(df):
        why = (
            f"No trial stored logits (trials without: {', '.join(missing) or 'none'}). Trials store them at their "
            "last epoch since issue 15; older or stopped ones have none."
        )
        return "\n".join(lines + [why]) + "\n"
    on = sorted(set(df["selected_on"]))
    lines.append(
        f"{df['trial'].nunique()} trials with stored logits; settings chosen on **{', '.join(on)}**"
        + (
            " (no validation split: the test numbers of chosen settings are optimistic upper bounds, not estimates)"
            if any("oracle" in o for o in on)
            else ", read once on test"
        )
        + f". Global tau grid {GLOBAL_TAUS[0]:g}..{GLOBAL_TAUS[-1]:g} step {GLOBAL_TAUS[1]:g}; per-group grid "
        f"{GROUP_TAUS[0]:g}..{GROUP_TAUS[-1]:g} step {GROUP_TAUS[1]:g}, every combination. Accuracies in %, "
        f"ECE ({RELIABILITY_BINS} bins) in %, mean ± sample std over the trials of a row's group."
        + (f" Analysis time per trial: median {np.median(seconds):.2f} s, max {max(seconds):.2f} s." if seconds else "")
    )
    lines.append("")
    if missing:
        lines += [
            "Trials without stored logits (stopped before their last epoch, or from before logits were "
            "stored): " + ", ".join(missing),
            "",
        ]
    uni = df[df["test_prior"] == UNIFORM]
    cols = [
        ("val", "val balanced"),
        ("test", "test balanced"),
        ("test_acc_many", "Many"),
        ("test_acc_medium", "Medium"),
        ("test_acc_few", "Few"),
        ("ece", "ECE"),
        ("ece_many", "ECE Many"),
        ("ece_medium", "ECE Medium"),
        ("ece_few", "ECE Few"),
    ]
    cols = [(c, h) for c, h in cols if c in uni and uni[c].notna().any()]
    lines += [
        "## Balanced test set: post-hoc adjustment and calibration by group",
        "",
        "| group | method | setting (first trial) | " + " | ".join(h for _, h in cols) + " |",
        "|" + "---|" * (3 + len(cols)),
    ]
    for (g, m), rows in uni.groupby(["group", "method"], sort=False):
        lines.append(
            f"| {g} | {m} | {rows['setting'].iloc[0]} | " + " | ".join(_mean_std(rows[c]) for c, _ in cols) + " |"
        )
    shifted = df[df["test_prior"] != UNIFORM]
    methods = [NO_ADJUSTMENT, BALANCED_ONLY, KNOWN_PRIOR_ONE, KNOWN_PRIOR]
    lines += [
        "",
        "## Shifted test priors (test accuracy under the prior, %)",
        "",
        "The balanced test set reweighted to forward (head stays head) or backward (tail becomes head) "
        "imbalance k. `balanced post-hoc` keeps the tau chosen for the uniform prior; `known prior` adds "
        "log pi_t to the adjusted logits, with tau = 1 or with tau chosen on the validation split reweighted "
        "to the same prior.",
        "",
        "| group | test prior | " + " | ".join(methods) + " |",
        "|" + "---|" * (2 + len(methods)),
    ]
    for (g, prior), rows in shifted.groupby(["group", "test_prior"], sort=False):
        by = {m: r for m, r in rows.groupby("method")}
        lines.append(
            f"| {g} | {prior} | " + " | ".join(_mean_std(by[m]["test"]) if m in by else "—" for m in methods) + " |"
        )
    lines += [
        "",
        "## Plots",
        "",
        "![tau curves](plots/tau_curves.png)",
        "",
        "![shifted priors](plots/shifted_priors.png)",
        "",
    ]
    lines += [f"![reliability {g}](plots/{reliability_file(g)})" for g in dict.fromkeys(df["group"])]
    return "\n".join(lines) + "\n"


def reliability_file(group: str) -> str:
    return "reliability_" + "".join(ch if ch.isalnum() else "_" for ch in group) + ".png"


def run(src: Any, out: Path, metric: str) -> tuple[pd.DataFrame, list[float]]:
    """Analyse every trial of ``src``; write ``posthoc.md``, ``posthoc.csv`` and ``plots/`` under ``out``."""
    import matplotlib.pyplot as plt

    from platform.report import plots as rp

    rows: list[dict[str, Any]] = []
    missing, seconds = [], []
    curves: dict[str, list[tuple[dict[str, list[float]], float]]] = {}
    pooled: dict[str, dict[str, list[tuple[torch.Tensor, torch.Tensor]]]] = {}
    with tempfile.TemporaryDirectory(prefix="elm-posthoc-") as tmp:
        for t in find_stored_logits(src, metric, Path(tmp)):
            if t.path is None:
                missing.append(t.trial_id)
                continue
            t0 = time.perf_counter()
            try:
                stored = load_stored_logits(t.path)
                a = analyse(stored)
            except ValueError as e:  # a corrupt or foreign file: name the trial, stop (skipping would hide it)
                raise StoredLogitsError(f"trial {t.trial_id}: {e}") from None
            seconds.append(time.perf_counter() - t0)
            g = group_label_of(t.variant, t.trial_id)
            rows += [
                {"group": g, "trial": t.trial_id, "variant": t.variant, "seed": t.seed, "run_id": t.run_id, **r}
                for r in a.rows
            ]
            curves.setdefault(g, []).append((a.curve, a.tau_star))
            ft, yt = (torch.from_numpy(x) for x in stored.splits["test"])
            counts = torch.from_numpy(stored.class_counts)
            probs = {
                "before (tau=0)": ft.softmax(dim=1),
                "after (chosen tau)": adjusted_logits(ft, counts, a.tau_star).float().softmax(dim=1),
            }
            for label, p in probs.items():
                conf, pred = p.max(dim=1)
                pooled.setdefault(g, {}).setdefault(label, []).append((conf, pred == yt))
    df = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "posthoc.csv", index=False)
    (out / "posthoc.md").write_text(markdown(df, missing, seconds, src.name))
    if len(df):
        (out / "plots").mkdir(exist_ok=True)
        figs = {
            "tau_curves.png": rp.tau_curves(GLOBAL_TAUS, curves),
            "shifted_priors.png": rp.shifted_prior_curves(df[df["test_prior"] != UNIFORM], SHIFTS),
        }
        for g, by_label in pooled.items():
            bins = {
                label: reliability_bins(
                    torch.cat([c for c, _ in parts]), torch.cat([k for _, k in parts]), RELIABILITY_BINS
                )
                for label, parts in by_label.items()
            }
            figs[reliability_file(g)] = rp.reliability_diagram(bins, f"Reliability on test: {g}")
        for name, fig in figs.items():
            fig.savefig(out / "plots" / name, dpi=110)
            plt.close(fig)
    return df, seconds


def main(argv: Sequence[str] | None = None) -> int:
    from platform.report import resolve, tuned_metrics

    parser = argparse.ArgumentParser(prog="python -m platform.posthoc", description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment_dir", help="folder written by platform.tune, or a name under experiments/")
    parser.add_argument("--out", default=None, help=f"output folder (default <experiment_dir>/{POSTHOC_DIR})")
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default sqlite:///<dir>/mlflow.db)")
    parser.add_argument("--experiment", default=None, help="MLflow experiment name (default: the config's name)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # small tensors: threads only add synchronisation
    try:
        src = resolve(args.experiment_dir, args.tracking_uri, args.experiment)
        metric = tuned_metrics(src.config.get("tune") or {}, "val/balanced_acc")[0]  # the first of several
        out = Path(args.out) if args.out else (src.directory or Path("experiments") / src.name) / POSTHOC_DIR
        df, seconds = run(src, out, metric)
    except (FileNotFoundError, StoredLogitsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not len(df):
        print(f"error: no trial of {src.name} stored logits (see {out / 'posthoc.md'})", file=sys.stderr)
        return 1
    per = f"; {np.median(seconds):.2f} s per trial (median)" if seconds else ""
    print(
        f"analysed {df['trial'].nunique()} trial(s){per}; wrote {out / 'posthoc.md'}, {out / 'posthoc.csv'} and "
        f"{out / 'plots'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
