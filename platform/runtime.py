"""Where Ray processes find this repo: one commented place for the `platform` name clash (STYLE.md section 8).

Ray worker processes start a fresh interpreter whose ``sys.path`` does not begin with the repo root, so they would
import the standard-library ``platform`` and then fail with "'platform' is not a package" on ``platform.trainables``.
The job-level runtime environment therefore puts the repo root first on PYTHONPATH (local and shared-filesystem
clusters), or ships the checkout as ``working_dir`` and puts that first (remote clusters).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
# Never shipped to a remote cluster: environments, outputs and VCS data.
SHIP_EXCLUDES = [".venv", ".git", "runs", "experiments", "mlruns", "docs/results", "**/__pycache__"]


def runtime_env(ship_code: bool = False) -> dict[str, Any]:
    """The job-level Ray runtime environment.

    Args:
        ship_code: upload the checkout as ``working_dir`` (for ``--address`` clusters whose nodes lack it).
    """
    existing = os.environ.get("PYTHONPATH", "")
    if ship_code:
        # Ray starts workers inside the unpacked working_dir; "." resolves there.
        return {"working_dir": str(REPO_ROOT), "excludes": SHIP_EXCLUDES, "env_vars": {"PYTHONPATH": "."}}
    path = os.pathsep.join(p for p in (str(REPO_ROOT), existing) if p)
    return {"env_vars": {"PYTHONPATH": path}}
