"""platform.confirm: the best trial of a sweep as a one-variant ablation over seeds, and its comparison table."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from elm.config import ConfigError
from platform.confirm import VARIANT, comparison, confirm_config, markdown
from platform.sweep_best import best_trial
from tests.conftest import tiny_raw


def _sweep(tmp_path: Path) -> Path:
    d = tmp_path / "sweep"
    d.mkdir()
    raw = tiny_raw(
        search={"loss.tau": {"uniform": [0.0, 2.0]}},
        tune={
            "searcher": "optuna",
            "metric": "val/balanced_acc",
            "mode": "max",
            "num_samples": 3,
            "scheduler": "asha",
            "study_storage": True,
        },
    )
    raw["seed"] = 5
    raw["data"]["val_per_class"] = 8
    raw["train"]["eval_split"] = "val"
    (d / "config.yaml").write_text(yaml.safe_dump(raw))
    epochs = raw["optim"]["epochs"]
    pd.DataFrame(
        [
            {
                "trial_id": "a",
                "status": "finished",
                "epochs": epochs,
                "val/balanced_acc": 0.50,
                "test/balanced_acc": 0.48,
                "config/loss.tau": 0.7,
            },
            {
                "trial_id": "b",
                "status": "finished",
                "epochs": epochs,
                "val/balanced_acc": 0.60,
                "test/balanced_acc": 0.55,
                "config/loss.tau": 1.3,
            },
            {
                "trial_id": "c",
                "status": "stopped early",
                "epochs": 1,
                "val/balanced_acc": 0.90,
                "test/balanced_acc": math.nan,
                "config/loss.tau": 0.1,
            },
        ]
    ).to_csv(d / "trials.csv", index=False)
    return d


def test_confirm_config_is_a_one_variant_grid_over_seeds_from_the_sweeps_seed(tmp_path: Path) -> None:
    d = _sweep(tmp_path)
    raw = confirm_config(d, 3)
    assert "search" not in raw
    assert raw["name"].endswith("_confirm")
    assert raw["ablation"] == {"seeds": [5, 6, 7], "variants": {VARIANT: {"from_sweep": str(d.resolve())}}}
    assert raw["tune"] == {"metric": "val/balanced_acc", "mode": "max", "searcher": "grid", "scheduler": "fifo"}
    with pytest.raises(ConfigError, match="at least 2 seeds"):
        confirm_config(d, 1)
    with pytest.raises(ConfigError, match="no config.yaml"):
        confirm_config(tmp_path, 3)


def test_comparison_puts_the_mean_over_seeds_beside_the_single_seed_value(tmp_path: Path) -> None:
    best = best_trial(_sweep(tmp_path))
    assert best.trial_id == "b"  # the early-stopped 0.90 never competes
    confirm = pd.DataFrame(
        {
            "trial_id": ["x", "y", "z", "w"],
            "status": ["finished"] * 3 + ["failed"],
            "val/balanced_acc": [0.50, 0.54, 0.58, 0.99],
            "test/balanced_acc": [0.50, 0.51, 0.52, 0.0],
        }
    )
    table = comparison(best, confirm).set_index("metric")
    val = table.loc["val/balanced_acc"]
    assert (val["sweep_single_seed"], val["n"]) == (0.60, 3)
    assert val["mean"] == pytest.approx(0.54) and val["std"] == pytest.approx(0.04)
    assert val["gap_in_stds"] == pytest.approx(-1.5)
    assert table.loc["test/balanced_acc", "mean"] == pytest.approx(0.51)
    text = markdown(best, table.reset_index(), "python -m platform.confirm sweep --seeds 3", [5, 6, 7])
    assert "| val/balanced_acc | 60.00 | 54.00 ± 4.00 | 3 | -1.5 | 50.00, 54.00, 58.00 |" in text


def test_the_confirmation_config_plans_with_the_winners_values(tmp_path: Path) -> None:
    from platform.plan import make_plan

    d = _sweep(tmp_path)
    path = tmp_path / "confirm.yaml"
    path.write_text(yaml.safe_dump(confirm_config(d, 2)))
    plan = make_plan(str(path), {}, out=str(tmp_path / "out"), check_data=False)
    assert plan.spec.ablation is not None and tuple(plan.spec.ablation.seeds) == (5, 6)
    assert plan.variants[VARIANT]["loss.tau"] == 1.3
    assert plan.variant_sources[VARIANT]["trial_id"] == "b"


def test_the_report_section_shows_the_confirmation_table(tmp_path: Path) -> None:
    from platform.confirm import CONFIRM_CSV, confirm_blocks
    from platform.report import to_markdown

    assert confirm_blocks(tmp_path) == [] and confirm_blocks(None) == []
    pd.DataFrame(
        [
            {
                "metric": "val/balanced_acc",
                "sweep_single_seed": 0.6,
                "mean": 0.54,
                "std": 0.04,
                "n": 3,
                "per_seed": "0.5, 0.54, 0.58",
                "gap_in_stds": -1.5,
            }
        ]
    ).to_csv(tmp_path / CONFIRM_CSV, index=False)
    assert "| val/balanced_acc | 60.00 | 54.00 ± 4.00 | 3 | -1.5 |" in to_markdown(confirm_blocks(tmp_path))


def test_an_interrupted_confirmation_resumes_through_platform_confirm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A killed confirmation (hours of full-length runs) continues with --resume and still writes confirm.md; without
    it, the second call is refused with one line (Tune's 'already holds a sweep' is checked in build_tuner)."""
    import platform.tune as tune_module
    from platform.confirm import main
    from platform.plan import record_start

    d, out = _sweep(tmp_path), tmp_path / "confirm"
    calls: list[bool] = []

    def fake_run(plan, *, resume=False, address=None, config_path="CONFIG"):  # type: ignore[no-untyped-def]
        calls.append(resume)
        if not resume:
            plan.out.mkdir(parents=True, exist_ok=True)
            record_start(plan)
            raise KeyboardInterrupt  # the driver dies mid-sweep
        pd.DataFrame(
            {
                "trial_id": ["x", "y"],
                "status": ["finished"] * 2,
                "val/balanced_acc": [0.5, 0.7],
                "test/balanced_acc": [0.4, 0.6],
            }
        ).to_csv(plan.layout.trials_csv, index=False)
        return []

    monkeypatch.setattr(tune_module, "run", fake_run)
    with pytest.raises(KeyboardInterrupt):
        main([str(d), "--seeds", "2", "--out", str(out)])
    assert main([str(d), "--seeds", "2", "--out", str(out), "--resume"]) == 0
    assert calls == [False, True]
    assert "| val/balanced_acc | 60.00 | 60.00 ± 14.14 | 2 |" in (out / "confirm.md").read_text()
