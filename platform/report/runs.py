"""Loading an experiment's finished trials into a ``RunSet``: from its MLflow store, or from Ray's ``trials.csv``.

Every number kept is a trial's value at its final evaluated epoch (MLflow's latest value of a metric, or Ray's last
reported result), never its best epoch.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import unquote, urlparse

import pandas as pd
import yaml

from platform.layout import ExperimentDir
from platform.mlflow_schema import (
    PER_CLASS_ARTIFACT,
    SEARCH_VARIANT,
    TAG_ROLE,
    TAG_SWEEP_ID,
    TAG_TRIAL,
    TAG_VARIANT,
    quote,
)
from platform.report.tables import SEED, VARIANT

CONFIG_PREFIX = "config/"  # params columns, as in Ray's trials.csv
CONFIG_ARTIFACT = "config.yaml"  # the parent run's copy of the experiment's config (platform.tracking logs it)


@dataclass(frozen=True)
class RunSet:
    """The finished trials of one experiment, in memory.

    Attributes:
        trials: one row per trial: run_id, trial_id, variant, seed, loss, status, epoch (final evaluated epoch,
            nan if unknown), ``config/<dotted key>`` params and ``<split>/<metric>`` final values.
        per_class: run_id -> the per-class table (``margins/per_class.json``) of its final evaluation.
        config: the experiment's base config as a raw mapping ({} if unknown).
        source: where the numbers came from, for the report.
        excluded: one line per run left out (failed or unfinished), for the report.
    """

    trials: pd.DataFrame
    per_class: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    excluded: tuple[str, ...] = ()

    @property
    def is_ablation(self) -> bool:
        return bool(len(self.trials)) and bool((self.trials[VARIANT] != SEARCH_VARIANT).any())

    @property
    def dataset(self) -> str:
        data = self.config.get("data", {})
        if isinstance(data, Mapping) and data.get("name"):
            import elm.data  # noqa: F401  (registers the datasets)
            from elm.registry import DATASETS

            name = str(data["name"])  # a base entry with an alias's values reads as the alias (cifar_lt -> cifar10_lt)
            return DATASETS.canonical(name, data)
        col = CONFIG_PREFIX + "data.name"
        return str(self.trials[col].dropna().iloc[0]) if col in self.trials and self.trials[col].notna().any() else ""


def load_mlflow(
    tracking_uri: str, experiment: str, metric: str, experiment_dir: Path | None = None, sweep_id: str | None = None
) -> RunSet:
    """Trial runs, their final metrics, params, per-class artifacts and the parent's config from an MLflow store.

    Args:
        metric: the sweep's metric; its history gives each trial's final epoch (the step of its last value).
        experiment_dir: where to look for ``mlartifacts/`` when the recorded artifact location has moved.
        sweep_id: only the runs of this sweep (``elm.sweep_id``; several sweeps may share a store and a name).

    Raises:
        FileNotFoundError: no experiment of that name in the store.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        known = [e.name for e in client.search_experiments()]
        raise FileNotFoundError(f"no MLflow experiment '{experiment}' in {tracking_uri}; known: {known}")
    runs = []
    token = None
    of_sweep = f" and tags.`{TAG_SWEEP_ID}` = {quote(sweep_id)}" if sweep_id else ""
    trial_filter = f"tags.`{TAG_ROLE}` = 'trial'" + of_sweep
    while True:
        page = client.search_runs([exp.experiment_id], filter_string=trial_filter, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            break
    rows, per_class, excluded = [], {}, []
    with tempfile.TemporaryDirectory(prefix="elm-report-") as tmp:
        for run in sorted(runs, key=lambda r: r.info.run_name or ""):
            tags = run.data.tags
            label = f"{run.info.run_name} (variant {tags.get('variant', '?')}, seed {tags.get('seed', '?')})"
            if run.info.status != "FINISHED":
                reason = tags.get("error", "")
                excluded.append(f"{label}: status {run.info.status}" + (f": {reason}" if reason else ""))
                continue
            history = client.get_metric_history(run.info.run_id, metric) if metric in run.data.metrics else []
            row: dict[str, Any] = {
                "run_id": run.info.run_id,
                "trial_id": tags.get(TAG_TRIAL, run.info.run_name),
                VARIANT: tags.get(TAG_VARIANT, SEARCH_VARIANT),
                SEED: _int_or_nan(tags.get("seed", run.data.params.get("seed"))),
                "loss": tags.get("loss", run.data.params.get("loss.name", "")),
                "status": run.info.status,
                "epoch": max((m.step for m in history), default=math.nan),
            }
            row.update({CONFIG_PREFIX + k: _parse_param(v) for k, v in run.data.params.items()})
            row.update(run.data.metrics)  # MLflow's latest value = the largest step = the final evaluated epoch
            rows.append(row)
            text = _read_artifact(client, run, PER_CLASS_ARTIFACT, Path(tmp), experiment_dir, MlflowException)
            if text is not None:
                per_class[run.info.run_id] = json.loads(text)
        config = _parent_config(client, exp.experiment_id, Path(tmp), experiment_dir, MlflowException)
    trials = pd.DataFrame(rows, columns=None if rows else ["run_id", "trial_id", VARIANT, SEED, "loss"])
    return RunSet(
        trials, per_class, config, f"MLflow store `{tracking_uri}`, experiment `{experiment}`", tuple(excluded)
    )


def _read_artifact(
    client: Any, run: Any, relpath: str, tmp: Path, experiment_dir: Path | None, error: type[Exception]
) -> str | None:
    """A run artifact's text: read in place from a local artifact store, else downloaded; None if absent."""
    path = artifact_file(client, run, relpath, tmp, experiment_dir, error)
    return path.read_text() if path is not None else None


def artifact_file(
    client: Any, run: Any, relpath: str, tmp: Path, experiment_dir: Path | None, error: type[Exception] = Exception
) -> Path | None:
    """Where a run's artifact ``relpath`` can be read: in place in a local artifact store (or under
    ``experiment_dir/mlartifacts`` when the folder has moved), else downloaded under ``tmp``; None if absent.

    Args:
        run: an ``mlflow.entities.Run``.
        error: the store's exception type for a missing artifact (``MlflowException``).
    """
    candidates = []
    uri = urlparse(run.info.artifact_uri or "")
    if uri.scheme == "file":
        candidates.append(Path(unquote(uri.path)) / relpath)
    if experiment_dir is not None:  # the store records absolute URIs; a moved experiment folder still has them here
        candidates.append(ExperimentDir(experiment_dir).mlartifacts / run.info.run_id / "artifacts" / relpath)
    for path in candidates:
        if path.is_file():
            return path
    if uri.scheme in ("file", ""):
        return None
    try:  # a remote artifact store
        return Path(client.download_artifacts(run.info.run_id, relpath, str(tmp / run.info.run_id)))
    except (OSError, error):
        return None


def _parent_config(
    client: Any, experiment_id: str, tmp: Path, experiment_dir: Path | None, error: type[Exception]
) -> dict[str, Any]:
    parents = client.search_runs([experiment_id], filter_string=f"tags.`{TAG_ROLE}` = 'parent'", max_results=1)
    text = _read_artifact(client, parents[0], CONFIG_ARTIFACT, tmp, experiment_dir, error) if parents else None
    raw = yaml.safe_load(text) if text else None
    return raw if isinstance(raw, dict) else {}


def load_trials_csv(path: Path, config: Mapping[str, Any]) -> RunSet:
    """Ray's ``trials.csv`` (last reported result of every trial) when there is no MLflow store.

    The variant's loss comes from the config's ``ablation.variants`` (else the base ``loss.name``); there is
    no per-class table and no run status (every row is kept).
    """
    df = pd.read_csv(path)
    variants = (config.get("ablation") or {}).get("variants") or {}
    base_loss = (config.get("loss") or {}).get("name", "")
    variant = df[CONFIG_PREFIX + "variant"].astype(str) if CONFIG_PREFIX + "variant" in df else SEARCH_VARIANT
    out = df.assign(**{VARIANT: variant})
    if CONFIG_PREFIX + "seed" in out:
        out[SEED] = out[CONFIG_PREFIX + "seed"]
    else:
        out[SEED] = config.get("seed", math.nan)

    def loss_of(v: str) -> str:
        over = variants.get(v) or {}
        loss = over.get("loss") if isinstance(over, Mapping) else None
        if isinstance(loss, Mapping) and "name" in loss:
            return str(loss["name"])
        return str(over.get("loss.name", base_loss)) if isinstance(over, Mapping) else base_loss

    out["loss"] = out[VARIANT].map(loss_of)
    out["status"] = "unknown"
    if "epoch" not in out:
        out["epoch"] = out.get("training_iteration", math.nan)
    if "run_id" not in out:
        out["run_id"] = out.get("trial_id", pd.Series(range(len(out)))).astype(str)
    return RunSet(out, {}, dict(config), f"`{path}` (Ray's last reported result per trial; no MLflow store)")


def _int_or_nan(v: Any) -> float | int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return math.nan


def _parse_param(v: str) -> Any:
    """MLflow params are strings; numbers back to numbers so that varying params sort and plot."""
    try:
        return yaml.safe_load(v) if isinstance(v, str) and len(v) < 200 else v
    except yaml.YAMLError:
        return v


def schedule_epochs(runs: RunSet) -> int | None:
    """The experiment's schedule length: the config's ``optim.epochs``, else the most epochs any trial reached."""
    optim = runs.config.get("optim")
    if isinstance(optim, Mapping) and isinstance(optim.get("epochs"), int):
        return int(optim["epochs"])
    reached = pd.to_numeric(runs.trials["epoch"], errors="coerce").dropna() if "epoch" in runs.trials else None
    return int(reached.max()) if reached is not None and len(reached) else None


def trial_epochs(trials: pd.DataFrame) -> list[int]:
    """The epochs the shown trials trained (each trial's last epoch); empty when unknown."""
    if "epoch" not in trials:
        return []
    return sorted({int(e) for e in pd.to_numeric(trials["epoch"], errors="coerce").dropna()})


def epochs_text(trials: pd.DataFrame) -> str:
    """'final evaluated epoch 2', 'final evaluated epochs [40, 200]', or '... (unknown)', for the report's intro."""
    epochs = sorted({int(e) for e in trials["epoch"].dropna()}) if "epoch" in trials else []
    if not epochs:
        return "final evaluated epoch (unknown)"
    return f"final evaluated epoch {epochs[0]}" if len(epochs) == 1 else f"final evaluated epochs {epochs}"
