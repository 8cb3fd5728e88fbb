"""Finding what to report on: the experiment folder, its saved config, its MLflow store or ``trials.csv``, and the
sweep's id; then loading its trials (``platform.report.runs``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from elm.config import ConfigError
from platform.layout import ExperimentDir
from platform.report.runs import RunSet, load_mlflow, load_trials_csv

EXPERIMENTS = Path("experiments")  # where a bare experiment name is looked for


@dataclass(frozen=True)
class Source:
    name: str
    directory: Path | None
    tracking_uri: str | None
    experiment: str
    config: dict[str, Any]
    sweep_id: str | None = None  # the sweep's own id (sweep_id.txt), when the folder has one


def tuned_metrics(tune_cfg: Mapping[str, Any], default: str) -> list[str]:
    """The sweep's ``tune.metric`` as a list (several for a multi-objective sweep), or ``[default]``."""
    metric = tune_cfg.get("metric", default)
    return [str(m) for m in metric] if isinstance(metric, list) else [str(metric)]


def saved_config(layout: ExperimentDir | None) -> dict[str, Any]:
    """The folder's ``config.yaml`` as a raw mapping; {} without a folder or a config."""
    if layout is None or not layout.config.is_file():
        return {}
    raw = yaml.safe_load(layout.config.read_text())
    return raw if isinstance(raw, dict) else {}


def resolve(target: str, tracking_uri: str | None, experiment: str | None) -> Source:
    """Find the experiment folder, its config, its store (or trials.csv) and the MLflow experiment name.

    Raises:
        FileNotFoundError: no such folder (and no store given), or an http(s) store whose server does not answer.
    """
    path = Path(target)
    directory = path if path.is_dir() else (EXPERIMENTS / target if (EXPERIMENTS / target).is_dir() else None)
    if directory is None and tracking_uri is None:
        raise FileNotFoundError(f"{target}: no such experiment folder (nor experiments/{target}); "
                                "pass a folder written by platform.tune, or --tracking-uri and --experiment")
    directory = directory.resolve() if directory is not None else None
    layout = ExperimentDir(directory) if directory is not None else None
    config = saved_config(layout)
    tracking = config.get("tracking") or {}
    if tracking_uri is None and tracking.get("uri"):  # the sweep tracked to a shared store
        tracking_uri = str(tracking["uri"])
    if tracking_uri is None and layout is not None and layout.mlflow_db.is_file():
        tracking_uri = layout.default_tracking_uri
    if tracking_uri is not None and tracking_uri.startswith(("http://", "https://")):
        from platform.plan import check_tracking_uri

        try:  # MLflow's client would retry a server that is down for minutes
            check_tracking_uri(tracking_uri)
        except ConfigError as e:
            raise FileNotFoundError(str(e)) from None
    name = str(config.get("name") or (directory.name if directory is not None else target))
    sweep_id = layout.read_sweep_id(name) if layout is not None and layout.sweep_id.is_file() else None
    return Source(name=name, directory=directory, tracking_uri=tracking_uri,
                  experiment=experiment or str(tracking.get("experiment") or name), config=config, sweep_id=sweep_id)


def load(src: Source, metric: str) -> RunSet:
    """The trials of ``src``: from its MLflow store (with the folder's config when the store has none), else from
    its ``trials.csv``.

    Raises:
        FileNotFoundError: neither a store nor ``trials.csv``.
    """
    if src.tracking_uri is not None:
        runs = load_mlflow(src.tracking_uri, src.experiment, metric, src.directory, src.sweep_id)
        return runs if runs.config else RunSet(runs.trials, runs.per_class, src.config, runs.source, runs.excluded)
    csv = ExperimentDir(src.directory).trials_csv if src.directory is not None else None
    if csv is None or not csv.is_file():
        raise FileNotFoundError(f"{src.directory}: neither mlflow.db nor trials.csv; has platform.tune run here?")
    return load_trials_csv(csv, src.config)
