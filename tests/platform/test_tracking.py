"""MLflow tracking without Ray: parent + child runs, params, per-epoch metrics, artifacts, no duplicates on resume."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from elm.config import from_dict
from platform.run_record import flatten, numeric_metrics
from platform.tracking import MlflowTracker
from tests.conftest import tiny_raw


@dataclass
class FakeTrial:
    """The attributes of a Ray Tune trial that ``MlflowTracker`` reads."""

    trial_id: str
    config: dict
    status: str = "RUNNING"
    error_file: str | None = None
    extra: dict = field(default_factory=dict)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def tracker(uri: str, sweep: str) -> MlflowTracker:
    base = from_dict(tiny_raw(name=sweep)).to_dict()
    return MlflowTracker(
        tracking_uri=uri,
        experiment="exp",
        sweep=sweep,
        base=base,
        variants={"la": {"loss": {"name": "logit_adjusted", "tau": 1.0}}},
    )


def per_class_rows() -> list[dict]:
    return [
        {
            "class": c,
            "train_count": n,
            "group": g,
            "accuracy": a,
            "logit_margin_mean": 0.5,
            "logit_margin_std": 0.1,
            "spread": 0.2,
        }
        for c, (n, g, a) in enumerate([(500, "many", 0.9), (50, "medium", 0.6), (5, "few", 0.2)])
    ]


def test_sweep_is_a_parent_with_one_child_per_trial(store: str, tmp_path: Path) -> None:
    t = tracker(store, "s1")
    t.setup()
    trial = FakeTrial("abc_00001", {"variant": "la", "loss.tau": 0.7})
    t.on_trial_start(0, [trial], trial)
    for epoch in (1, 2):
        result = {
            "epoch": float(epoch),
            "test/balanced_acc": 0.5 + epoch / 10,
            "train/loss": 1.0 / epoch,
            "training_iteration": epoch,
            "config": {"x": 1},
            "test/logit_margin/mean": 0.3,
        }
        if epoch == 2:
            result["per_class_json"] = json.dumps(per_class_rows())
        t.on_trial_result(0, [trial], trial, result)
    t.on_trial_complete(0, [trial], trial)
    bad = FakeTrial("abc_00002", {"variant": "la"}, error_file=str(tmp_path / "error.txt"))
    (tmp_path / "error.txt").write_text("Traceback ...\nNonFiniteLossError: training loss is nan at epoch 1\n")
    t.on_trial_start(0, [trial, bad], bad)
    t.on_trial_error(0, [trial, bad], bad)
    bad.status = "ERROR"
    t.on_experiment_end([trial, bad])

    c = MlflowClient(store)
    exp = c.get_experiment_by_name("exp")
    runs = c.search_runs([exp.experiment_id], filter_string="tags.`elm.sweep` = 's1'")
    parent = [r for r in runs if r.data.tags["elm.role"] == "parent"]
    children = {r.data.tags["elm.trial_id"]: r for r in runs if r.data.tags["elm.role"] == "trial"}
    assert len(parent) == 1 and set(children) == {"abc_00001", "abc_00002"}
    ok = children["abc_00001"]
    assert ok.data.tags["mlflow.parentRunId"] == parent[0].info.run_id
    assert ok.info.run_name == "s1-trial=abc_00001" and ok.info.status == "FINISHED"
    assert ok.data.params["loss.name"] == "logit_adjusted" and ok.data.params["loss.tau"] == "0.7"
    assert ok.data.tags["variant"] == "la" and "git.commit" in ok.data.tags
    history = c.get_metric_history(ok.info.run_id, "test/balanced_acc")
    assert sorted((m.step, round(m.value, 6)) for m in history) == [(1, 0.6), (2, 0.7)]
    assert "training_iteration" not in ok.data.metrics  # only split/name metrics
    arts = {a.path for a in c.list_artifacts(ok.info.run_id)} | {
        a.path for d in ("margins", "plots") for a in c.list_artifacts(ok.info.run_id, d)
    }
    assert {"config.yaml", "margins/per_class.json", "plots/accuracy_vs_class_size.png"} <= arts
    failed = children["abc_00002"]
    assert failed.info.status == "FAILED" and "NonFiniteLossError" in failed.data.tags["error"]
    # one trial succeeded, so the sweep did (as its exit code says); the parent counts the failed one
    assert parent[0].info.status == "FINISHED" and parent[0].data.tags["elm.trials_failed"] == "1"


def test_a_resumed_tracker_continues_runs_instead_of_duplicating(store: str) -> None:
    first = tracker(store, "s2")
    first.setup()
    trial = FakeTrial("xyz_00001", {"variant": "la"})
    first.on_trial_start(0, [trial], trial)
    first.on_trial_result(0, [trial], trial, {"epoch": 1.0, "test/acc": 0.1})
    revived: MlflowTracker = pickle.loads(pickle.dumps(first))  # as Tuner.restore does
    revived.trial_runs.clear()
    revived.setup()
    revived.on_trial_start(0, [trial], trial)
    # the restarted worker replays epoch 1 (reported before the driver died, maybe never logged) with epoch 2
    history = json.dumps([{"epoch": 1.0, "test/acc": 0.1}])
    revived.on_trial_result(0, [trial], trial, {"epoch": 2.0, "test/acc": 0.2, "restored_history_json": history})
    c = MlflowClient(store)
    runs = c.search_runs([c.get_experiment_by_name("exp").experiment_id], filter_string="tags.`elm.sweep` = 's2'")
    assert len(runs) == 2  # one parent, one child
    child = [r for r in runs if r.data.tags["elm.role"] == "trial"][0]
    steps = [(m.step, m.value) for m in c.get_metric_history(child.info.run_id, "test/acc")]
    assert sorted(steps) == [(1, 0.1), (2, 0.2)]  # epoch 1 was logged by the first driver: not again

    # A trial Tune restarted from a stale snapshot replays everything up to its newest checkpoint (epoch 2, the
    # last): each epoch stays logged exactly once.
    again: MlflowTracker = pickle.loads(pickle.dumps(revived))
    assert again.trial_runs == {} and again.last_step == {}  # looked up in MLflow, never trusted from the pickle
    again.on_trial_start(0, [trial], trial)
    replay = json.dumps([{"epoch": 1.0, "test/acc": 0.1}])
    again.on_trial_result(0, [trial], trial, {"epoch": 2.0, "test/acc": 0.2, "restored_history_json": replay})
    again.on_trial_result(0, [trial], trial, {"epoch": 3.0, "test/acc": 0.3})
    steps = [(m.step, m.value) for m in c.get_metric_history(child.info.run_id, "test/acc")]
    assert sorted(steps) == [(1, 0.1), (2, 0.2), (3, 0.3)]


def test_helpers() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}
    assert numeric_metrics({"test/x": 1, "test/y": float("nan"), "z": 2.0, "test/s": "str", "t/b": True}) == {
        "test/x": 1.0
    }


def test_two_sweeps_of_the_same_name_in_one_store_stay_apart(store: str) -> None:
    base = from_dict(tiny_raw(name="same")).to_dict()
    for sweep_id in ("id-one", "id-two"):
        t = MlflowTracker(
            tracking_uri=store, experiment="shared", sweep="same", sweep_id=sweep_id, base=base, variants={}
        )
        t.setup()
        for k in range(2):
            trial = FakeTrial(f"tr_{k}", {"loss.tau": 0.1 * k})  # Tune reuses short ids across sweeps
            t.on_trial_start(0, [trial], trial)
            t.on_trial_complete(0, [trial], trial)
    c = MlflowClient(store)
    runs = c.search_runs([c.get_experiment_by_name("shared").experiment_id])
    by_sweep: dict[str, list[str]] = {}
    for r in runs:
        by_sweep.setdefault(r.data.tags["elm.sweep_id"], []).append(r.data.tags["elm.role"])
    assert {k: sorted(v) for k, v in by_sweep.items()} == {
        "id-one": ["parent", "trial", "trial"],
        "id-two": ["parent", "trial", "trial"],
    }


def test_a_trial_with_an_invalid_sampled_config_gets_a_run_with_the_reason_not_a_crash(store: str) -> None:
    t = tracker(store, "s3")
    t.setup()
    trial = FakeTrial("bad_00001", {"optim.batch_size": 48.0})
    t.on_trial_start(0, [trial], trial)
    trial.status = "ERROR"
    t.on_trial_error(0, [trial], trial)
    c = MlflowClient(store)
    run = c.get_run(t.trial_runs["bad_00001"])
    assert run.info.status == "FAILED" and run.data.params["optim.batch_size"] == "48.0"
    assert run.data.tags["elm.outcome"] == "failed"


def test_the_end_of_a_sweep_leaves_no_run_running_and_records_the_best(store: str) -> None:
    t = tracker(store, "s4")
    t.setup()
    done, cut = FakeTrial("a_1", {}, status="TERMINATED"), FakeTrial("a_2", {}, status="PENDING")
    for trial in (done, cut):
        t.on_trial_start(0, [done, cut], trial)
    t.on_trial_complete(0, [done, cut], done)
    t.on_experiment_end([done, cut])
    t.record_best("test/balanced_acc", "a_1", 0.61)
    c = MlflowClient(store)
    assert c.get_run(t.trial_runs["a_2"]).info.status == "KILLED"
    parent = c.get_run(t.parent_id)
    assert parent.data.tags["elm.best_trial"] == "a_1" and parent.data.metrics["best/test/balanced_acc"] == 0.61


def test_filter_strings_quote_any_single_kind_of_quote(store: str) -> None:
    from platform.mlflow_schema import quote

    c = MlflowClient(store)
    exp = c.create_experiment("quotes")
    for value in ("plain", "tail's", 'say "hi"'):
        c.create_run(exp, tags={"t": value})
        assert len(c.search_runs([exp], filter_string=f"tags.`t` = {quote(value)}")) == 1
    with pytest.raises(ValueError, match="both"):
        quote('it\'s "x"')
