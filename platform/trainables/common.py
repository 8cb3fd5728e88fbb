"""What both trainables share, kept free of Ray Train imports (the in-trial path must start fast).

The keys a trial reports besides its metrics, the file a diverged trial leaves behind, how a trial's overrides are
resolved, and how one epoch's report becomes Tune metrics.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from elm.config import ExperimentConfig, from_dict, with_overrides
from elm.train import EpochReport

VARIANT_KEY = "variant"
NONFINITE_FILE = "nonfinite_loss.txt"  # written where the trial's driver looks when its loss diverged
NONFINITE_KEY = "error/nonfinite_loss"  # reported once by a diverged trial; the driver turns it into the error
PER_CLASS_KEY = "per_class_json"
HISTORY_KEY = "restored_history_json"  # epochs before a resumed checkpoint, for the tracker to backfill


def resolve_trial_overrides(
    trial_config: Mapping[str, Any], variants: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """Dotted overrides for one trial: its variant's overrides, then its sampled keys (which win)."""
    out: dict[str, Any] = {}
    variant = trial_config.get(VARIANT_KEY)
    if variant is not None:
        out.update(variants[variant])
    out.update({k: v for k, v in trial_config.items() if k != VARIANT_KEY})
    return out


def resolve_trial(
    trial_config: Mapping[str, Any], base: Mapping[str, Any], variants: Mapping[str, Mapping[str, Any]],
    trial_id: str,
) -> tuple[ExperimentConfig, str]:
    """One trial's validated config, and the name of its own folder under ``<out>/train/`` (``<name>-trial=<id>``,
    the same for both launchers, so a restarted trial finds its checkpoints and its non-finite-loss file)."""
    cfg = with_overrides(from_dict(dict(base)), resolve_trial_overrides(trial_config, variants))
    return cfg, f"{cfg.name}-trial={trial_id}"


def epoch_metrics(r: EpochReport) -> dict[str, Any]:
    """What a trial reports to Tune for one epoch: the metrics, plus JSON of the per-class table and of the
    epochs a resumed checkpoint already held (the MLflow tracker unpacks both)."""
    metrics: dict[str, Any] = dict(r.metrics)
    if r.per_class is not None:
        metrics[PER_CLASS_KEY] = json.dumps(r.per_class)
    if r.restored_history:
        metrics[HISTORY_KEY] = json.dumps(r.restored_history)
    return metrics
