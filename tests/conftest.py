"""Shared fixtures: a tiny experiment config that trains in well under a second."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def tiny_raw(**overrides: Any) -> dict[str, Any]:
    """A raw config for synthetic 5-class long-tailed blobs and a tiny MLP."""
    raw: dict[str, Any] = {
        "name": "tiny",
        "seed": 0,
        "data": {"name": "synthetic_lt", "num_classes": 5, "image_size": 8, "n_max": 64, "imbalance_ratio": 10},
        "model": {"name": "tiny_mlp", "projection_dim": 8},
        "loss": {"name": "elm", "tau": 1.0, "lam": 0.1, "margin": 0.1},
        "optim": {"lr": 0.05, "epochs": 2, "batch_size": 32, "warmup_epochs": 0, "milestones": []},
        "train": {"eval_every": 1, "bf16": False, "channels_last": False, "eval_batch_size": 128},
    }
    raw.update(overrides)
    return raw


@pytest.fixture
def tiny_config_raw() -> dict[str, Any]:
    return tiny_raw()


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One torch thread for the test: beside other jobs on 2 cores, two OpenMP threads slow small steps ~100x
    (benchmarks/README.md, Findings), and one thread makes float reductions reproducible."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
