"""The Tune trainable for one-worker trials: ``elm.train.fit`` inside the Tune trial's own process.

A one-worker ``TorchTrainer`` gains nothing from Ray Train (no DDP) but costs a controller actor and a worker
actor per trial, each a fresh interpreter importing torch (its start-up cost: ``benchmarks/README.md``, "Start-up").
Here the trial reports with ``ray.tune.report``; its checkpoints live in its own folder
``<storage>/train/<name>-trial=<id>/`` (the newest ``train.keep_checkpoints``; ``platform.storage``). On a local or
mounted storage folder ``fit`` writes them there and they are also handed to Tune; on a remote store (``s3://``)
``fit`` writes to a scratch folder and each checkpoint is uploaded to the trial's folder (Tune gets the last one). A
trial restarted by Tune (``tune.max_failures``, or ``--resume`` after a crash), on any node, continues from the
newest checkpoint there, else from ``ray.tune.get_checkpoint()``. A deterministic failure is recorded and not retried
(``platform.failures``). The trial holds the CPUs/GPUs itself (``platform.tune.make_trainable``).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping

import ray
import ray.tune
import torch

from elm.train import EpochReport, fit
from platform.failures import (
    DETERMINISTIC_ERRORS,
    FAILURE_FILE,
    TrialFailedError,
    raise_if_failed_before,
    record_failure,
)
from platform.storage import StoragePath, pull_latest_checkpoint, push_checkpoint
from platform.trainables.common import report_epoch, resolve_trial, restored_from, trial_run_name


def trial_device(gpu_ids: list[Any] | None = None) -> torch.device:
    """The GPU Ray assigned to this trial, else the CPU.

    Ray narrows CUDA_VISIBLE_DEVICES to the trial's GPUs, so the first visible one is ``cuda:0``, unless
    ``RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES`` leaves every GPU visible (then it is the assigned id).

    Raises:
        RuntimeError: the trial holds a GPU but this torch cannot use CUDA (it would silently train on the CPU).
    """
    ids = ray.get_gpu_ids() if gpu_ids is None else gpu_ids
    if not ids:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError(
            f"this trial holds GPU(s) {ids} but torch.cuda.is_available() is False "
            f"(torch {torch.__version__}): install a CUDA build of torch on the workers"
        )
    noset = os.environ.get("RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES", "") not in ("", "0")
    return torch.device("cuda", int(ids[0]) if noset else 0)


def train_in_trial_fn(
    trial_config: dict[str, Any],
    *,
    base: dict[str, Any],
    variants: Mapping[str, Mapping[str, Any]],
    cpus: float,
    train_dir: StoragePath,
) -> None:
    """Run one trial in this process. ``base`` is the experiment config; ``trial_config`` holds Tune's sample;
    ``train_dir`` is the sweep's ``<storage>/train``.

    Raises:
        TrialFailedError: the trial failed deterministically (bad config, data error, diverged loss), now or before.
    """
    run = train_dir / trial_run_name(base, ray.tune.get_context().get_trial_id())
    failure_file = run / FAILURE_FILE
    raise_if_failed_before(failure_file)
    try:
        cfg = resolve_trial(trial_config, base, variants)
        if not cfg.train.num_threads:
            torch.set_num_threads(max(1, int(cpus)))  # the CPUs this trial holds, not every core of the node
        with tempfile.TemporaryDirectory(prefix="elm-trial-") as tmp:
            run_dir, report = local_run(run, Path(tmp), cfg.train.keep_checkpoints, cfg.optim.epochs)
            resume = restored_from(ray.tune.get_checkpoint(), run_dir, tmp)
            fit(cfg, report, run_dir=run_dir, resume_from=resume, device=trial_device())
    except DETERMINISTIC_ERRORS as e:
        raise TrialFailedError(record_failure(e, failure_file, ray.tune.report)) from e


def local_run(run: StoragePath, scratch: Path, keep: int, epochs: int) -> tuple[Path, Callable[[EpochReport], None]]:
    """Where ``fit`` writes the trial's checkpoints, and the reporter that forwards each epoch to Tune.

    A local or mounted ``run`` folder is used as it is, and checkpoints are handed to Tune as well. A remote one is
    mirrored: its newest checkpoint is copied into ``scratch/run`` (to resume from), and every new checkpoint is
    uploaded to ``run`` (keeping the newest ``keep``) before the epoch is reported; only the last epoch's (of
    ``epochs``) also goes to Tune, where the tracker reads the stored logits it holds.
    """
    local = run.local()
    if local is not None:
        return local, lambda r: report_epoch(r, ray.tune.report, ray.tune.Checkpoint)
    run_dir = scratch / "run"
    pull_latest_checkpoint(run, run_dir)

    def report(r: EpochReport) -> None:
        if r.checkpoint is not None:
            push_checkpoint(r.checkpoint, run, keep)
        report_epoch(r if r.epoch == epochs else replace(r, checkpoint=None), ray.tune.report, ray.tune.Checkpoint)

    return run_dir, report
