"""The Tune trainable: resolve one trial's config and run it as a Ray Train ``TorchTrainer``.

Follows Ray Train V2's Tune integration: the Tune trial (``train_driver_fn``) builds and fits a ``TorchTrainer``
whose workers run ``train_fn_per_worker``; ``TuneReportCallback`` forwards rank 0's reports to Tune. The Train
run is named after the trial (``<name>-trial=<id>``), so a restarted trial finds its own checkpoints.
"""

from __future__ import annotations

from typing import Any, Mapping

import ray.train
import ray.tune
from ray.train.torch import TorchTrainer
from ray.tune.integration.ray_train import TuneReportCallback

from platform.failures import (
    DETERMINISTIC_ERRORS,
    FAILURE_FILE,
    TrialFailedError,
    raise_if_failed_before,
    record_failure,
)
from platform.spec import ResourcesSpec
from platform.storage import StoragePath
from platform.trainables.common import resolve_trial, trial_run_name
from platform.trainables.worker import train_fn_per_worker


def train_driver_fn(
    trial_config: dict[str, Any],
    *,
    base: dict[str, Any],
    variants: Mapping[str, Mapping[str, Any]],
    resources: ResourcesSpec,
    train_dir: StoragePath,
    max_failures: int,
    code: Mapping[str, str] | None = None,
) -> None:
    """Run one trial. ``base`` is the experiment config as a mapping; ``trial_config`` holds Tune's sample;
    ``train_dir`` is the sweep's ``<storage>/train``, where Ray Train keeps this trial's run and checkpoints;
    ``code``: the sweep's source digests, which every worker (restarted ones too) checks (``platform.code_version``).

    Raises:
        TrialFailedError: the trial failed deterministically (bad config, data error, diverged loss).
    """
    run_name = trial_run_name(base, ray.tune.get_context().get_trial_id())
    failure_file = train_dir / run_name / FAILURE_FILE
    raise_if_failed_before(failure_file)
    try:
        cfg = resolve_trial(trial_config, base, variants)
    except DETERMINISTIC_ERRORS as e:
        raise TrialFailedError(record_failure(e, failure_file, ray.tune.report)) from e
    use_gpu = resources.gpus_per_worker > 0
    per_worker = {"CPU": resources.cpus_per_worker, **({"GPU": resources.gpus_per_worker} if use_gpu else {})}
    trainer = TorchTrainer(
        train_fn_per_worker,
        train_loop_config={"config": cfg.to_dict(), "failure_file": failure_file, "code": code},
        scaling_config=ray.train.ScalingConfig(
            num_workers=resources.num_workers, use_gpu=use_gpu, resources_per_worker=per_worker
        ),
        run_config=ray.train.RunConfig(
            name=run_name,
            **train_dir.ray_storage(),
            failure_config=ray.train.FailureConfig(max_failures=max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
            callbacks=[TuneReportCallback()],
        ),
    )
    trainer.fit()
    raise_if_failed_before(failure_file)  # a worker recorded a deterministic failure and ended cleanly
