"""Confirm a sweep's winner over seeds in one command: its best configuration re-run at full length over N seeds.

    python -m platform.confirm experiments/cifar10_elm_search --seeds 3 [--out DIR] [--set key=value ...] [--smoke]
                               [--resume]

This is the ``from_sweep`` chain (``platform.sweep_best``) made one command: an ablation of one variant, ``best``,
whose searched values are the sweep's best trial (``platform.best``: among the trials that reached the last
epoch, the best last evaluated value), on the sweep's own resolved config (``config.yaml``: data, model, schedule
and epochs), with seeds ``seed, seed + 1, ...`` from the sweep's seed, a grid searcher and no early stopping. It
runs through ``platform.tune`` (MLflow, summary; an interrupted confirmation continues with
``platform.confirm ... --resume``) into ``experiments/<name>_confirm``
(or ``--out``), then writes ``confirm.md``: each metric's mean ± sample std over the seeds beside the sweep's
single-seed value, and how many stds apart they are, so a winner picked on a lucky seed is visible. The seed the
sweep trained is one of the N, so its own run is repeated too (bitwise only with ``train.deterministic``).
Expected: the mean over seeds at or below the sweep's value (a winner is partly chosen for its luck); a gap beyond
about one std says the sweep's number was a lucky seed (docs/results/confirm_cifar10_joint_wd_smoke: val 33.00
single seed, 31.83 ± 1.04 over 3).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import yaml

from elm.config import ConfigError, parse_set_args
from platform.layout import ExperimentDir
from platform.sweep_best import FROM_SWEEP, BestTrial, best_trial

VARIANT = "best"
CONFIRM_SUFFIX = "_confirm"
CONFIRM_CSV = "confirm.csv"
GROUP_KEYS = ("balanced_acc", "acc", "acc_many", "acc_medium", "acc_few", "ece")  # reported for val/ and test/


def confirm_config(sweep_dir: str | Path, seeds: int) -> dict[str, Any]:
    """The raw experiment config that re-runs the best trial of ``sweep_dir`` over ``seeds`` seeds.

    Raises:
        ConfigError: ``seeds`` < 2, or the folder has no ``config.yaml`` (not a sweep written by platform.tune).
    """
    if seeds < 2:
        raise ConfigError(f"--seeds {seeds}: a spread needs at least 2 seeds")
    layout = ExperimentDir(Path(sweep_dir).resolve())
    if not layout.config.is_file():
        raise ConfigError(f"{layout.root} has no config.yaml: not a sweep folder written by platform.tune")
    raw = yaml.safe_load(layout.config.read_text()) or {}
    raw.pop("search", None)
    raw.pop("ablation", None)
    first = int(raw.get("seed", 0))
    tune = dict(raw.get("tune") or {})
    kept = {
        k: tune[k]
        for k in ("metric", "mode", "max_concurrent", "max_failures", "max_pending_s", "storage")
        if k in tune
    }
    raw["name"] = f"{raw['name']}{CONFIRM_SUFFIX}"
    raw["tune"] = {**kept, "searcher": "grid", "scheduler": "fifo"}
    raw["ablation"] = {
        "seeds": list(range(first, first + seeds)),
        "variants": {VARIANT: {FROM_SWEEP: str(layout.root)}},
    }
    return raw


def _sweep_row(best: BestTrial) -> pd.Series:
    df = pd.read_csv(ExperimentDir(Path(best.sweep)).trials_csv, dtype={"trial_id": str})
    return df[df["trial_id"] == best.trial_id].iloc[0]


def comparison(best: BestTrial, confirm_trials: pd.DataFrame) -> pd.DataFrame:
    """One row per metric both have: the sweep's single-seed value, the confirmation's mean, std, n and per-seed
    values, and (mean - single) / std.

    Args:
        confirm_trials: the confirmation's ``trials.csv`` (finished trials only are used).
    """
    single = _sweep_row(best)
    done = confirm_trials[confirm_trials["status"] == "finished"] if "status" in confirm_trials else confirm_trials
    rows = []
    for split in ("val", "test"):
        for key in GROUP_KEYS:
            metric = f"{split}/{key}"
            if metric not in done or metric not in single.index or pd.isna(single[metric]):
                continue
            v = pd.to_numeric(done[metric], errors="coerce").dropna()
            if not len(v):
                continue
            std = float(v.std(ddof=1)) if len(v) > 1 else math.nan
            rows.append(
                {
                    "metric": metric,
                    "sweep_single_seed": float(single[metric]),
                    "mean": float(v.mean()),
                    "std": std,
                    "n": len(v),
                    "per_seed": ", ".join(f"{x:.4f}" for x in v),
                    "gap_in_stds": (float(v.mean()) - float(single[metric])) / std if std > 0 else math.nan,
                }
            )
    return pd.DataFrame(rows)


def markdown(best: BestTrial, table: pd.DataFrame, command: str, seeds: Sequence[int]) -> str:
    """``confirm.md``."""
    pct = lambda x: "—" if pd.isna(x) else f"{100 * x:.2f}"  # noqa: E731
    lines = [
        f"# Confirmation over seeds: best trial `{best.trial_id}` of `{best.sweep}`",
        "",
        f"Command: `{command}`",
        "",
        f"The sweep chose trial `{best.trial_id}` on `{best.metric}` ({best.mode}) = {best.value:.4f} after "
        f"{best.epochs} epochs, with "
        + ", ".join(
            f"`{k}` = {v:.4g}" if isinstance(v, float) else f"`{k}` = {v}" for k, v in sorted(best.params.items())
        )
        + f". Re-run with seeds {list(seeds)} at the sweep's length; values in %, mean ± sample std over the "
        "finished seeds. `gap` is (mean - sweep value) / std: well below 0 means the sweep's value was a lucky "
        "seed."
        + (
            " The sweep ranked on a test metric, so its value is optimistic by construction."
            if best.metric.startswith("test/")
            else ""
        ),
        "",
        "| metric | sweep (one seed) | mean ± std over seeds | n | gap (stds) | per seed |",
        "|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        spread = f"{pct(r['mean'])} ± {pct(r['std'])}" if not pd.isna(r["std"]) else pct(r["mean"])
        gap = "—" if pd.isna(r["gap_in_stds"]) else f"{r['gap_in_stds']:+.1f}"
        per_seed = ", ".join(pct(float(x)) for x in str(r["per_seed"]).split(", "))
        lines.append(f"| {r['metric']} | {pct(r['sweep_single_seed'])} | {spread} | {r['n']} | {gap} | {per_seed} |")
    return "\n".join(lines) + "\n"


def confirm_blocks(experiment_dir: Path | None) -> list[Any]:
    """The report's section for a confirmation run: ``confirm.csv`` as a table (values in %), or nothing."""
    from platform.report.document import Heading, Para, table

    csv = experiment_dir / CONFIRM_CSV if experiment_dir is not None else None
    if csv is None or not csv.is_file():
        return []
    df = pd.read_csv(csv)
    pct = lambda x: "—" if pd.isna(x) else f"{100 * x:.2f}"  # noqa: E731
    rows = [
        [
            str(r["metric"]),
            pct(r["sweep_single_seed"]),
            f"{pct(r['mean'])} ± {pct(r['std'])}",
            str(r["n"]),
            "—" if pd.isna(r["gap_in_stds"]) else f"{r['gap_in_stds']:+.1f}",
        ]
        for _, r in df.iterrows()
    ]
    return [
        Heading("The sweep's winner over seeds"),
        Para(
            "The sweep's best trial re-run over seeds by `platform.confirm` (`confirm.md`): the sweep's "
            "single-seed value beside the mean ± sample std over seeds, in %; gap = (mean - sweep) / std."
        ),
        table(["metric", "sweep (one seed)", "mean ± std over seeds", "n", "gap (stds)"], rows),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    from platform.plan import make_plan
    from platform.tune import run

    parser = argparse.ArgumentParser(prog="python -m platform.confirm", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir", help="a finished sweep folder written by platform.tune")
    parser.add_argument("--seeds", type=int, default=3, help="seeds to run (default 3)")
    parser.add_argument("--out", default=None, help="output folder (default experiments/<name>_confirm)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--smoke", action="store_true", help="toy sizes, for a quick check of the chain")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted confirmation in its folder (then write confirm.md)",
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        best = best_trial(args.sweep_dir)
        raw = confirm_config(args.sweep_dir, args.seeds)
        with tempfile.TemporaryDirectory(prefix="elm-confirm-") as tmp:
            path = Path(tmp) / f"{raw['name']}.yaml"
            path.write_text(yaml.safe_dump(raw, sort_keys=False))
            plan = make_plan(
                str(path), parse_set_args(args.overrides), smoke_run=args.smoke, out=args.out, resume=args.resume
            )
            run(plan, resume=args.resume, config_path=str(path))
        table = comparison(best, pd.read_csv(plan.layout.trials_csv, dtype={"trial_id": str}))
    except (ConfigError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    command = "python -m platform.confirm " + " ".join(sys.argv[1:] if argv is None else argv)
    table.to_csv(plan.out / CONFIRM_CSV, index=False)
    (plan.out / "confirm.md").write_text(markdown(best, table, command, plan.spec.ablation.seeds))
    print((plan.out / "confirm.md").read_text(), flush=True)
    print(f"done in {time.perf_counter() - t0:.0f} s; outputs in {plan.out}", flush=True)
    return 0 if len(table) else 1


if __name__ == "__main__":
    sys.exit(main())
