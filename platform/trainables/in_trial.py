"""The Tune trainable for one-worker trials: ``elm.train.fit`` inside the Tune trial's own process.

A one-worker ``TorchTrainer`` gains nothing from Ray Train (no DDP) but costs a controller actor and a worker
actor per trial, each a fresh interpreter importing torch: about 10 s of start-up on a 2-core machine (see
``benchmarks/README.md``). Here the trial reports with ``ray.tune.report``; its checkpoints live in
``<out>/train/<name>-trial=<id>/`` (the newest ``train.keep_checkpoints``) and are also handed to Tune. A trial
restarted by Tune (``tune.max_failures``, or ``--resume`` after a crash) continues from the newest checkpoint
there, else from ``ray.tune.get_checkpoint()``. The trial holds the CPUs/GPUs itself
(``platform.tune.make_trainable``).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import ray
import ray.tune
import torch

from elm.checkpoint import latest_checkpoint
from elm.train import EpochReport, NonFiniteLossError, fit
from platform.trainables.common import NONFINITE_FILE, NONFINITE_KEY, epoch_metrics, resolve_trial


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
        raise RuntimeError(f"this trial holds GPU(s) {ids} but torch.cuda.is_available() is False "
                           f"(torch {torch.__version__}): install a CUDA build of torch on the workers")
    noset = os.environ.get("RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES", "") not in ("", "0")
    return torch.device("cuda", int(ids[0]) if noset else 0)


def train_in_trial_fn(
    trial_config: dict[str, Any],
    *,
    base: dict[str, Any],
    variants: Mapping[str, Mapping[str, Any]],
    cpus: float,
    storage_path: str,
) -> None:
    """Run one trial in this process. ``base`` is the experiment config; ``trial_config`` holds Tune's sample."""
    cfg, run_name = resolve_trial(trial_config, base, variants, ray.tune.get_context().get_trial_id())
    # The trial's own folder, as the Ray Train path has: its checkpoints survive whatever Tune's experiment
    # snapshot remembers, so a trial Tune restarts from an older state (driver killed) resumes from the newest.
    run_dir = Path(storage_path) / run_name
    failure_file = run_dir / NONFINITE_FILE
    if failure_file.is_file():  # a retry of a diverged trial would diverge again: fail at once, with the reason
        raise NonFiniteLossError(failure_file.read_text())
    if not cfg.train.num_threads:
        torch.set_num_threads(max(1, int(cpus)))  # the CPUs this trial holds, not every core of the node
    with tempfile.TemporaryDirectory(prefix="elm-trial-") as tmp:
        resume: Path | None = run_dir if latest_checkpoint(run_dir / "checkpoints") is not None else None
        checkpoint = ray.tune.get_checkpoint()
        if resume is None and checkpoint is not None:  # e.g. restarted on another node: Tune's synced copy
            resume = Path(checkpoint.to_directory(str(Path(tmp) / "restored")))

        def report(r: EpochReport) -> None:
            ckpt = ray.tune.Checkpoint.from_directory(str(r.checkpoint)) if r.checkpoint is not None else None
            ray.tune.report(epoch_metrics(r), checkpoint=ckpt)

        try:
            fit(cfg, report, run_dir=run_dir, resume_from=resume, device=trial_device())
        except NonFiniteLossError as e:
            failure_file.parent.mkdir(parents=True, exist_ok=True)
            failure_file.write_text(str(e))
            ray.tune.report({NONFINITE_KEY: str(e)})
            raise
