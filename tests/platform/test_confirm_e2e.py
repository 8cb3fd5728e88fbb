"""platform.confirm through the real platform.tune path.

Slow: ``python -m pytest -m slow tests/platform/test_confirm_e2e.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from platform.runtime import REPO_ROOT

pytestmark = pytest.mark.slow


def _cli(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )


def test_a_sweeps_winner_reruns_over_seeds_and_its_own_seed_reproduces_its_value(tmp_path: Path) -> None:
    sweep, out = tmp_path / "sweep", tmp_path / "confirm"
    proc = _cli(
        "platform.tune",
        "ablations/smoke.yaml",
        "--smoke",
        "--out",
        str(sweep),
        "--set",
        "tune.scheduler=fifo",
        "--set",
        "train.deterministic=true",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = _cli("platform.confirm", str(sweep), "--seeds", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = pd.read_csv(out / "trials.csv")
    assert sorted(trials["config/seed"]) == [0, 1] and set(trials["status"]) == {"finished"}
    table = pd.read_csv(out / "confirm.csv").set_index("metric")
    row = table.loc["test/balanced_acc"]
    assert row["n"] == 2
    assert float(str(row["per_seed"]).split(", ")[0]) == pytest.approx(row["sweep_single_seed"], abs=1e-4)
    assert "| test/balanced_acc |" in (out / "confirm.md").read_text()
