"""Several metrics in one search (issue 15, item 1): validation up front, Ray's OptunaSearch built with lists behind
the gate, and the Pareto front read from the study, checked against a dominance loop written here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from elm.config import ConfigError
from platform.mlflow_schema import PARETO_ARTIFACT, TAG_PARETO_FRONT
from platform.pareto import FrontTrial, load_front, study_front
from platform.search_gate import EvaluatedResultsOnly
from platform.searchers import SEARCHERS
from platform.tune import make_plan
from tests.conftest import tiny_raw

HEAD, TAIL = "test/acc_medium", "test/acc_few"  # synthetic_lt at n_max 64 has Medium and Few groups, no Many
TWO = {
    "searcher": "optuna",
    "scheduler": "fifo",
    "metric": [HEAD, TAIL],
    "mode": ["max", "max"],
    "study_storage": True,
    "sampler": "nsga2",
}
SPACE = {"search": {"loss.tau": {"uniform": [0.0, 2.0]}}}


def write(tmp_path: Path, tune: dict[str, Any]) -> str:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(tiny_raw(**SPACE, tune=tune)))
    return str(path)


def plan(tmp_path: Path, tune: dict[str, Any], check_data: bool = True) -> Any:
    return make_plan(write(tmp_path, tune), {}, out=str(tmp_path / "o"), check_data=check_data)


# ------------------------------------------------------------------------------------------------ validation


def test_two_metrics_plan_and_one_item_lists_stay_one_metric(tmp_path: Path) -> None:
    t = plan(tmp_path, TWO).spec.tune
    assert t.multi_objective and t.metrics == (HEAD, TAIL) and t.modes == ("max", "max") and t.sampler == "nsga2"
    one = plan(tmp_path, {**TWO, "metric": [HEAD], "mode": ["max"], "scheduler": "asha"}).spec.tune
    assert one.metric == HEAD and one.mode == "max" and not one.multi_objective


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"mode": ["max"]}, r"^tune.mode: 1 mode\(s\) for 2 metric\(s\) in tune.metric"),
        ({"mode": "max"}, r"^tune.mode: 1 mode\(s\) for 2 metric\(s\)"),
        ({"mode": ["max", "up"]}, r"^tune.mode='up' is not allowed"),
        ({"metric": [HEAD, HEAD]}, r"^tune.metric: .* names a metric twice"),
        ({"metric": []}, r"^tune.metric=\[\]: give one metric name or a list"),
        (
            {"searcher": "random"},
            r"^tune.searcher: random takes one metric; with several metrics use tune.searcher: "
            r"optuna",
        ),
        (
            {"scheduler": "asha"},
            r"^tune.scheduler: ASHA compares one metric; use tune.scheduler: fifo with several "
            r"metrics$",
        ),
        (
            {"study_storage": False},
            r"^tune.study_storage: with several metrics the Pareto front is read from the "
            r"persisted Optuna study",
        ),
        ({"sampler": "cmaes"}, r"^tune.sampler='cmaes' is not allowed; choose one of \['tpe', 'nsga2'\]"),
        (
            {"metric": [HEAD, "val/acc_few"]},
            r"^tune.metric 'val/acc_few' is never reported: trials evaluate on the "
            r"'test' split",
        ),
        ({"metric": [HEAD, "test/acc_many"]}, r"^tune.metric 'test/acc_many' is never reported for 'synthetic_lt'"),
    ],
)
def test_bad_objectives_are_refused_in_one_line_naming_the_key(tmp_path: Path, change: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as e:
        plan(tmp_path, {**TWO, **change})
    assert "\n" not in str(e.value)


def test_the_shipped_pareto_file_is_two_objective_on_validation() -> None:
    from elm.config import load_config
    from platform.spec import parse_platform

    path = Path(__file__).resolve().parents[2] / "ablations" / "cifar10_pareto.yaml"
    cfg = load_config(path)
    t = parse_platform(cfg).tune
    assert t.metrics == ("val/acc_many", "val/acc_medium") and cfg.train.eval_split == "val"
    assert cfg.data.kwargs["val_per_class"] == 200 and t.scheduler == "fifo" and t.study_storage


# ------------------------------------------------------------------------------------------ searcher and gate


def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Reference for maximisation: ``a`` is at least as good everywhere and better somewhere."""
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def built(storage: str | None, sampler: str = "nsga2") -> EvaluatedResultsOnly:
    searcher = SEARCHERS["optuna"].build(0, "s", storage, sampler=sampler, metric=[HEAD, TAIL], mode=["max", "max"])
    gate = EvaluatedResultsOnly(searcher, metric=[HEAD, TAIL], mode=["max", "max"], epochs=2)
    from ray import tune

    assert gate.set_search_properties(None, None, {"loss.tau": tune.uniform(0.0, 2.0)})  # as Tune calls it
    return gate


