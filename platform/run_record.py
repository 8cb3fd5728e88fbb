"""What a trial's MLflow run records besides its metrics: flattened params, the finite ``split/name`` metrics of a
Tune result, the checkout's git commit, and the library versions.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any, Mapping

from platform.runtime import REPO_ROOT


def git_info(root: Path = REPO_ROOT) -> dict[str, str]:
    """The checkout's commit and whether it has uncommitted changes ('unknown' outside git)."""

    def run(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    sha = run("rev-parse", "HEAD") or "unknown"
    dirty = "true" if run("status", "--porcelain", "--untracked-files=no") else "false"
    return {"git.commit": sha, "git.dirty": dirty}


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"loss": {"tau": 1}} -> {"loss.tau": 1}``."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def numeric_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """The finite numeric entries of a Tune result whose keys are ``split/name`` metrics."""
    out = {}
    for k, v in result.items():
        if "/" in k and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out[k] = float(v)
    return out


def versions() -> dict[str, str]:
    """torch, ray and mlflow versions, as run tags."""
    import mlflow
    import ray
    import torch

    return {"torch.version": torch.__version__, "ray.version": ray.__version__, "mlflow.version": mlflow.__version__}


def yaml_dump(d: Mapping[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(dict(d), sort_keys=False)
