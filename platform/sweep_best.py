"""Ablation variants whose hyperparameters come from the best trial of a finished sweep.

An ablation variant may say where its searched values come from instead of fixing them::

    ablation:
      variants:
        ce:  {loss: {name: cross_entropy}}
        elm: {loss: {name: elm}, from_sweep: experiments/cifar100_elm_search}
        la:  {loss: {name: logit_adjusted}, from_sweep: {path: experiments/cifar100_elm_search, keys: [loss.tau]}}

``from_sweep`` is a sweep folder written by ``python -m platform.tune`` (its ``config.yaml`` and ``trials.csv``),
or a mapping ``{path, keys, metric, mode}``. The best trial is ``platform.best``'s: among the trials that reached
the last epoch, the best last evaluated value of the sweep's own ``tune.metric`` (or ``metric`` and ``mode`` given
here); a trial ASHA stopped after a few epochs, or a failed one, never competes with complete ones. ``keys`` picks which
of its sampled keys to take (default: all of them). Choose on a validation metric (``train.eval_split: val`` in
the sweep): a sweep ranked on ``test/...`` makes the tuned variants' test numbers optimistic, and the ablation says
so in a warning and in ``variant_sources.yaml``. The variant's own keys apply first (a ``loss:`` block replaces the
base loss), then the sweep's values. Resolution happens in ``make_plan``, before Ray starts, so the experiment's
``config.yaml``, MLflow and every trial see plain values; ``<out>/variant_sources.yaml`` records where each came
from.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import yaml

from elm.config import ConfigError
from elm.config_files import load_yaml
from platform.best import best_index, describe_no_best
from platform.layout import ExperimentDir

FROM_SWEEP = "from_sweep"


class SelectedOnTestWarning(UserWarning):
    """A variant's hyperparameters were chosen on the test split it is then evaluated on."""


CONFIG_PREFIX = "config/"
NOT_SAMPLED = ("variant", "seed")  # grid axes of an ablation, never hyperparameters to carry over


@dataclass(frozen=True)
class BestTrial:
    """The winner of a finished sweep and its sampled values (dotted keys)."""

    sweep: str  # absolute path
    trial_id: str
    metric: str
    mode: str
    value: float
    epochs: int | None  # the trial's last reported training_iteration
    params: dict[str, Any]
    trials_csv_mtime: str  # ISO time of the trials.csv read: a later re-run of the sweep changes the answer

    def as_record(self, keys: list[str]) -> dict[str, Any]:
        return {
            "sweep": self.sweep,
            "trial_id": self.trial_id,
            "metric": self.metric,
            "mode": self.mode,
            "value": self.value,
            "epochs": self.epochs,
            "chosen_on_test_split": self.metric.startswith("test/"),
            "trials_csv_modified": self.trials_csv_mtime,
            "values": {k: self.params[k] for k in keys},
        }


def _python(v: Any) -> Any:
    """A plain Python value from a trials.csv cell: numpy scalars unwrapped, list/dict text parsed back."""
    v = v.item() if hasattr(v, "item") else v
    if isinstance(v, str) and v[:1] in ("[", "{"):
        try:
            return load_yaml(v)  # the config's own YAML rules (1e-3 is a float)
        except yaml.YAMLError:
            return v
    return v


