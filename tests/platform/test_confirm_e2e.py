"""platform.confirm through the real platform.tune path.

Slow: ``python -m pytest -m slow tests/platform/test_confirm_e2e.py``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.platform.procs import SMOKE, run_cli

pytestmark = pytest.mark.slow


def test_a_sweeps_winner_reruns_over_seeds_and_its_own_seed_reproduces_its_value(tmp_path: Path) -> None:
    sweep, out = tmp_path / "sweep", tmp_path / "confirm"
    proc = run_cli(
        "platform.tune",
        *SMOKE,
        "--out",
        str(sweep),
        "--set",
        "tune.scheduler=fifo",
        "--set",
        "train.deterministic=true",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_cli("platform.confirm", str(sweep), "--seeds", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = pd.read_csv(out / "trials.csv")
    assert sorted(trials["config/seed"]) == [0, 1] and set(trials["status"]) == {"finished"}
    table = pd.read_csv(out / "confirm.csv").set_index("metric")
    row = table.loc["test/balanced_acc"]
    assert row["n"] == 2
    assert float(str(row["per_seed"]).split(", ")[0]) == pytest.approx(row["sweep_single_seed"], abs=1e-4)
    assert "| test/balanced_acc |" in (out / "confirm.md").read_text()
