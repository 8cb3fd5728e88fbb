"""Ablation variants that take their hyperparameters from the best trial of a finished sweep (``from_sweep``)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from elm.config import ConfigError
from platform.sweep_best import SelectedOnTestWarning, best_trial, resolve_variant
from platform.tune import make_plan
from tests.conftest import tiny_raw

# Four trials as Ray's trials.csv writes them (last reported result; ``config/`` columns hold the sample).
TRIALS = [
    # trial_id, balanced_acc, loss.tau, loss.margin, loss.lam
    ("t0", 0.41, 0.5, 0.10, 0.05),
    ("t1", 0.47, 1.2, 0.30, 0.20),
    ("t2", math.nan, 3.0, 0.50, 0.90),  # diverged: never reported the metric
    ("t3", 0.44, 1.0, 0.20, 0.10),
]


def write_sweep(
    d: Path, *, metric: str = "val/balanced_acc", mode: str = "max", csv: bool = True, extra_rows: tuple[str, ...] = ()
) -> Path:
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"name": "s", "tune": {"metric": metric, "mode": mode}}))
    if csv:
        rows = [
            "trial_id,val/balanced_acc,test/balanced_acc,val/ece,training_iteration,config/loss.tau,"
            "config/loss.margin,config/loss.lam"
        ]
        ece = {"t0": 0.05, "t1": 0.09, "t2": 0.5, "t3": 0.02}
        for tid, acc, tau, m, lam in TRIALS:
            a = "" if math.isnan(acc) else acc
            rows.append(f"{tid},{a},{a},{ece[tid]},5,{tau},{m},{lam}")
        (d / "trials.csv").write_text("\n".join([*rows, *extra_rows]) + "\n")
    return d


def test_best_trial_is_the_max_of_the_sweeps_metric_skipping_missing_values(tmp_path: Path) -> None:
    best = best_trial(write_sweep(tmp_path / "s"))
    assert best.trial_id == "t1" and best.value == pytest.approx(0.47)
    assert best.params == {"loss.tau": 1.2, "loss.margin": 0.30, "loss.lam": 0.20}
    assert isinstance(best.params["loss.tau"], float)  # plain Python values, safe for YAML and with_overrides


def test_metric_and_mode_can_be_overridden(tmp_path: Path) -> None:
    assert best_trial(write_sweep(tmp_path / "s"), metric="val/ece", mode="min").trial_id == "t3"
    assert best_trial(write_sweep(tmp_path / "m", metric="val/ece", mode="min")).trial_id == "t3"
    with pytest.raises(ConfigError, match="give metric together with mode"):
        best_trial(tmp_path / "s", mode="min")


def test_trials_stopped_early_by_asha_do_not_compete_with_complete_ones(tmp_path: Path) -> None:
    # t9 has the highest value, but ASHA stopped it after 1 of 5 epochs.
    sweep = write_sweep(tmp_path / "s", extra_rows=("t9,0.60,0.60,0.1,1,0.1,0.4,0.5",))
    best = best_trial(sweep)
    assert (best.trial_id, best.epochs) == ("t1", 5)


def test_csv_cells_come_back_as_plain_values_and_ids_as_text(tmp_path: Path) -> None:
    d = tmp_path / "s"
    d.mkdir()
    (d / "trials.csv").write_text(
        'trial_id,val/balanced_acc,training_iteration,config/optim.milestones\n00123,0.5,3,"[6, 7]"\n'
    )
    best = best_trial(d, metric="val/balanced_acc")
    assert best.trial_id == "00123" and best.params == {"optim.milestones": [6, 7]}


def test_variant_keys_come_first_then_the_chosen_sweep_values(tmp_path: Path) -> None:
    sweep = str(write_sweep(tmp_path / "s"))
    over, src = resolve_variant(
        "la", {"loss": {"name": "logit_adjusted"}, "from_sweep": {"path": sweep, "keys": ["loss.tau"]}}
    )
    assert list(over) == ["loss", "loss.tau"] and over["loss.tau"] == 1.2
    assert src is not None and src["trial_id"] == "t1" and src["values"] == {"loss.tau": 1.2}
    assert src["sweep"] == str((tmp_path / "s").resolve()) and src["chosen_on_test_split"] is False
    plain, none = resolve_variant("ce", {"loss": {"name": "cross_entropy"}})
    assert plain == {"loss": {"name": "cross_entropy"}} and none is None


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("{tmp}/nowhere", "no sweep folder"),
        ("{tmp}/unfinished", "did not finish; run it again with --resume"),
        ({"path": "{tmp}/s", "keys": ["loss.temperature"]}, r"did not search \['loss.temperature'\]"),
        ({"path": "{tmp}/s", "metric": "test/acc_few"}, "no column 'test/acc_few'"),
        ({"path": "{tmp}/s", "keys": []}, "no keys to take"),
        ({"path": "{tmp}/s", "metric": "val/ece", "mode": "best"}, "mode must be max or min"),
        ({"path": "{tmp}/s", "kyes": ["loss.tau"]}, r"unknown key\(s\) \['kyes'\]"),
        ({"keys": ["loss.tau"]}, "must be a sweep folder or a mapping with path"),
    ],
)
def test_bad_from_sweep_names_the_variant_and_the_problem(tmp_path: Path, spec: object, needle: str) -> None:
    write_sweep(tmp_path / "s")
    write_sweep(tmp_path / "unfinished", csv=False)
    if isinstance(spec, str):
        spec = spec.format(tmp=tmp_path)
    elif isinstance(spec, dict) and "path" in spec:
        spec = {**spec, "path": spec["path"].format(tmp=tmp_path)}
    with pytest.raises(ConfigError, match=r"ablation\.variants\.elm\.from_sweep") as err:
        resolve_variant("elm", {"loss": {"name": "elm"}, "from_sweep": spec})
    assert err.match(needle)


def test_make_plan_resolves_from_sweep_before_ray_and_validates_the_result(tmp_path: Path) -> None:
    sweep = str(write_sweep(tmp_path / "s"))
    raw = tiny_raw(
        tune={"searcher": "grid", "scheduler": "fifo"},
        ablation={
            "seeds": [0],
            "variants": {
                "ce": {"loss": {"name": "cross_entropy"}},
                "elm": {"loss": {"name": "elm"}, "from_sweep": sweep},
            },
        },
    )
    path = tmp_path / "abl.yaml"
    path.write_text(yaml.safe_dump(raw))
    plan = make_plan(str(path), {}, out=str(tmp_path / "out"), check_data=False)
    assert plan.variants["elm"] == {"loss": {"name": "elm"}, "loss.lam": 0.2, "loss.margin": 0.3, "loss.tau": 1.2}
    assert plan.variants["ce"] == {"loss": {"name": "cross_entropy"}}
    assert plan.variant_sources["elm"]["sweep"] == sweep and "ce" not in plan.variant_sources
    # The config every trial and MLflow see holds plain values, no from_sweep left.
    assert "from_sweep" not in yaml.safe_load(plan.cfg.to_yaml())["ablation"]["variants"]["elm"]

    # The same from the command line: --set ablation.variants.elm.from_sweep=<folder>.
    raw["ablation"]["variants"]["elm"] = {"loss": {"name": "elm"}}
    path.write_text(yaml.safe_dump(raw))
    plan = make_plan(str(path), {"ablation.variants.elm.from_sweep": sweep}, out=str(tmp_path / "o"), check_data=False)
    assert plan.variants["elm"]["loss.tau"] == 1.2

    # Values that do not fit the variant's loss are rejected like any other override.
    raw["ablation"]["variants"]["ce"] = {"loss": {"name": "cross_entropy"}, "from_sweep": sweep}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"ablation\.variants\.ce"):
        make_plan(str(path), {}, out=str(tmp_path / "out"), check_data=False)


def test_choosing_on_the_test_split_warns_and_is_recorded(tmp_path: Path) -> None:
    sweep = str(write_sweep(tmp_path / "s", metric="test/balanced_acc"))
    with pytest.warns(SelectedOnTestWarning, match="optimistic"):
        _, src = resolve_variant("elm", {"loss": {"name": "elm"}, "from_sweep": sweep})
    assert src is not None and src["chosen_on_test_split"] is True and src["metric"] == "test/balanced_acc"