def best_trial(sweep_dir: str | Path, *, metric: str | None = None, mode: str | None = None) -> BestTrial:
    """The best trial of the sweep in ``sweep_dir`` by the last reported ``metric`` (default: the sweep's own).

    Raises:
        ConfigError: the folder, its ``trials.csv`` or the metric is missing, or no trial reported a finite value.
    """
    import pandas as pd

    d = Path(sweep_dir)
    csv, cfg_file = ExperimentDir(d).trials_csv, ExperimentDir(d).config
    if not d.is_dir():
        raise ConfigError(f"no sweep folder at {d.resolve()}")
    if not csv.is_file():
        raise ConfigError(f"{d} has no trials.csv: the sweep did not finish; run it again with --resume")
    if mode is not None and metric is None:
        raise ConfigError("give metric together with mode (mode alone would flip the sweep's own metric)")
    cfg = (yaml.safe_load(cfg_file.read_text()) or {}) if cfg_file.is_file() else {}
    tune_block = cfg.get("tune") or {}
    if metric is None and isinstance(tune_block.get("metric"), list) and len(tune_block["metric"]) > 1:
        raise ConfigError(
            f"{d} tuned several metrics {tune_block['metric']}: it has a Pareto front "
            f"(summary.md), not one best trial; give from_sweep a metric and mode to rank its trials "
            f"by (platform.confirm cannot confirm a front)"
        )
    metric = metric or tune_block.get("metric", "test/balanced_acc")
    mode = mode or tune_block.get("mode", "max")
    if mode not in ("max", "min"):
        raise ConfigError(f"mode must be max or min, got {mode!r}")
    df = pd.read_csv(csv, dtype={"trial_id": str})
    if metric not in df.columns:
        raise ConfigError(f"{csv} has no column {metric!r}; it has {sorted(c for c in df.columns if '/' in c)[:8]}...")
    if "status" in df.columns:  # trials.csv of platform.tune: a failed trial never competes
        df = df[df["status"] != "failed"]
    # The epochs each trial reached: ``epochs`` (platform.tune), else Ray's own columns (older sweep folders).
    epoch_col = next((c for c in ("epochs", "epoch", "training_iteration") if c in df.columns), None)
    if epoch_col is None:
        df, epoch_col = df.assign(epochs=0), "epochs"
    reached = pd.to_numeric(df[epoch_col], errors="coerce")
    schedule = (cfg.get("optim") or {}).get("epochs") or (int(reached.max()) if reached.notna().any() else 0)
    idx = best_index(df, metric, mode, int(schedule), epoch_col=epoch_col)
    if idx is None:
        raise ConfigError(f"no trial of {d} is a candidate: {describe_no_best(df, metric, int(schedule), epoch_col)}")
    row = df.loc[idx]
    params = {
        c[len(CONFIG_PREFIX) :]: _python(row[c])
        for c in df.columns
        if c.startswith(CONFIG_PREFIX) and c[len(CONFIG_PREFIX) :] not in NOT_SAMPLED and pd.notna(row[c])
    }
    epochs = int(row[epoch_col]) if pd.notna(row[epoch_col]) else None
    mtime = datetime.fromtimestamp(csv.stat().st_mtime, tz=timezone.utc).isoformat(timespec="seconds")
    return BestTrial(
        sweep=str(d.resolve()),
        trial_id=str(row.get("trial_id", "")),
        metric=metric,
        mode=mode,
        value=float(row[metric]),
        epochs=epochs,
        params=params,
        trials_csv_mtime=mtime,
    )


def resolve_variant(name: str, overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A variant's plain overrides, with ``from_sweep`` replaced by the sweep's best values; and their source."""
    out = {k: v for k, v in overrides.items() if k != FROM_SWEEP}
    if FROM_SWEEP not in overrides:
        return out, None
    where = f"ablation.variants.{name}.{FROM_SWEEP}"
    spec = overrides[FROM_SWEEP]
    if isinstance(spec, (str, Path)):
        spec = {"path": str(spec)}
    if not isinstance(spec, Mapping) or "path" not in spec:
        raise ConfigError(f"{where} must be a sweep folder or a mapping with path (and keys, metric, mode)")
    unknown = set(spec) - {"path", "keys", "metric", "mode"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: path, keys, metric, mode")
    try:
        best = best_trial(spec["path"], metric=spec.get("metric"), mode=spec.get("mode"))
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    keys = spec.get("keys")
    if keys is None:
        keys = sorted(best.params)
    elif not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ConfigError(f"{where}.keys must be a list of dotted keys, e.g. [loss.tau]")
    if not keys:
        raise ConfigError(f"{where}: no keys to take (keys is empty, or the sweep searched nothing)")
    missing = [k for k in keys if k not in best.params]
    if missing:
        raise ConfigError(f"{where}: the sweep did not search {missing}; it searched {sorted(best.params)}")
    if best.metric.startswith("test/"):
        warnings.warn(
            f"{where}: {best.sweep} ranked its trials on {best.metric}; the ablation's test numbers for "
            f"variant {name!r} are then optimistic (rank on a val/ metric: train.eval_split: val)",
            SelectedOnTestWarning,
            stacklevel=2,
        )
    out.update({k: best.params[k] for k in keys})
    return out, best.as_record(list(keys))


def resolve_variants(
    variants: Mapping[str, Mapping[str, Any]],
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Every variant resolved (see ``resolve_variant``); the second mapping holds the sources of those that used
    ``from_sweep``."""
    resolved, sources = {}, {}
    for name, over in variants.items():
        resolved[name], src = resolve_variant(name, over)
        if src is not None:
            sources[name] = src
    return resolved, sources
