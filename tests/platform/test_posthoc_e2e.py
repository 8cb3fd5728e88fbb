"""Stored logits through the real platform.tune path, both launchers, then platform.posthoc and the report
(slow: ``python -m pytest -m slow tests/platform/test_posthoc_e2e.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from tests.platform.procs import SMOKE, run_cli

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("launcher", ["in_trial", "ray_train"])
def test_finished_trials_log_their_logits_and_posthoc_reads_them(tmp_path: Path, launcher: str) -> None:
    out = tmp_path / "exp"
    proc = run_cli(
        "platform.tune",
        *SMOKE,
        "--out",
        str(out),
        "--set",
        f"resources.launcher={launcher}",
        "--set",
        "tune.scheduler=fifo",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("smoke")
    assert exp is not None
    kids = [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("elm.role") == "trial"]
    assert len(kids) == 2
    for run in kids:
        assert "stored_logits.npz" in {a.path for a in client.list_artifacts(run.info.run_id)}
        local = client.download_artifacts(run.info.run_id, "stored_logits.npz", str(tmp_path / run.info.run_id))
        with np.load(local) as z:
            assert z["test_logits"].dtype == np.float16 and z["test_logits"].shape[1] == 5
        assert {"test/ece_medium", "test/posthoc_tau1/ece_medium"} <= set(run.data.metrics)  # no class > 100
    proc = run_cli("platform.posthoc", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = (out / "posthoc" / "posthoc.md").read_text()
    assert "2 trials with stored logits" in text and "test (oracle)" in text  # smoke.yaml has no validation split
    proc = run_cli("platform.report", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = (out / "report" / "report.md").read_text()
    assert "posthoc.md" in report and "plots/reliability_trial_" in report
