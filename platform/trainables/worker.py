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
from elm.train import EpochReport, NonFiniteLossError, fit
from platform.trainables.common import NONFINITE_KEY, epoch_metrics


def train_fn_per_worker(loop_config: dict[str, Any]) -> None:
    """Train the resolved config in ``loop_config["config"]`` on this worker."""
    cfg = from_dict(loop_config["config"])
    with tempfile.TemporaryDirectory(prefix="elm-trial-") as tmp:
        resume = None
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is not None:
            resume = Path(checkpoint.to_directory(str(Path(tmp) / "restored")))

        def report(r: EpochReport) -> None:
            ckpt = ray.train.Checkpoint.from_directory(str(r.checkpoint)) if r.checkpoint is not None else None
            ray.train.report(epoch_metrics(r), checkpoint=ckpt)

        try:
            fit(cfg, report, run_dir=Path(tmp) / "run", resume_from=resume, device=ray.train.torch.get_device())
        except NonFiniteLossError as e:
            # Retrying from a checkpoint would diverge again: leave the reason where the driver looks (the shared
            # storage of this Train run), report it once, and end cleanly so Ray Train does not retry.
            if ray.train.get_context().get_world_rank() == 0:
                Path(loop_config["failure_file"]).parent.mkdir(parents=True, exist_ok=True)
                Path(loop_config["failure_file"]).write_text(str(e))
            ray.train.report({NONFINITE_KEY: str(e)})
