"""Issue 10's sweep reproductions, end to end with real Ray, Optuna and MLflow (slow).

Each runs ``python -m platform.tune`` as a user would (tests/platform/procs.py's ``run_cli``) and asserts on what a
user reads: the exit code, summary.md, trials.csv, the MLflow runs and the Optuna study.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.platform.procs import SMOKE, run_cli, sets
from tests.platform.test_e2e import children, runs_of

pytestmark = pytest.mark.slow


def test_an_optuna_asha_sweep_that_evaluates_every_other_epoch_finishes(tmp_path: Path) -> None:
    # The reproduction: today's main died with KeyError: 'test/balanced_acc' at epoch 1.
    out = tmp_path / "exp"
    proc = run_cli(
        "platform.tune",
        "ablations/smoke.yaml",
        "--out",
        str(out),
        *sets("train.eval_every=2", "optim.epochs=4", "tune.num_samples=4", "tune.study_storage=true"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = pd.read_csv(out / "trials.csv", dtype={"trial_id": str})
    assert len(trials) == 4 and set(trials["status"]) <= {"finished", "stopped early"}
    assert (trials.loc[trials["status"] == "finished", "epochs"] == 4).all()
    summary = (out / "summary.md").read_text()
    assert "## Best trial" in summary and "Trial `" in summary and proc.stdout.rstrip().endswith(str(out))
    client, runs = runs_of(out, "smoke")
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 5
    parent = next(r for r in runs if r.data.tags["elm.role"] == "parent")
    best = trials.loc[trials["status"] == "finished"].sort_values("test/balanced_acc").iloc[-1]
    assert parent.data.metrics["best/test/balanced_acc"] == pytest.approx(best["test/balanced_acc"])
    for run in children(runs):  # evaluated epochs only: 2 and 4 (or 2 for a trial stopped there)
        steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "test/balanced_acc"))
        assert steps in ([2, 4], [2])
    study = optuna.load_study(study_name="smoke", storage=f"sqlite:///{out / 'optuna.db'}")
    states = {t.user_attrs["tune_trial_id"]: (t.state, t.user_attrs["epochs"]) for t in study.trials}
    expected = {
        row.trial_id: (
            optuna.trial.TrialState.COMPLETE if row.status == "finished" else optuna.trial.TrialState.PRUNED,
            row.epochs,
        )
        for row in trials.itertuples()
    }
    assert states == expected


def test_a_diverging_trial_is_not_retried_and_a_sweep_where_every_trial_fails_exits_1(tmp_path: Path) -> None:
    out = tmp_path / "exp"
    proc = run_cli(
        "platform.tune",
        "ablations/smoke.yaml",
        "--out",
        str(out),
        *sets(
            "tune.searcher=grid",
            "tune.scheduler=fifo",
            "search={optim.lr: {grid: [1.0e+30, 2.0e+30]}}",
            "tune.max_failures=2",
        ),
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials["status"]) == ["failed", "failed"]
    assert trials["reason"].str.startswith("NonFiniteLossError: smoke: training loss is").all()
    errors = list((out / "ray").glob("smoke/*/error.txt"))
    assert len(errors) == 2
    for e in errors:  # one failure each: tune.max_failures=2 retries crashes, never a deterministic failure
        text = e.read_text()
        assert "Failure # 1" in text and "Failure # 2" not in text
    assert "None: no trial reached the last epoch" in (out / "summary.md").read_text()
    _, runs = runs_of(out, "smoke")
    assert sorted(r.info.status for r in children(runs)) == ["FAILED", "FAILED"]


def test_two_sweeps_of_one_name_in_a_shared_store_stay_two_sweeps(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    for k in (1, 2):
        proc = run_cli(
            "platform.tune",
            *SMOKE,
            "--out",
            str(tmp_path / f"exp{k}"),
            "--set",
            f"tracking.uri={store}",
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    c = MlflowClient(store)
    runs = c.search_runs([c.get_experiment_by_name("smoke").experiment_id])
    parents = [r for r in runs if r.data.tags["elm.role"] == "parent"]
    assert len(parents) == 2
    for p in parents:
        kids = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == p.info.run_id]
        assert len(kids) == 2 and {r.data.tags["elm.sweep_id"] for r in kids} == {p.data.tags["elm.sweep_id"]}
    # the report of one folder reads its own sweep's runs from the shared store, not both sweeps'
    report = run_cli("platform.report", str(tmp_path / "exp1"), timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    text = (tmp_path / "exp1" / "report" / "report.md").read_text()
    assert "search sweep; 2 finished trials" in text and store in text


def test_trials_that_no_node_of_a_joined_cluster_can_hold_end_the_sweep_after_the_pending_limit(
    tmp_path: Path,
) -> None:
    import time

    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": True})
    try:
        out = tmp_path / "exp"
        t0 = time.perf_counter()
        proc = run_cli(
            "platform.tune",
            *SMOKE,
            "--out",
            str(out),
            "--address",
            cluster.address,
            *sets("resources.cpus_per_worker=2", "tune.max_pending_s=15"),
            timeout=300,
        )
        elapsed = time.perf_counter() - t0
    finally:
        cluster.shutdown()
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "warning: resources: a trial needs 2 CPUs" in proc.stderr  # said when joining
    assert "the sweep stopped early: no trial could start for 15 s" in proc.stderr
    assert elapsed < 120
    summary = (out / "summary.md").read_text()
    assert "The sweep stopped early" in summary and "interrupted" in summary
