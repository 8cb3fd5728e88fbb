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
import sys
from pathlib import Path
from typing import Sequence

import yaml

from platform.layout import ExperimentDir
from platform.report.build import build_report
from platform.report.document import write_report
from platform.report.source import EXPERIMENTS, default_metric, load, resolve, tune_spec, tuned_metrics

REPORT_DIR = "report"  # the default output folder inside the experiment folder


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m platform.report``: 0 when the report was written, 2 (one ``error:`` line on stderr) when the
    experiment, its store or its trials cannot be found."""
    parser = argparse.ArgumentParser(prog="python -m platform.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment_dir", help="folder written by platform.tune, or a name under experiments/")
    parser.add_argument("--out", default=None, help="report folder (default <experiment_dir>/report)")
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default sqlite:///<dir>/mlflow.db)")
    parser.add_argument("--experiment", default=None, help="MLflow experiment name (default: the config's name)")
    parser.add_argument("--split", default="test", choices=("test", "val"), help="metric split to report")
    args = parser.parse_args(argv)
    try:
        src = resolve(args.experiment_dir, args.tracking_uri, args.experiment)
        objectives = tuned_metrics(src.config.get("tune") or {}, default_metric(args.split))
        runs = load(src, objectives[0])
        saved = runs.config if runs.config and not src.config else src.config  # the store's copy without a folder
        objectives = tuned_metrics(saved.get("tune") or {}, objectives[0])
        metric = objectives[0]
        out = Path(args.out) if args.out else (src.directory or EXPERIMENTS / src.name) / REPORT_DIR
        sources_file = ExperimentDir(src.directory).sources if src.directory is not None else None
        sources = yaml.safe_load(sources_file.read_text()) if sources_file and sources_file.is_file() else None
        blocks = build_report(
            runs,
            out,
            name=src.name,
            metric=metric,
            mode=tune_spec(saved.get("tune")).modes[0],
            prefix=f"{args.split}/",
            variant_sources=sources,
            experiment_dir=src.directory,
            objectives=objectives if len(objectives) > 1 else (),
        )
        md, page = write_report(blocks, out, f"Report: {src.name}")
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {md} and {page}", flush=True)
    return 0
