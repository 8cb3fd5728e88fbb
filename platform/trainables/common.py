"""What both trainables share, kept free of Ray Train imports (the in-trial path must start fast).

The keys a trial reports besides its metrics, how a trial's overrides are resolved and its folder named, and how
one epoch's report becomes Tune metrics (and a checkpoint, through the launcher's own ``Checkpoint`` class).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping

from elm.checkpoint import latest_checkpoint
from elm.config import ExperimentConfig, from_dict, with_overrides
from elm.train import EpochReport

VARIANT_KEY = "variant"
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


def trial_run_name(base: Mapping[str, Any], trial_id: str) -> str:
    """``<name>-trial=<id>``: a trial's MLflow run name and the name of its own folder under ``<out>/train/`` (the
    same for both launchers, so a restarted trial finds its checkpoints and its ``failure.txt``)."""
    return f"{base['name']}-trial={trial_id}"


def resolve_trial(
    trial_config: Mapping[str, Any], base: Mapping[str, Any], variants: Mapping[str, Mapping[str, Any]]
) -> ExperimentConfig:
    """One trial's validated config: the base, its variant's overrides, then its sampled values.

    Raises:
        ConfigError: the overrides do not give a valid config.
    """
    return with_overrides(from_dict(dict(base)), resolve_trial_overrides(trial_config, variants))


def report_epoch(r: EpochReport, report: Callable[..., Any], checkpoint_cls: Any) -> None:
    """Forward one epoch to Tune or Train (``report``: ``ray.tune.report`` or ``ray.train.report``), with the
    epoch's checkpoint folder wrapped in that framework's ``Checkpoint`` class."""
    ckpt = checkpoint_cls.from_directory(str(r.checkpoint)) if r.checkpoint is not None else None
    report(epoch_metrics(r), checkpoint=ckpt)


def restored_from(framework_checkpoint: Any, run_dir: Path | None, tmp: str) -> Path | None:
    """Where a (re)started trial resumes: the newest checkpoint in its own folder ``run_dir`` (it survives whatever
    Tune's experiment snapshot remembers), else the framework's checkpoint (``ray.tune.get_checkpoint()`` /
    ``ray.train.get_checkpoint()``, e.g. synced to another node), unpacked under ``tmp``; None for a fresh start."""
    if run_dir is not None and latest_checkpoint(run_dir / "checkpoints") is not None:
        return run_dir
    if framework_checkpoint is not None:
        return Path(framework_checkpoint.to_directory(str(Path(tmp) / "restored")))
    return None


def epoch_metrics(r: EpochReport) -> dict[str, Any]:
    """What a trial reports to Tune for one epoch: the metrics, plus JSON of the per-class table and of the
    epochs a resumed checkpoint already held (the MLflow tracker unpacks both)."""
    metrics: dict[str, Any] = dict(r.metrics)
    if r.per_class is not None:
        metrics[PER_CLASS_KEY] = json.dumps(r.per_class)
    if r.restored_history:
        metrics[HISTORY_KEY] = json.dumps(r.restored_history)
    return metrics
