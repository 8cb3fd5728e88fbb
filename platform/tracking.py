"""MLflow tracking of a sweep, driver side (``platform.report`` reads what this writes).

A Ray Tune callback on the driver: one parent run per sweep and one child run per trial, named
``<name>-trial=<trial id>``. Children carry the resolved config as params, per-epoch metrics (step = epoch), the
margin statistics as metrics and as a per-class JSON artifact, plots, and tags (variant, trial id, seed, git commit,
outcome: ``platform.trial_end``). Runs are found again by the sweep's own id (``elm.sweep_id``, made when the sweep
starts and kept in its folder) and the trial id, never by a name: a resumed sweep or a retried trial continues its
run, and two sweeps of the same name in one store stay apart. When the sweep ends no run is left RUNNING, and the
parent carries the best trial and its value, or, for a sweep with several metrics, the Pareto front its Optuna study
holds.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from ray import tune

from elm.config import PLATFORM_BLOCKS, ConfigError
from platform.mlflow_schema import (
    PARETO_ARTIFACT,
    PER_CLASS_ARTIFACT,
    SEARCH_VARIANT,
    TAG_BEST_TRIAL,
    TAG_ERROR,
    TAG_LOSS,
    TAG_OUTCOME,
    TAG_PARETO_FRONT,
    TAG_ROLE,
    TAG_SEED,
    TAG_SWEEP,
    TAG_SWEEP_ID,
    TAG_TRIAL,
    TAG_VARIANT,
    best_metric_key,
    quote,
)
from platform.pareto import FrontTrial
from platform.report.class_plots import PLOTS
from platform.trainables.common import (
    HISTORY_KEY,
    PER_CLASS_KEY,
    VARIANT_KEY,
    resolve_trial,
    resolve_trial_overrides,
    trial_run_name,
)
from platform.run_record import flatten, git_info, numeric_metrics, versions, yaml_dump
from platform.trial_end import final_checkpoint, log_stored_logits, trial_error_message, trial_outcome

PARENT_TAG = "mlflow.parentRunId"
MAX_PARAM_LEN = 6000


class MlflowTracker(tune.Callback):
    """Driver-side Tune callback writing the sweep to MLflow. Picklable (the client is rebuilt on demand)."""

    def __init__(
        self,
        *,
        tracking_uri: str,
        experiment: str,
        sweep: str,
        base: Mapping[str, Any],
        variants: Mapping[str, Mapping[str, Any]],
        artifact_location: str | None = None,
        variant_sources: Mapping[str, Any] | None = None,
        sweep_id: str | None = None,
        epochs: int | None = None,
    ) -> None:
        self.sweep_id = sweep_id or sweep  # tests without a sweep folder may use the name
        self.epochs = epochs  # the schedule's length: a trial that completes below it was stopped early
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.sweep = sweep
        self.base = dict(base)
        self.variants = {k: dict(v) for k, v in variants.items()}
        self.artifact_location = artifact_location
        self.variant_sources = dict(variant_sources or {})
        self.parent_id: str | None = None
        self.trial_runs: dict[str, str] = {}
        self.last_step: dict[str, int] = {}  # run id -> last epoch logged (a restarted trial replays epochs)
        self._client: MlflowClient | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_client"] = None
        state["trial_runs"], state["last_step"] = {}, {}  # looked up again in MLflow after a restore
        return state

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def experiment_id(self) -> str:
        exp = self.client.get_experiment_by_name(self.experiment)
        if exp is not None:
            return exp.experiment_id
        return self.client.create_experiment(self.experiment, artifact_location=self.artifact_location)

    def _find_run(self, exp_id: str, tags: Mapping[str, str]) -> str | None:
        flt = " and ".join(f"tags.`{k}` = {quote(v)}" for k, v in tags.items())
        runs = self.client.search_runs([exp_id], filter_string=flt, max_results=1)
        return runs[0].info.run_id if runs else None

    def setup(self, **info: Any) -> None:
        exp_id = self.experiment_id()
        self.parent_id = self._find_run(exp_id, {TAG_SWEEP_ID: self.sweep_id, TAG_ROLE: "parent"})
        if self.parent_id is None:
            tags = {TAG_SWEEP: self.sweep, TAG_SWEEP_ID: self.sweep_id, TAG_ROLE: "parent"}
            run = self.client.create_run(exp_id, run_name=self.sweep, tags={**tags, **git_info()})
            self.parent_id = run.info.run_id
            self.client.log_text(self.parent_id, yaml_dump(self.base), "config.yaml")
            if self.variant_sources:  # which sweep trial each from_sweep variant's values came from
                self.client.log_text(self.parent_id, yaml_dump(self.variant_sources), "variant_sources.yaml")
        else:
            self.client.update_run(self.parent_id, status="RUNNING")

    def trial_run(self, trial: Any) -> str:
        """The child run of ``trial``, created once and found again after a restart."""
        if trial.trial_id in self.trial_runs:
            return self.trial_runs[trial.trial_id]
        if self.parent_id is None:
            self.setup()
        exp_id = self.experiment_id()
        run_id = self._find_run(exp_id, {TAG_SWEEP_ID: self.sweep_id, TAG_TRIAL: trial.trial_id})
        if run_id is None:
            variant = str(trial.config.get(VARIANT_KEY, SEARCH_VARIANT))
            try:
                cfg = resolve_trial(trial.config, self.base, self.variants)
                raw, invalid = cfg.to_dict(), ""
            except ConfigError as e:  # the trial fails with this reason; its run still records what it was given
                raw = {**self.base, **resolve_trial_overrides(trial.config, self.variants)}
                invalid = str(e)
            tags = {TAG_SWEEP: self.sweep, TAG_SWEEP_ID: self.sweep_id, TAG_TRIAL: trial.trial_id}
            run = self.client.create_run(
                exp_id,
                run_name=trial_run_name(self.base, trial.trial_id),
                tags={
                    **tags,
                    PARENT_TAG: self.parent_id or "",
                    TAG_ROLE: "trial",
                    TAG_VARIANT: variant,
                    TAG_SEED: str(raw.get("seed")),
                    TAG_LOSS: str((raw.get("loss") or {}).get("name", "")),
                    **git_info(),
                    **versions(),
                },
            )
            run_id = run.info.run_id
            params = [
                Param(k, str(v)[:MAX_PARAM_LEN])
                for k, v in flatten(raw).items()
                if k.split(".")[0] not in PLATFORM_BLOCKS
            ]
            for i in range(0, len(params), 100):
                self.client.log_batch(run_id, params=params[i : i + 100])
            if invalid:
                self.client.set_tag(run_id, TAG_ERROR, invalid[:5000])
            else:
                self.client.log_text(run_id, cfg.to_yaml(), "config.yaml")
        else:  # a restarted driver or trial: the epochs already in MLflow are not logged again
            self.last_step[run_id] = self._last_logged_step(run_id)
        self.trial_runs[trial.trial_id] = run_id
        return run_id

    def _last_logged_step(self, run_id: str) -> int:
        """The last epoch a run has metrics for (every report logs train/loss; any metric will do otherwise)."""
        keys = list(self.client.get_run(run_id).data.metrics)
        if not keys:
            return 0
        probe = "train/loss" if "train/loss" in keys else keys[0]
        return max((m.step for m in self.client.get_metric_history(run_id, probe)), default=0)

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        run_id = self.trial_run(trial)
        self.client.update_run(run_id, status="RUNNING")

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        run_id = self.trial_run(trial)
        now = int(time.time() * 1000)
        # A resumed trial first replays the epochs before its checkpoint: this driver may have missed them.
        epochs = json.loads(result[HISTORY_KEY]) if result.get(HISTORY_KEY) else []
        metrics = [Metric(k, v, now, int(e["epoch"])) for e in epochs for k, v in numeric_metrics(e).items()]
        step = int(result.get("epoch", result.get("training_iteration", 0)))
        metrics += [Metric(k, v, now, step) for k, v in numeric_metrics(result).items()]
        done = self.last_step.get(run_id, 0)
        metrics = [m for m in metrics if m.step > done]  # replayed epochs are the same epochs: never twice
        self.last_step[run_id] = max(done, step)
        for i in range(0, len(metrics), 500):
            self.client.log_batch(run_id, metrics=metrics[i : i + 500])
        if result.get(PER_CLASS_KEY):
            rows = json.loads(result[PER_CLASS_KEY])
            self.client.log_dict(run_id, rows, PER_CLASS_ARTIFACT)
            for name, plot in PLOTS.items():
                fig = plot(rows)
                self.client.log_figure(run_id, fig, f"plots/{name}")
                plt.close(fig)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        run_id = self.trial_run(trial)
        log_stored_logits(self.client, run_id, final_checkpoint(trial))
        self.client.set_tag(run_id, TAG_OUTCOME, trial_outcome(trial, self.epochs))
        self.client.set_terminated(run_id, status="FINISHED")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        run_id = self.trial_run(trial)
        self.client.set_tag(run_id, TAG_ERROR, trial_error_message(trial)[:5000])
        self.client.set_tag(run_id, TAG_OUTCOME, "failed")
        self.client.set_terminated(run_id, status="FAILED")

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        """No run stays RUNNING: trials Tune did not end (the sweep stopped early) are closed as KILLED."""
        for trial in trials:
            run_id = self.trial_runs.get(trial.trial_id)
            if run_id is not None and self.client.get_run(run_id).info.status == "RUNNING":
                self.client.set_terminated(run_id, status="KILLED")
        if self.parent_id is not None:
            failed = sum(t.status == "ERROR" for t in trials)
            self.client.set_tag(self.parent_id, "elm.trials_failed", str(failed))
            # the sweep failed only if no trial succeeded; platform.tune refines this with the trials' epochs
            self.client.set_terminated(self.parent_id, status="FAILED" if failed == len(trials) else "FINISHED")

    def record_best(self, metric: str, trial_id: str | None, value: float | None) -> None:
        """Put the sweep's best trial and value on the parent run (``platform.best`` decides which is best)."""
        if self.parent_id is None:
            self.setup()
        assert self.parent_id is not None
        self.client.set_tag(self.parent_id, TAG_BEST_TRIAL, trial_id or "none")
        if trial_id is not None and value is not None and math.isfinite(value):
            self.client.log_metric(self.parent_id, best_metric_key(metric), float(value))

    def record_front(self, metrics: Sequence[str], modes: Sequence[str], front: Sequence[FrontTrial]) -> None:
        """Put a multi-objective sweep's Pareto front (``platform.pareto``, read from its study) on the parent run:
        the tag ``elm.pareto_front`` (trial ids) and the artifact ``pareto_front.json``."""
        if self.parent_id is None:
            self.setup()
        assert self.parent_id is not None
        ids = ",".join(f.trial_id for f in front) or "none"
        self.client.set_tag(self.parent_id, TAG_PARETO_FRONT, ids[:5000])
        self.client.log_dict(
            self.parent_id,
            {"metrics": list(metrics), "modes": list(modes), "trials": [f.as_record() for f in front]},
            PARETO_ARTIFACT,
        )

    def close_parent(self, status: str) -> None:
        """End the parent run (e.g. FAILED when the sweep itself crashed)."""
        if self.parent_id is not None:
            self.client.set_terminated(self.parent_id, status=status)
