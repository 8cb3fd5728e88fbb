"""The per-worker loop of a trial: ``elm.train.fit`` with Ray Train's device, reporting and checkpoints.

Ray Train has set up the torch process group (gloo on CPU, NCCL on GPU) before this runs, so ``fit`` wraps the
model in DDP by itself. A trial restarted by ``FailureConfig`` (dead worker) or by ``--resume`` gets the latest
reported checkpoint from ``ray.train.get_checkpoint()`` and continues from that epoch.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import ray.train
import ray.train.torch

from elm.config import from_dict
from elm.train import EpochReport, fit
from platform.code_version import CodeChangedError, check_same_code
from platform.failures import DETERMINISTIC_ERRORS, FAILURE_KEY, reason, record_failure
from platform.trainables.common import report_epoch, restored_from


def train_fn_per_worker(loop_config: dict[str, Any]) -> None:
    """Train the resolved config in ``loop_config["config"]`` on this worker, after checking that it imports the
    sources in ``loop_config["code"]`` (a worker restarted by Ray Train imports from disk again)."""
    try:
        if loop_config.get("code"):
            check_same_code(loop_config["code"])
        cfg = from_dict(loop_config["config"])
        with tempfile.TemporaryDirectory(prefix="elm-trial-") as tmp:
            resume = restored_from(ray.train.get_checkpoint(), None, tmp)

            def report(r: EpochReport) -> None:
                report_epoch(r, ray.train.report, ray.train.Checkpoint)

            fit(cfg, report, run_dir=Path(tmp) / "run", resume_from=resume, device=ray.train.torch.get_device())
    except (*DETERMINISTIC_ERRORS, CodeChangedError) as e:
        # A retry from a checkpoint would fail again: rank 0 leaves the reason where the driver looks (this Train
        # run's folder on the sweep's storage) and every rank ends cleanly, so Ray Train does not retry.
        if ray.train.get_context().get_world_rank() == 0:
            record_failure(e, loop_config["failure_file"], ray.train.report)  # a platform.storage.StoragePath
        else:
            ray.train.report({FAILURE_KEY: reason(e)})
