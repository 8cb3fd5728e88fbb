"""The report's Optuna section: Optuna's own plots of a persisted study, and the dashboard command."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from platform.report import to_markdown
from platform.report.document import Image
from platform.report.optuna_section import dashboard_command, load_study, optuna_blocks


def _study(db: Path, name: str, n: int = 6) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=name, storage=f"sqlite:///{db}", direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0)
    )
    study.optimize(
        lambda t: t.suggest_float("loss.tau", 0, 2) - t.suggest_float("optim.weight_decay", 1e-4, 1e-2, log=True),
        n_trials=n,
    )


def test_study_plots_and_dashboard_command(tmp_path: Path) -> None:
    _study(tmp_path / "optuna.db", "sweep")
    blocks = optuna_blocks(tmp_path, tmp_path / "report", "sweep")
    images = [b.path for b in blocks if isinstance(b, Image)]
    assert images == [
        "plots/optuna_history.png",
        "plots/optuna_parallel_coordinate.png",
        "plots/optuna_param_importances.png",
    ]
    assert all((tmp_path / "report" / p).stat().st_size > 0 for p in images)
    text = to_markdown(blocks)
    assert f"optuna-dashboard sqlite:///{(tmp_path / 'optuna.db').resolve()}" in text
    assert dashboard_command(tmp_path / "optuna.db").startswith("optuna-dashboard sqlite:////")


def test_no_study_no_section_and_a_foreign_name_is_refused_among_several(tmp_path: Path) -> None:
    assert optuna_blocks(tmp_path, tmp_path / "r", "sweep") == []
    assert optuna_blocks(None, tmp_path / "r", "sweep") == []
    _study(tmp_path / "optuna.db", "a", n=1)
    assert load_study(tmp_path / "optuna.db", "other").study_name == "a"  # the only study
    _study(tmp_path / "optuna.db", "b", n=1)
    with pytest.raises(FileNotFoundError, match="no study 'other'"):
        load_study(tmp_path / "optuna.db", "other")


def test_one_trial_draws_what_it_can_and_says_why_not_the_rest(tmp_path: Path) -> None:
    _study(tmp_path / "optuna.db", "sweep", n=1)
    text = to_markdown(optuna_blocks(tmp_path, tmp_path / "report", "sweep"))
    assert "plots/optuna_history.png" in text
    assert "not drawn" in text  # parameter importances need at least two complete trials