@pytest.mark.parametrize(
    "sampler, cls", [("nsga2", optuna.samplers.NSGAIISampler), ("tpe", optuna.samplers.TPESampler)]
)
def test_the_optuna_searcher_built_with_lists_makes_a_two_direction_study(sampler: str, cls: type) -> None:
    gate = built(None, sampler)
    study = gate.searcher._ot_study
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MAXIMIZE"] and isinstance(study.sampler, cls)
    assert gate.metric == [HEAD, TAIL] and gate.suggest("t0") is not None


def test_the_gate_forwards_only_results_with_every_metric_and_the_study_holds_the_front(tmp_path: Path) -> None:
    db = tmp_path / "optuna.db"
    gate = built(f"sqlite:///{db}")
    values = {"a": (0.9, 0.1), "b": (0.5, 0.5), "c": (0.4, 0.4), "d": (0.1, 0.8), "e": (0.5, 0.5)}
    for tid, (h, t) in values.items():
        gate.suggest(tid)
        gate.on_trial_result(tid, {"epoch": 1.0, HEAD: h})  # one metric only: not a point, not forwarded
        assert tid not in gate.last_evaluated
        gate.on_trial_result(tid, {"epoch": 2.0, HEAD: h, TAIL: t})
        gate.on_trial_complete(tid, {"epoch": 2.0, "train/loss": 0.1})  # last report without metrics
    gate.suggest("partial")
    gate.on_trial_complete("partial", {"epoch": 2.0, HEAD: 0.99})  # never evaluated both: not told a value
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{db}")
    by_id = {t.user_attrs["tune_trial_id"]: t for t in study.trials}
    assert by_id["partial"].state == TrialState.PRUNED
    assert all(tuple(by_id[k].values) == v and by_id[k].state == TrialState.COMPLETE for k, v in values.items())
    reference = {k for k, v in values.items() if not any(dominates(w, v) for w in values.values())}
    front = load_front(db, "s", [HEAD, TAIL])
    assert {f.trial_id for f in front} == reference == {"a", "b", "d", "e"}
    assert [f.trial_id for f in front] == ["a", "b", "e", "d"]  # by the first metric, ties by Optuna number
    assert {f.trial_id: (f.values[HEAD], f.values[TAIL]) for f in front} == {k: values[k] for k in reference}


def test_a_front_of_the_wrong_number_of_objectives_is_refused() -> None:
    study = optuna.create_study(directions=["maximize", "maximize"])
    with pytest.raises(ValueError, match="has 2 objective"):
        study_front(study, [HEAD])


# ------------------------------------------------------------------------------------- summary and MLflow


FRONT = [
    FrontTrial("t2", 1, {HEAD: 0.8, TAIL: 0.2}, {"loss.tau": 0.1}),
    FrontTrial("t1", 0, {HEAD: 0.3, TAIL: 0.7}, {"loss.tau": 1.9}),
]


