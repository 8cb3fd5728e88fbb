"""The gate in front of every searcher: results without the metric never reach it, steps are epochs, early stops
are pruned. Checked on a recording searcher and on Ray's real OptunaSearch (whose on_trial_result indexes the
metric and would raise KeyError on an epoch without evaluation)."""

from __future__ import annotations

from typing import Any

import optuna
import pytest
from optuna.trial import TrialState
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from platform.search_gate import EvaluatedResultsOnly

METRIC = "val/balanced_acc"


class Recorder(Searcher):
    def __init__(self) -> None:
        super().__init__(metric=METRIC, mode="max")
        self.results: list[tuple[str, dict]] = []
        self.completed: list[tuple[str, dict | None, bool]] = []

    def suggest(self, trial_id: str) -> dict:
        return {"x": 1}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.results.append((trial_id, result))

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.completed.append((trial_id, result, error))


def epoch(e: int, value: float | None = None, iteration: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"epoch": float(e), "train/loss": 1.0 / e, "training_iteration": iteration or e}
    if value is not None:
        out[METRIC] = value
    return out


def test_only_evaluated_results_pass_and_their_step_is_the_epoch() -> None:
    inner = Recorder()
    gate = EvaluatedResultsOnly(inner, metric=METRIC, mode="max", epochs=4)
    # eval every 2 epochs; the trial resumed from a checkpoint, so epoch 4 is its 2nd report
    for r in (epoch(1, iteration=1), epoch(2, 0.3, iteration=2), epoch(3, iteration=1), epoch(4, 0.5, iteration=2)):
        gate.on_trial_result("t", r)
    assert [(tid, r["epoch"], r["training_iteration"], r[METRIC]) for tid, r in inner.results] == [
        ("t", 2.0, 2, 0.3),
        ("t", 4.0, 4, 0.5),
    ]
    gate.on_trial_complete("t", {"error/deterministic": "x"} | {"trial_id": "t"})  # a last report without metrics
    ((tid, result, error),) = inner.completed
    assert tid == "t" and not error and result is not None and result[METRIC] == 0.5


def test_a_trial_stopped_before_the_last_epoch_completes_without_a_result_and_a_failed_one_as_error() -> None:
    inner = Recorder()
    gate = EvaluatedResultsOnly(inner, metric=METRIC, mode="max", epochs=10)
    gate.on_trial_result("early", epoch(2, 0.9))
    gate.on_trial_complete("early", epoch(2, 0.9))
    gate.on_trial_result("bad", epoch(2, 0.1))
    gate.on_trial_complete("bad", None, error=True)
    assert inner.completed == [("early", None, False), ("bad", None, True)]


def test_state_round_trips() -> None:
    gate = EvaluatedResultsOnly(Recorder(), metric=METRIC, mode="max", epochs=3)
    gate.on_trial_result("t", epoch(1, 0.2))
    other = EvaluatedResultsOnly(Recorder(), metric=METRIC, mode="max", epochs=99)
    other.set_state(gate.get_state())
    assert other.epochs == 3 and other.last_evaluated["t"][METRIC] == 0.2


@pytest.fixture
def optuna_gate() -> tuple[EvaluatedResultsOnly, optuna.Study]:
    study_storage = optuna.storages.InMemoryStorage()
    inner = OptunaSearch(
        space={"x": optuna.distributions.FloatDistribution(0, 1)},
        metric=METRIC,
        mode="max",
        sampler=optuna.samplers.TPESampler(seed=0),
        storage=study_storage,
        study_name="s",
    )
    gate = EvaluatedResultsOnly(inner, metric=METRIC, mode="max", epochs=4)
    return gate, optuna.load_study(study_name="s", storage=study_storage)


def test_real_optuna_survives_epochs_without_evaluation_and_stores_early_stops_as_pruned(optuna_gate: Any) -> None:
    gate, study = optuna_gate
    for tid in ("full", "early", "failed"):
        gate.suggest(tid)
    with pytest.raises(KeyError):  # what the sweep died of without the gate
        gate.searcher.on_trial_result("full", epoch(1))
    for e in (1, 2, 3, 4):
        gate.on_trial_result("full", epoch(e, 0.1 * e if e % 2 == 0 else None))
    gate.on_trial_complete("full", epoch(4, 0.4))
    gate.on_trial_result("early", epoch(1))
    gate.on_trial_result("early", epoch(2, 0.7))
    gate.on_trial_complete("early", epoch(2, 0.7))
    gate.on_trial_result("failed", epoch(1))
    gate.on_trial_complete("failed", None, error=True)
    by_id = {t.user_attrs["tune_trial_id"]: t for t in study.get_trials()}
    assert by_id["full"].state == TrialState.COMPLETE and by_id["full"].value == pytest.approx(0.4)
    assert by_id["full"].intermediate_values == {2: pytest.approx(0.2), 4: pytest.approx(0.4)}  # steps = epochs
    assert by_id["early"].state == TrialState.PRUNED and by_id["early"].user_attrs["epochs"] == 2
    assert by_id["failed"].state == TrialState.FAIL and by_id["failed"].user_attrs["epochs"] == 0


def test_trials_left_running_by_an_interrupted_driver_are_closed_as_failed_at_sweep_end(tmp_path: Any) -> None:
    from platform.searchers import close_stale_trials

    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="s", storage=url, direction="maximize")
    done = study.ask()
    study.tell(done, 0.5)
    study.ask()  # asked by a driver that was then killed: nobody will tell it
    assert close_stale_trials(url, "s") == 1
    states = [t.state for t in optuna.load_study(study_name="s", storage=url).trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL]
    assert close_stale_trials(url, "s") == 0
