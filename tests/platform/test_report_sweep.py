"""The report of a search sweep from Ray's trials.csv alone (no MLflow store): the ranked trials, the best trial as
platform.best picks it, the head-vs-tail Pareto front and the papers' epochs note."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from platform import report as rep
from platform.best import best_index
from tests.platform.report_fixtures import SMOKE_SWEEP_CONFIG, SEARCH_TRIALS, sweep_folder


def test_report_from_trials_csv_of_a_sweep(tmp_path: Path) -> None:
    """No MLflow store: Ray's trials.csv; a search sweep gets its best trials and head-vs-tail Pareto front."""
    exp = sweep_folder(tmp_path, SEARCH_TRIALS)
    assert rep.main([str(exp)]) == 0
    md = (exp / "report" / "report.md").read_text()
    assert "search sweep; 3 finished trials" in md and "final evaluated epochs [40, 200]" in md
    best = md.index("| b (best) | 200 | yes | 75.00 |")  # the metric in % like the other accuracies
    assert best < md.index("| a | 200 | yes | 70.00 |") < md.index("| c | 40 | no | 60.00 |")  # ranked by the metric
    front = md[md.index("Pareto front") :]
    assert "| a | 90.00 | 40.00 |" in front and "| b | 80.00 | 60.00 |" in front and "| c |" not in front
    assert "LA loss" not in md and "la 77.67" in md  # the paper's CIFAR-10-LT figures, no verdict for a sweep
    assert (exp / "report" / "plots" / "head_vs_tail_pareto.png").is_file()
    assert (exp / "report" / "report.html").is_file()


def test_sweep_without_a_few_group_puts_medium_on_the_tail_axis_and_drops_stopped_trials(tmp_path: Path) -> None:
    exp = sweep_folder(
        tmp_path,
        {
            "trial_id": ["a", "b", "c"],
            "epoch": [10, 10, 1],
            "val/balanced_acc": [0.30, 0.32, 0.20],
            "val/acc_many": [0.5, 0.4, 0.9],
            "val/acc_medium": [0.1, 0.2, 0.9],
            "config/loss.tau": [0.5, 1.5, 1.0],
        },
    )
    assert rep.main([str(exp), "--split", "val"]) == 0
    md = (exp / "report" / "report.md").read_text()
    front = md[md.index("Pareto front") :]
    assert "tail = the Medium group" in front and "| trial | Many (%) | Medium (%) |" in front
    assert "| a | 50.00 | 10.00 |" in front and "| b | 40.00 | 20.00 |" in front
    assert "| c |" not in front  # stopped after 1 of 10 epochs: would dominate both, but is not comparable


def test_sweep_report_labels_a_smoke_run_and_not_a_full_one(tmp_path: Path) -> None:
    for epochs, comparable in ((11, False), (200, True)):
        exp = sweep_folder(
            tmp_path / str(epochs),
            {
                "trial_id": ["a", "b"],
                "epoch": [epochs, epochs],
                "test/balanced_acc": [0.3, 0.35],
                "config/loss.tau": [0.5, 1.5],
            },
        )
        (exp / "config.yaml").write_text(SMOKE_SWEEP_CONFIG % epochs)
        assert rep.main([str(exp)]) == 0
        md = (exp / "report" / "report.md").read_text()
        assert "la 77.67" in md and f"paper: 200 epochs; these runs: {epochs} epochs" in md
        assert ("not comparable" in md) is not comparable


def test_sweep_best_trial_is_platform_best_not_the_highest_value(tmp_path: Path) -> None:
    """Trial c has the highest value, but ASHA stopped it at epoch 40 of 200: best_index picks b."""
    trials = {
        "trial_id": ["a", "b", "c"],
        "run_id": ["ra", "rb", "rc"],
        "epoch": [200, 200, 40],
        "test/balanced_acc": [0.70, 0.75, 0.90],
        "test/acc_many": [0.9, 0.8, 0.95],
        "test/acc_few": [0.4, 0.6, 0.85],
        "config/loss.tau": [0.5, 1.5, 1.0],
    }
    exp = sweep_folder(tmp_path, trials)
    (exp / "config.yaml").write_text(SMOKE_SWEEP_CONFIG % 200)
    assert rep.main([str(exp)]) == 0
    md = (exp / "report" / "report.md").read_text()
    expected = pd.DataFrame(trials).loc[best_index(pd.DataFrame(trials), "test/balanced_acc", "max", 200)]
    assert expected["trial_id"] == "b"
    assert "Best trial: `b`, test/balanced_acc = 75.00 % at epoch 200" in md
    assert (
        md.index("| b (best) | 200 | yes | 75.00 |")
        < md.index("| a | 200 | yes | 70.00 |")
        < md.index("| c | 40 | no | 90.00 |")
    )
    assert "| c (best)" not in md and "| c |" not in md[md.index("Pareto front") :]


def test_sweep_best_trial_follows_the_mode_and_the_config_epochs(tmp_path: Path) -> None:
    trials = {"trial_id": ["a", "b", "c"], "epoch": [10, 10, 10], "test/ece": [0.2, 0.1, 0.05]}
    exp = sweep_folder(tmp_path / "min", trials)
    (exp / "config.yaml").write_text(SMOKE_SWEEP_CONFIG % 10 + "tune: {metric: test/ece, mode: min}\n")
    assert rep.main([str(exp)]) == 0
    md = (exp / "report" / "report.md").read_text()
    assert "Best trial: `c`, test/ece = 0.0500 at epoch 10" in md and "| c (best) | 10 | yes | 0.0500 |" in md
    # the config says 20 epochs and no trial got there: no best trial, and the report says why
    exp = sweep_folder(tmp_path / "short", {**trials, "test/balanced_acc": [0.3, 0.4, 0.5]})
    (exp / "config.yaml").write_text(SMOKE_SWEEP_CONFIG % 20)
    assert rep.main([str(exp)]) == 0
    md = (exp / "report" / "report.md").read_text()
    assert "No best trial: no trial reached the last epoch (20)." in md and "(best)" not in md
    assert "| c | 10 | no | 50.00 |" in md