def test_the_summary_shows_the_study_front_and_no_single_best(tmp_path: Path) -> None:
    from platform.report.summary import summary_text
    from platform.report.trials import TrialRecord, trial_table

    p = plan(tmp_path, TWO, check_data=False)
    records = [
        TrialRecord({"trial_id": tid, "config": {"loss.tau": tau}}, h, 2, None, True, {HEAD: h, TAIL: t})
        for tid, tau, h, t in (("t1", 1.9, 0.3, 0.7), ("t2", 0.1, 0.8, 0.2), ("t3", 1.0, 0.2, 0.1))
    ]
    df = trial_table(records, p)
    assert list(df[TAIL]) == [0.7, 0.2, 0.1]
    text = summary_text(df, p, config_path="x.yaml", tracking_uri="sqlite:///m.db", front=FRONT)
    assert "## Pareto front" in text and "## Best trial" not in text and "(best)" not in text
    assert "| t2 | 1 | 0.8 | 0.2 | 0.1 |" in text and "| t1 | 0 | 0.3 | 0.7 | 1.9 |" in text
    assert "t1 **(front)**" in text and "t3 **(front)**" not in text


def test_the_parent_run_carries_the_front(tmp_path: Path) -> None:
    from platform.tracking import MlflowTracker

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = MlflowTracker(
        tracking_uri=uri, experiment="e", sweep="s", base={}, variants={}, artifact_location=(tmp_path / "art").as_uri()
    )
    tracker.record_front([HEAD, TAIL], ["max", "max"], FRONT)
    client = MlflowClient(uri)
    parent = client.get_run(tracker.parent_id)
    assert parent.data.tags[TAG_PARETO_FRONT] == "t2,t1"
    local = Path(client.download_artifacts(tracker.parent_id, PARETO_ARTIFACT, str(tmp_path)))
    saved = json.loads(local.read_text())
    assert saved["metrics"] == [HEAD, TAIL] and [t["trial_id"] for t in saved["trials"]] == ["t2", "t1"]
    assert saved["trials"][0]["values"] == {HEAD: 0.8, TAIL: 0.2}


def test_the_report_section_is_the_studys_front(tmp_path: Path) -> None:
    from platform.report.document import Heading, Image, Table
    from platform.report.optuna_section import optuna_blocks

    db = tmp_path / "optuna.db"
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{db}", directions=["maximize", "maximize"])
    for i, v in enumerate([(0.9, 0.1), (0.4, 0.4), (0.5, 0.5)]):
        trial = study.ask()
        trial.suggest_float("loss.tau", 0.0, 2.0)
        trial.set_user_attr("tune_trial_id", f"t{i}")
        study.tell(trial, list(v))
    blocks = optuna_blocks(tmp_path, tmp_path / "report", "s", [HEAD, TAIL])
    assert Heading("Pareto front (Optuna study)") in blocks
    (tab,) = [b for b in blocks if isinstance(b, Table)]
    assert (
        [r[0] for r in tab.rows]
        == ["t0", "t2"]
        == [t.user_attrs["tune_trial_id"] for t in sorted(study.best_trials, key=lambda t: -t.values[0])]
    )
    assert any(isinstance(b, Image) and b.path.endswith("optuna_pareto_front.png") for b in blocks)
    assert (tmp_path / "report" / "plots" / "optuna_pareto_front.png").is_file()


def test_from_sweep_of_a_front_needs_a_metric_to_rank_by(tmp_path: Path) -> None:
    from platform.sweep_best import best_trial

    (tmp_path / "config.yaml").write_text(yaml.safe_dump(tiny_raw(tune=TWO)))
    (tmp_path / "trials.csv").write_text(
        f"trial_id,status,epochs,{HEAD},{TAIL},config/loss.tau\na,finished,2,0.9,0.1,0.5\nb,finished,2,0.2,0.8,1.5\n"
    )
    with pytest.raises(ConfigError, match=r"tuned several metrics .* has a Pareto front"):
        best_trial(tmp_path)
    best = best_trial(tmp_path, metric=TAIL, mode="max")
    assert best.trial_id == "b" and best.params == {"loss.tau": 1.5}
