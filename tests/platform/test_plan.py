"""make_plan: every bad input is rejected before Ray starts, with the key or path named; --smoke shrinks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from elm.config import ConfigError, from_dict
from elm.data import DatasetNotFoundError
from platform.smoke import smoke
from platform.spec import parse_platform
from platform.tune import main, make_plan, param_space
from tests.conftest import tiny_raw

SWEEP = {"search": {"spaces": ["elm_joint"]}, "tune": {"searcher": "optuna", "num_samples": 3}}


def write(tmp_path: Path, raw: dict) -> str:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_a_valid_sweep_plans(tmp_path: Path) -> None:
    plan = make_plan(write(tmp_path, tiny_raw(**SWEEP)), {}, out=str(tmp_path / "out"))
    assert set(plan.space) == {"loss.tau", "loss.margin", "loss.lam"}
    assert plan.spec.tune.num_samples == 3 and plan.out == (tmp_path / "out").resolve()


@pytest.mark.parametrize(
    "extra, overrides, needle",
    [
        ({"tune": {"searcher": "optuna", "num_sampels": 3}}, {}, r"unknown key tune\.num_sampels"),
        ({"tune": {"searcher": "hyperopt"}}, {}, r"tune\.searcher='hyperopt'"),
        ({"resources": {"num_workers": 0}}, {}, r"resources\.num_workers=0"),
        ({"search": {"spaces": ["elm_jiont"]}}, {}, "unknown search space 'elm_jiont'"),
        ({"search": {"loss.nope": {"uniform": [0, 1]}}}, {}, r"search\.loss\.nope"),
        ({}, {"loss.tau": -2}, r"loss\.tau=-2"),
        ({"ablation": {"variants": {"a": {"loss": {"name": "cross_entropy"}}}}}, {}, "tune.searcher: grid"),
    ],
)
def test_bad_platform_input_names_the_key(tmp_path: Path, extra: dict, overrides: dict, needle: str) -> None:
    raw = tiny_raw(**{**SWEEP, **extra})
    with pytest.raises(ConfigError, match=needle):
        make_plan(write(tmp_path, raw), overrides)


def test_a_missing_dataset_fails_before_ray_with_the_path(tmp_path: Path) -> None:
    raw = tiny_raw(**SWEEP, data={"name": "cifar10_lt", "root": str(tmp_path / "nodata"), "download": False})
    with pytest.raises(DatasetNotFoundError, match="nodata"):
        make_plan(write(tmp_path, raw), {})


def test_cli_prints_the_reason_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    assert main([str(path)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    assert main([write(tmp_path, tiny_raw(**SWEEP)), "--set", "tune.mode=up"]) == 2
    assert "tune.mode='up'" in capsys.readouterr().err


def test_smoke_shrinks_any_experiment_without_touching_the_file() -> None:
    cfg = from_dict(tiny_raw(**SWEEP, optim={"epochs": 50, "warmup_epochs": 5, "milestones": [40, 45]}))
    small = smoke(cfg)
    assert small.optim.epochs == 2 and small.optim.milestones == () and small.train.eval_every == 1
    assert parse_platform(small).tune.num_samples == 2
    gpu = from_dict(tiny_raw(**SWEEP, resources={"num_workers": 4, "cpus_per_worker": 8, "gpus_per_worker": 1}))
    res = parse_platform(smoke(gpu)).resources
    assert (res.num_workers, res.cpus_per_worker, res.gpus_per_worker) == (1, 1, 0)
    assert res.launcher == "ray_train" and not res.runs_in_trial  # the full run's TorchTrainer path, one worker
    assert parse_platform(small).resources.launcher == "auto" and parse_platform(small).resources.runs_in_trial
    assert small.loss == cfg.loss and small.model == cfg.model


def test_smoke_then_more_workers_on_the_command_line_uses_ray_train(tmp_path: Path) -> None:
    plan = make_plan(write(tmp_path, tiny_raw(**SWEEP)), {"resources.num_workers": 2}, smoke_run=True)
    assert plan.spec.resources.num_workers == 2 and not plan.spec.resources.runs_in_trial


def test_smoke_still_rejects_what_the_full_run_would(tmp_path: Path) -> None:
    raw = tiny_raw(**SWEEP, resources={"launcher": "in_trial", "num_workers": 4})
    with pytest.raises(ConfigError, match="in_trial trains in one process"):
        make_plan(write(tmp_path, raw), {}, smoke_run=True)


def test_ablation_is_a_variant_by_seed_grid(tmp_path: Path) -> None:
    raw = tiny_raw(
        ablation={
            "seeds": [0, 1, 2],
            "variants": {
                "ce": {"loss": {"name": "cross_entropy"}},
                "la": {"loss": {"name": "logit_adjusted", "tau": 1.0}},
            },
        },
        tune={"searcher": "grid", "scheduler": "fifo"},
    )
    plan = make_plan(write(tmp_path, raw), {})
    space = param_space(plan)
    assert space["variant"] == {"grid_search": ["ce", "la"]} and space["seed"] == {"grid_search": [0, 1, 2]}
    small = smoke(plan.cfg)
    assert list(parse_platform(small).ablation.seeds) == [0]
    bad = tiny_raw(
        ablation={"variants": {"x": {"loss": {"name": "logit_adjusted", "tau": -1}}}},
        tune={"searcher": "grid", "scheduler": "fifo"},
    )
    with pytest.raises(ConfigError, match=r"ablation\.variants\.x"):
        make_plan(write(tmp_path, bad), {})


def test_relative_data_folders_become_absolute_for_ray_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from platform.tune import absolute_data_paths

    monkeypatch.chdir(tmp_path)
    cfg = from_dict(tiny_raw(data={"name": "cifar10_lt", "root": "../data", "download": False}))
    assert absolute_data_paths(cfg).data.kwargs["root"] == str((tmp_path / "../data").resolve())
    same = from_dict(tiny_raw(data={"name": "cifar10_lt", "root": "/abs/data"}))
    assert absolute_data_paths(same) == same


@pytest.mark.parametrize(
    "resources, in_trial, request_",
    [
        ({}, True, {"CPU": 1.0}),  # auto, one worker: trains inside the trial, which holds the CPUs
        ({"cpus_per_worker": 2, "gpus_per_worker": 0.5}, True, {"CPU": 2.0, "GPU": 0.5}),
        ({"launcher": "ray_train"}, False, {"memory": 256.0 * 2**20}),  # the TorchTrainer's workers hold the CPUs
        ({"num_workers": 2}, False, {"memory": 256.0 * 2**20}),  # auto with DDP: Ray Train
    ],
)
def test_launcher_decides_where_a_trial_trains_and_what_it_requests(
    tmp_path: Path, resources: dict, in_trial: bool, request_: dict
) -> None:
    from platform.trainables.driver import train_driver_fn
    from platform.trainables.in_trial import train_in_trial_fn
    from platform.tune import make_trainable

    plan = make_plan(write(tmp_path, tiny_raw(**SWEEP, resources=resources)), {}, out=str(tmp_path / "o"))
    assert plan.spec.resources.runs_in_trial is in_trial
    trainable = make_trainable(plan)
    assert trainable._resources.required_resources == request_
    assert trainable.__name__ == (train_in_trial_fn if in_trial else train_driver_fn).__name__


def test_in_trial_launcher_with_several_workers_is_rejected(tmp_path: Path) -> None:
    raw = tiny_raw(**SWEEP, resources={"launcher": "in_trial", "num_workers": 2})
    with pytest.raises(ConfigError, match="resources.launcher: in_trial trains in one process"):
        make_plan(write(tmp_path, raw), {})
