"""Checkpoints a run resumes from exactly: model, optimiser, epoch, global RNG states, and the config."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch

STATE_FILE = "state.pt"


def checkpoint_name(epoch: int) -> str:
    return f"epoch_{epoch:04d}"


def save_checkpoint(folder: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``folder/state.pt`` atomically (write to a temp file, then rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (STATE_FILE + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, folder / STATE_FILE)
    return folder


def load_checkpoint(folder: str | Path) -> dict[str, Any]:
    """Read a checkpoint folder written by ``save_checkpoint``."""
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location="cpu", weights_only=False)


def latest_checkpoint(root: Path) -> Path | None:
    """The newest complete ``epoch_*`` checkpoint folder under ``root``, or None."""
    if not root.is_dir():
        return None
    done = sorted(p for p in root.glob("epoch_*") if (p / STATE_FILE).is_file())
    return done[-1] if done else None


def prune_checkpoints(root: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoint folders."""
    done = sorted(p for p in root.glob("epoch_*") if (p / STATE_FILE).is_file())
    for old in done[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
