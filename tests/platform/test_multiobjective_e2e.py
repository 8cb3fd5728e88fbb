"""A two-objective sweep end to end (slow): ``python -m platform.tune ... --smoke`` with a list of metrics, then the
report. The persisted study must have two objectives, and the front that ``summary.md``, the MLflow parent run and
the report show must be the study's own ``best_trials``.

    python -m pytest -m slow tests/platform/test_multiobjective_e2e.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from platform.mlflow_schema import PARETO_ARTIFACT, TAG_PARETO_FRONT
from tests.platform.procs import SMOKE, run_cli, sets

pytestmark = pytest.mark.slow
METRICS = ["test/acc_medium", "test/acc_few"]  # ablations/smoke.yaml's synthetic data has no Many group
TWO_OBJECTIVES = sets(
    f"tune.metric=[{', '.join(METRICS)}]",
    "tune.mode=[max, max]",
    "tune.scheduler=fifo",
    "tune.study_storage=true",
    "tune.sampler=nsga2",
    "tune.num_samples=3",
)


def test_a_two_objective_sweep_shows_the_studys_front_everywhere(tmp_path: Path) -> None:
    out = tmp_path / "exp"
    proc = run_cli("platform.tune", *SMOKE, "--out", str(out), *TWO_OBJECTIVES)
    assert proc.returncode == 0, proc.stderr[-3000:]

    study = optuna.load_study(study_name="smoke", storage=f"sqlite:///{out / 'optuna.db'}")
    assert len(study.directions) == 2
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 3 and all(len(t.values) == 2 for t in complete)
    front = {t.user_attrs["tune_trial_id"]: tuple(t.values) for t in study.best_trials}
    assert front

    summary = (out / "summary.md").read_text()
    section = summary.split("## Pareto front", 1)[1].split("## Trials", 1)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| ") and not ln.startswith("| trial")]
    assert {r.split("|")[1].strip() for r in rows} == set(front)
    assert set(re.findall(r"\| (\w+) \*\*\(front\)\*\*", summary)) == set(front)
    assert "## Best trial" not in summary

    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("smoke")
    assert exp is not None
    (parent,) = [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("elm.role") == "parent"]
    assert set(parent.data.tags[TAG_PARETO_FRONT].split(",")) == set(front)
    saved = json.loads(Path(client.download_artifacts(parent.info.run_id, PARETO_ARTIFACT, str(tmp_path))).read_text())
    assert saved["metrics"] == METRICS
    assert {t["trial_id"]: tuple(t["values"][m] for m in METRICS) for t in saved["trials"]} == front

    report = run_cli("platform.report", str(out))
    assert report.returncode == 0, report.stderr[-3000:]
    md = (out / "report" / "report.md").read_text()
    assert "Pareto front (Optuna study)" in md and (out / "report" / "plots" / "optuna_pareto_front.png").is_file()
    for trial_id in front:
        assert trial_id in md.split("Pareto front (Optuna study)", 1)[1]
