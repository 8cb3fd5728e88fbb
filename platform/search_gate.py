"""The one gate every searcher's results pass through: ``EvaluatedResultsOnly``.

Trials evaluate every ``train.eval_every`` epochs (``elm.train.fit``), and a failed trial's last report carries its
error instead of metrics, so many results lack the tuned metric; Ray's ``OptunaSearch.on_trial_result`` indexes
the metric and would end the whole sweep with a ``KeyError``. The gate forwards only results that carry the metric
(every one of them, for a multi-objective search: Optuna cannot ``tell`` a trial a partial vector of values),
gives the searcher the trial's *epoch* as its step (``training_iteration`` counts reports, which differ from epochs
after a trial resumes from a checkpoint newer than Tune's snapshot), and completes a trial with its last evaluated
result. A trial that ended before the last epoch without an error (stopped by ASHA) completes with no result, which
Optuna stores as PRUNED rather than as a COMPLETE trial with an early value; Optuna trials also get the ``epochs``
they reached and their Tune trial id as user attributes. Schedulers need no gate: ASHA (``time_attr="epoch"``)
skips results without the metric itself (``AsyncHyperBandScheduler.on_trial_result``).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ray.tune.search import Searcher

EPOCH_KEY = "epoch"  # reported by every epoch of elm.train.fit
STEP_KEY = "training_iteration"  # what Ray's searchers read as a result's step


class EvaluatedResultsOnly(Searcher):
    """Forward to ``searcher`` only the results that carry ``metric``; steps are epochs; early stops are pruned.

    Args:
        searcher: any Ray Tune ``Searcher``.
        metric, mode: the sweep's metric and direction, or lists of them (a multi-objective search).
        epochs: the schedule's length: a trial that completes below it was stopped early.
    """

    def __init__(
        self, searcher: Searcher, *, metric: str | Sequence[str], mode: str | Sequence[str], epochs: int
    ) -> None:
        self.searcher = searcher
        self.epochs = epochs
        self.metrics: tuple[str, ...] = (metric,) if isinstance(metric, str) else tuple(metric)
        self.last_evaluated: dict[str, dict[str, Any]] = {}  # trial id -> its last result with the metric(s)
        several = len(self.metrics) > 1  # Ray's Searcher takes a list of metrics with a list of modes
        super().__init__(
            metric=list(self.metrics) if several else self.metrics[0],
            mode=list(mode) if several else (mode if isinstance(mode, str) else mode[0]),
        )

    def evaluated(self, result: Mapping[str, Any] | None) -> bool:
        """Whether ``result`` carries every tuned metric."""
        return result is not None and all(result.get(m) is not None for m in self.metrics)

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.searcher.set_max_concurrency(max_concurrent)

    def suggest(self, trial_id: str) -> dict | None:
        return self.searcher.suggest(trial_id)

    def _as_epoch_step(self, result: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(result)
        if EPOCH_KEY in out:
            out[STEP_KEY] = int(out[EPOCH_KEY])
        return out

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if not self.evaluated(result):
            return
        self.last_evaluated[trial_id] = self._as_epoch_step(result)
        self.searcher.on_trial_result(trial_id, self.last_evaluated[trial_id])

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if result is not None and self.evaluated(result):
            self.last_evaluated[trial_id] = self._as_epoch_step(result)
        last = self.last_evaluated.pop(trial_id, None)
        epochs = int(last[EPOCH_KEY]) if last is not None and EPOCH_KEY in last else 0
        ot_trial = getattr(self.searcher, "_ot_trials", {}).get(trial_id)  # Optuna: record how far it trained
        if ot_trial is not None:
            ot_trial.set_user_attr("epochs", epochs)
            ot_trial.set_user_attr("tune_trial_id", trial_id)
        stopped_early = not error and epochs < self.epochs
        self.searcher.on_trial_complete(trial_id, result=None if (error or stopped_early) else last, error=error)

    def add_evaluated_point(self, *args: Any, **kwargs: Any) -> None:
        self.searcher.add_evaluated_point(*args, **kwargs)

    def on_pause(self, trial_id: str) -> None:
        self.searcher.on_pause(trial_id)

    def on_unpause(self, trial_id: str) -> None:
        self.searcher.on_unpause(trial_id)

    # Tune saves wrappers (objects with a ``searcher`` attribute) by get_state/set_state, and the innermost searcher
    # by its own save/restore (SearchGenerator.save_to_dir), as for its ConcurrencyLimiter.
    def get_state(self) -> dict[str, Any]:
        return {"last_evaluated": dict(self.last_evaluated), "epochs": self.epochs}

    def set_state(self, state: dict[str, Any]) -> None:
        self.last_evaluated = dict(state["last_evaluated"])
        self.epochs = int(state["epochs"])

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)
