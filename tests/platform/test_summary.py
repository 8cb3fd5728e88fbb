"""The end-of-sweep summary: every trial with its status, epochs and reason; the best trial by the one rule."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from platform.failures import FAILURE_KEY
from platform.report.summary import write_summary
from platform.report.trials import records_from_results
from platform.tune import make_plan
from tests.conftest import tiny_raw

METRIC = "test/balanced_acc"


@dataclass
class FakeResult:  # the parts of a Tune Result the summary reads
    metrics: dict
    error: BaseException | None = None
    metrics_dataframe: pd.DataFrame | None = None


@dataclass
class FakeTrial:
    trial_id: str
    status: str


@dataclass
class FakeAnalysis:
    trials: list


class FakeGrid(list):
    def __init__(self, results: list, statuses: dict[str, str]) -> None:
        super().__init__(results)
        self._experiment_analysis = FakeAnalysis([FakeTrial(k, v) for k, v in statuses.items()])


def result(tid: str, epochs: int, value: float | None, tau: float, **extra: object) -> FakeResult:
    history = pd.DataFrame(
        {
            "epoch": [float(e) for e in range(1, epochs + 1)],
            METRIC: [value if e == epochs else math.nan for e in range(1, epochs + 1)],
        }
    )
    last = {
        "trial_id": tid,
        "epoch": float(epochs),
        "config": {"loss.tau": tau, "loss.margin": 0.1, "loss.lam": 0.1},
        **extra,
    }
    if value is not None:
        last[METRIC] = value
    return FakeResult(last, metrics_dataframe=history)


def test_summary_lists_every_trial_with_status_and_picks_the_best_full_length_trial(tmp_path: Path) -> None:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(
        yaml.safe_dump(
            tiny_raw(optim={"epochs": 4, "warmup_epochs": 0, "milestones": []}, search={"spaces": ["elm_joint"]})
        )
    )
    plan = make_plan(str(cfg), {}, out=str(tmp_path / "out"))
    plan.out.mkdir(parents=True)
    failed = result("t3", 2, None, 0.3)
    failed.metrics = {
        "trial_id": "t3",
        FAILURE_KEY: "NonFiniteLossError: training loss is nan at epoch 3",
        "config": failed.metrics["config"],
    }
    failed.error = RuntimeError("Traceback...\nTrialFailedError: NonFiniteLossError: training loss is nan")
    grid = FakeGrid(
        [
            result("t1", 4, 0.61, 1.23456789),
            result("t2", 2, 0.90, 2.0),
            failed,
            result("t4", 4, 0.70, 0.5),
            result("t5", 1, None, 0.7),
        ],
        {"t1": "TERMINATED", "t2": "TERMINATED", "t3": "ERROR", "t4": "TERMINATED", "t5": "RUNNING"},
    )
    df, text = write_summary(
        records_from_results(grid, METRIC), plan, config_path="exp.yaml", tracking_uri="sqlite:///x.db"
    )
    assert df.set_index("trial_id")["status"].to_dict() == {
        "t1": "finished",
        "t2": "stopped early",
        "t3": "failed",
        "t4": "finished",
        "t5": "interrupted",
    }
    assert df.set_index("trial_id")["epochs"].to_dict() == {"t1": 4, "t2": 2, "t3": 2, "t4": 4, "t5": 1}
    assert "Trial `t4`: test/balanced_acc = 0.7000 at epoch 4" in text  # t2 is higher but stopped at epoch 2
    assert "| t4 **(best)** | finished | 4 | 0.5 |" in text
    assert "| t1 | finished | 4 | 1.235 |" in text  # searched values at 4 significant digits
    assert "NonFiniteLossError: training loss is nan at epoch 3" in text
    assert "--resume --out" in text  # t5 was interrupted
    csv = pd.read_csv(plan.layout.trials_csv)
    assert list(csv.columns[:8]) == [
        "trial_id",
        "status",
        "epochs",
        "reason",
        "config/loss.tau",
        "config/loss.margin",
        "config/loss.lam",
        METRIC,
    ]
    assert (plan.out / "summary.md").read_text() == text


def test_no_best_trial_is_said_plainly(tmp_path: Path) -> None:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump(tiny_raw(search={"spaces": ["elm_joint"]})))
    plan = make_plan(str(cfg), {}, out=str(tmp_path / "out"))
    plan.out.mkdir(parents=True)
    grid = FakeGrid([result("t1", 1, 0.5, 1.0)], {"t1": "TERMINATED"})
    _, text = write_summary(records_from_results(grid, METRIC), plan, config_path="c", tracking_uri="sqlite:///x")
    assert "None: no trial reached the last epoch (2)." in text and "--resume" not in text
