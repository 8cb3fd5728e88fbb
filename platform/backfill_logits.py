"""Stored logits for trials that finished before trials stored them: evaluate each trial's final checkpoint again.

    python -m platform.backfill_logits EXPERIMENT_DIR

For every trial folder ``<dir>/train/<name>-trial=<id>/`` whose newest checkpoint is its last epoch and holds no
``stored_logits.npz``, this rebuilds the model from the checkpoint's own config, evaluates the validation and test
splits with ``elm.train.evaluate`` (the same code and batches as the trial's final evaluation) and writes the file
into that checkpoint, where ``fit`` would have put it. ``platform.posthoc`` reads it there when the trial's MLflow
run has no such artifact. Nothing is retrained and the MLflow store is not written. Cost: one evaluation per trial
(CIFAR-10: ~12,000 images through ResNet-32; about half a minute per trial on one busy CPU core).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from elm.checkpoint import latest_checkpoint, load_checkpoint
from elm.config import from_dict
from elm.metrics.stored_logits import STORED_LOGITS_FILE, save_stored_logits
from platform.layout import ExperimentDir

TRIAL_GLOB = "*-trial=*"  # platform.trainables.common.trial_run_name


def final_checkpoint_of(run_dir: Path) -> Path | None:
    """The trial's newest checkpoint if it is its last epoch, else None (a trial stopped early, or none)."""
    ckpt = latest_checkpoint(run_dir / "checkpoints")
    if ckpt is None:
        return None
    state = load_checkpoint(ckpt)
    return ckpt if int(state["epoch"]) >= int(state["config"]["optim"]["epochs"]) else None


def backfill_checkpoint(ckpt: Path, device: torch.device | None = None) -> Path:
    """Evaluate the model in ``ckpt`` on its config's val and test splits and write ``ckpt/stored_logits.npz``."""
    from elm.train import build_experiment, evaluate

    state = load_checkpoint(ckpt)
    cfg = from_dict(state["config"])
    exp = build_experiment(cfg)
    device = device or torch.device("cpu")
    model = exp.model.to(device)
    model.load_state_dict(state["model"])
    kept: dict[str, tuple[Tensor, Tensor]] = {}
    for split in ("val", "test"):
        if getattr(exp.data, split) is not None:
            evaluate(model, cfg, exp.data, split, device, keep_logits=kept)
    return save_stored_logits(ckpt / STORED_LOGITS_FILE, kept, exp.data.class_counts)


def stored_logits_in_run_folder(experiment_dir: Path, run_name: str) -> Path | None:
    """``stored_logits.npz`` in the final checkpoint of trial folder ``run_name``, if there is one."""
    run_dir = ExperimentDir(experiment_dir).train / run_name
    ckpt = latest_checkpoint(run_dir / "checkpoints")
    path = ckpt / STORED_LOGITS_FILE if ckpt is not None else None
    return path if path is not None and path.is_file() else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m platform.backfill_logits", description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment_dir", help="folder written by platform.tune")
    args = parser.parse_args(argv)
    train = ExperimentDir(Path(args.experiment_dir).resolve()).train
    if not train.is_dir():
        print(f"error: {train} does not exist: not an experiment folder written by platform.tune", file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, torch.get_num_threads()))
    written = 0
    for run_dir in sorted(train.glob(TRIAL_GLOB)):
        ckpt = final_checkpoint_of(run_dir)
        if ckpt is None or (ckpt / STORED_LOGITS_FILE).is_file():
            print(f"{run_dir.name}: skipped ({'has stored logits' if ckpt is not None else 'no final checkpoint'})")
            continue
        t0 = time.perf_counter()
        path = backfill_checkpoint(ckpt)
        written += 1
        print(f"{run_dir.name}: wrote {path} in {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"{written} trial(s) backfilled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
