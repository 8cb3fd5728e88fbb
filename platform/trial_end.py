"""What a Tune trial leaves when it ends, read on the driver (``platform.tracking`` records it in MLflow): its
outcome, the reason it failed, its final checkpoint, and the stored logits in that checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient
from ray import tune

from elm.metrics.stored_logits import STORED_LOGITS_FILE

TRAIN_CHECKPOINT_KEY = "checkpoint_path"  # ray.tune.integration.ray_train.CHECKPOINT_PATH_KEY


def final_checkpoint(trial: Any) -> Any:
    """The trial's latest checkpoint: Tune's own (in-trial launcher), else the Ray Train checkpoint whose path
    ``TuneReportCallback`` put in the last result (a TorchTrainer's checkpoints never reach Tune's); or None."""
    ckpt = getattr(trial, "checkpoint", None)
    path = (getattr(trial, "last_result", None) or {}).get(TRAIN_CHECKPOINT_KEY)
    # The path is on the sweep's storage (platform.storage), which Tune's state shares: read it with Tune's file
    # system (an s3:// store's path has no scheme and would be taken for a local one).
    fs = getattr(getattr(trial, "storage", None), "storage_filesystem", None)
    return ckpt if ckpt is not None or not path else tune.Checkpoint(path, filesystem=fs)


def log_stored_logits(client: MlflowClient, run_id: str, checkpoint: Any) -> bool:
    """Log the final val/test logits a trial stored in its last checkpoint (``elm.metrics.stored_logits``) as the
    run's artifact ``stored_logits.npz``; False when that checkpoint has none (a trial stopped before its last
    epoch). ``checkpoint``: the trial's latest ``ray.tune.Checkpoint`` (local or remote storage) or None."""
    if checkpoint is None:
        return False
    with checkpoint.as_directory() as folder:
        path = Path(folder) / STORED_LOGITS_FILE
        if not path.is_file():
            return False
        client.log_artifact(run_id, str(path))
    return True


def trial_outcome(trial: Any, epochs: int | None) -> str:
    """``finished`` (reached the last epoch), ``stopped_early`` (ended before it without error) or ``failed``."""
    if getattr(trial, "status", "") == "ERROR":
        return "failed"
    last = getattr(trial, "last_result", None) or {}
    reached = last.get("epoch")
    if epochs is not None and reached is not None and float(reached) < epochs:
        return "stopped_early"
    return "finished"


def trial_error_message(trial: Any) -> str:
    """A failed trial's reason on one line: what ``platform.failures`` recorded, else the error's last line."""
    path = getattr(trial, "error_file", None) or ""
    try:
        text = Path(path).read_text() if path else ""
    except OSError:
        text = ""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    marker = "TrialFailedError: "
    for line in reversed(lines):
        if marker in line:
            return line.split(marker, 1)[1]
    return lines[-1] if lines else "trial failed (no error file)"
