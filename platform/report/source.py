"""Finding what to report on: the experiment folder, its saved config (read back through the typed
``platform.spec`` blocks, so defaults such as the metric name, mode and MLflow experiment live there), its MLflow
store or ``trials.csv``, and the sweep's id; then loading its trials (``platform.report.runs``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from elm.config import ConfigError, parse_section
from platform.layout import ExperimentDir
from platform.report.runs import RunSet, load_mlflow, load_trials_csv
from platform.spec import TrackingSpec, TuneSpec

EXPERIMENTS = Path("experiments")  # where a bare experiment name is looked for
_Spec = TypeVar("_Spec")


@dataclass(frozen=True)
class Source:
    name: str
    directory: Path | None
    tracking_uri: str | None
    experiment: str
    config: dict[str, Any]
    sweep_id: str | None = None  # the sweep's own id (sweep_id.txt), when the folder has one


def _typed(cls: type[_Spec], where: str, block: Any, keys: tuple[str, ...]) -> _Spec:
    """The ``keys`` of a saved config block through its spec class; the spec's defaults for a block that is missing
    or no longer valid, key by key (a report reads old folders too, and only these keys)."""
    valid: dict[str, Any] = {}
    for key in keys:
        if isinstance(block, Mapping) and key in block:
            try:
                parse_section(cls, where, {key: block[key]})
            except ConfigError:
                continue
            valid[key] = block[key]
    spec: _Spec = parse_section(cls, where, valid)
    return spec


def tune_spec(tune_cfg: Any) -> TuneSpec:
    """A saved ``tune`` block's metric(s) and mode(s) as a ``TuneSpec`` (its defaults where the block has none)."""
    return _typed(TuneSpec, "tune", tune_cfg, ("metric", "mode"))


def tracking_spec(config: Mapping[str, Any]) -> TrackingSpec:
    """A saved config's ``tracking`` block (MLflow store and experiment name) as a ``TrackingSpec``."""
    return _typed(TrackingSpec, "tracking", config.get("tracking"), ("uri", "experiment"))


def default_metric(split: str) -> str:
    """``TuneSpec``'s default metric (``test/balanced_acc``) read on ``split``: what a report of a config that
    names no ``tune.metric`` ranks by."""
    return f"{split}/{TuneSpec().metrics[0].split('/', 1)[-1]}"


def tuned_metrics(tune_cfg: Mapping[str, Any], default: str) -> list[str]:
    """The sweep's ``tune.metric`` as a list (several for a multi-objective sweep), or ``[default]``."""
    return list(tune_spec(tune_cfg).metrics) if "metric" in tune_cfg else [default]


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
        raise FileNotFoundError(
            f"{target}: no such experiment folder (nor experiments/{target}); "
            "pass a folder written by platform.tune, or --tracking-uri and --experiment"
        )
    directory = directory.resolve() if directory is not None else None
    layout = ExperimentDir(directory) if directory is not None else None
    config = saved_config(layout)
    tracking = tracking_spec(config)
    if tracking_uri is None and tracking.uri:  # the sweep tracked to a shared store
        tracking_uri = str(tracking.uri)
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
    return Source(
        name=name,
        directory=directory,
        tracking_uri=tracking_uri,
        experiment=experiment or str(tracking.experiment or name),
        config=config,
        sweep_id=sweep_id,
    )


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
