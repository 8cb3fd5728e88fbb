"""Builders shared by the tests of platform.report (tests/platform/test_report_*.py): per-variant stats, a tiny
MLflow store of a finished ablation, and a sweep folder as Ray leaves it without MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from platform.mlflow_schema import PER_CLASS_ARTIFACT, TAG_ROLE, TAG_TRIAL
from platform.report import tables as rt


def stats_of(**by_variant: dict[str, tuple[float, float]]) -> dict[str, dict[str, rt.Stat]]:
    """Stats of 3 seeds: ``stats_of(ce={"balanced_acc": (mean, std)})`` -> {"ce": {"test/balanced_acc": Stat}}."""
    return {v: {f"test/{k}": rt.Stat(m, s, 3) for k, (m, s) in metrics.items()} for v, metrics in by_variant.items()}


ROLES = {"ce": "ce", "logit_only": "la", "embedding_only": "embedding_only", "elm": "elm"}


SEEDS = (0, 1)
# variant -> (loss, final balanced acc per seed); the first epoch of every run is higher, so a report of the
# best epoch would show 0.99
FINAL = {"ce": ("cross_entropy", (0.40, 0.44)), "elm": ("elm", (0.50, 0.56))}
BEST_EPOCH_VALUE = 0.99


def per_class_rows(offset: float) -> list[dict[str, object]]:
    """A run's per-class artifact: 6 classes, 2 in each group, accuracy and spread shifted by ``offset``."""
    counts = (200, 120, 50, 30, 15, 10)
    groups = ("many", "many", "medium", "medium", "few", "few")
    return [
        {
            "class": c,
            "train_count": n,
            "group": g,
            "n_eval": 10,
            "accuracy": 0.9 - 0.1 * c + offset,
            "logit_margin_mean": 1.0 - 0.2 * c,
            "logit_margin_std": 0.5,
            "logit_margin_frac_negative": 0.1,
            "spread": 0.1 + 0.02 * c + offset,
            "separation": 0.3,
            "embedding_margin_mean": 0.2,
        }
        for c, (n, g) in enumerate(zip(counts, groups))
    ]


def write_ablation_store(root: Path) -> Path:
    """An experiment folder like platform.tune writes, in ``root``: mlflow.db + mlartifacts/ + config.yaml; 4 finished
    runs (FINAL: 2 variants x SEEDS) and one failed run."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    config = {
        "name": "tiny_ablation",
        "seed": 0,
        "data": {"name": "cifar100_lt"},
        "tune": {"metric": "test/balanced_acc", "mode": "max"},
    }
    (root / "config.yaml").write_text(json.dumps(config))  # JSON is YAML
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    exp = client.create_experiment("tiny_ablation", artifact_location=(root / "mlartifacts").as_uri())
    parent = client.create_run(exp, run_name="tiny_ablation", tags={TAG_ROLE: "parent"})
    client.log_text(parent.info.run_id, json.dumps(config), "config.yaml")
    trial = 0
    for variant, (loss, finals) in FINAL.items():
        for seed, final in zip(SEEDS, finals):
            run = client.create_run(
                exp,
                run_name=f"tiny_ablation-trial={trial}",
                tags={
                    TAG_ROLE: "trial",
                    TAG_TRIAL: str(trial),
                    "variant": variant,
                    "seed": str(seed),
                    "loss": loss,
                    "mlflow.parentRunId": parent.info.run_id,
                },
            )
            rid = run.info.run_id
            metrics = [
                Metric(k, v, 0, step)
                for step, value in ((1, BEST_EPOCH_VALUE), (2, final))
                for k, v in {
                    "test/balanced_acc": value,
                    "test/posthoc_tau1/balanced_acc": value + 0.01,
                    "test/acc_many": 0.8,
                    "test/acc_few": final - 0.2,
                    "test/embedding/spread_few": 0.3 - final / 2,
                    "test/logit_margin/class_mean_std": 1.0,
                    "test/logit_margin/q10_few": -1.0,
                    "test/logit_margin/q50_few": 0.5,
                    "test/logit_margin/q90_few": 2.0,
                    "test/logit_margin/mean_few": 0.6,
                }.items()
            ]
            client.log_batch(rid, metrics=metrics, params=[Param("data.name", "cifar100_lt")])
            client.log_dict(rid, per_class_rows(0.01 * seed), PER_CLASS_ARTIFACT)
            client.set_terminated(rid, "FINISHED")
            trial += 1
    failed = client.create_run(
        exp,
        run_name="tiny_ablation-trial=9",
        tags={TAG_ROLE: "trial", "variant": "elm", "seed": "2", "loss": "elm", "error": "NonFiniteLossError: nan"},
    )
    client.log_metric(failed.info.run_id, "test/balanced_acc", 0.0, step=1)
    client.set_terminated(failed.info.run_id, "FAILED")
    return root


def sweep_folder(root: Path, trials: dict[str, list[object]]) -> Path:
    """A finished CIFAR-10-LT ELM sweep as Ray leaves it without MLflow: config.yaml and trials.csv only."""
    exp = root / "sweep"
    exp.mkdir(parents=True)
    (exp / "config.yaml").write_text("name: sweep\nseed: 0\ndata: {name: cifar10_lt}\nloss: {name: elm}\n")
    pd.DataFrame(trials).to_csv(exp / "trials.csv", index=False)
    return exp


SMOKE_SWEEP_CONFIG = "name: sweep\nseed: 0\ndata: {name: cifar10_lt}\nloss: {name: elm}\noptim: {epochs: %d}\n"


# A finished search sweep's trials.csv: c was stopped at epoch 40 of 200; b has the best balanced accuracy.
SEARCH_TRIALS: dict[str, list[object]] = {
    "trial_id": ["a", "b", "c"],
    "epoch": [200, 200, 40],
    "test/balanced_acc": [0.70, 0.75, 0.60],
    "test/acc_many": [0.9, 0.8, 0.7],
    "test/acc_few": [0.4, 0.6, 0.5],
    "config/loss.tau": [0.5, 1.5, 1.0],
}
