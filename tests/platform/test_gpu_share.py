"""Several trials per GPU: `resources.gpus_per_worker` below 1 for one-worker trials, checked before Ray starts
and mapped to Tune's per-trial request (and the fit check) as that fraction of one GPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from elm.config import ConfigError
from platform.runtime import check_trial_fits, trial_needs
from platform.spec import ResourcesSpec
from platform.tune import make_plan
from tests.conftest import tiny_raw

SWEEP = {"search": {"spaces": ["elm_joint"]}, "tune": {"searcher": "optuna", "num_samples": 4}}


def plan_for(tmp_path: Path, resources: dict):  # type: ignore[no-untyped-def]
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(tiny_raw(**SWEEP, resources=resources)))
    return make_plan(str(path), {}, out=str(tmp_path / "o"))


@pytest.mark.parametrize(
    "resources, needle",
    [
        ({"num_workers": 2, "gpus_per_worker": 0.5}, "DDP ranks would share one GPU"),
        ({"num_workers": 2, "gpus_per_worker": 0.5, "launcher": "ray_train"}, "DDP ranks would share one GPU"),
        ({"gpus_per_worker": 1.5}, "trains on one GPU"),
        ({"gpus_per_worker": 2}, "trains on one GPU"),  # fit uses one device: a second GPU would sit idle
        ({"gpus_per_worker": 2, "num_workers": 2}, "trains on one GPU"),
        ({"gpus_per_worker": 0.33333}, "steps of 0.0001"),
    ],
)
def test_a_gpu_share_ray_cannot_honour_is_one_line_naming_the_key(tmp_path: Path, resources: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match="resources.gpus_per_worker") as e:
        plan_for(tmp_path, resources)
    assert needle in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("gpus", [0.25, 0.5, 0.1, 1, 0])
def test_shares_ray_accepts_pass(gpus: float) -> None:
    ResourcesSpec(num_workers=1, gpus_per_worker=gpus).check_gpus()


def test_a_quarter_gpu_trial_requests_a_quarter_of_one_gpu_from_tune(tmp_path: Path) -> None:
    from platform.tune import make_trainable

    plan = plan_for(tmp_path, {"gpus_per_worker": 0.25, "cpus_per_worker": 2})
    assert plan.spec.resources.runs_in_trial
    request = make_trainable(plan)._resources.required_resources
    assert request == {"CPU": 2.0, "GPU": 0.25}
    # Four such trials fill one GPU (and 8 CPUs); the fit check takes one trial on a one-GPU machine.
    assert trial_needs(plan.spec.resources) == {"CPU": 2.0, "GPU": 0.25}
    check_trial_fits(plan.spec.resources, {"CPU": 2.0, "GPU": 1.0})
    with pytest.raises(ConfigError, match="gpus_per_worker=0.25"):
        check_trial_fits(plan.spec.resources, {"CPU": 2.0, "GPU": 0.0})


def test_one_ray_train_worker_may_hold_a_gpu_fraction(tmp_path: Path) -> None:
    """The TorchTrainer's single worker asks the same fraction (driver.py: resources_per_worker)."""
    import ray.train

    plan = plan_for(tmp_path, {"gpus_per_worker": 0.25, "launcher": "ray_train"})
    r = plan.spec.resources
    scaling = ray.train.ScalingConfig(
        num_workers=r.num_workers,
        use_gpu=True,
        resources_per_worker={"CPU": r.cpus_per_worker, "GPU": r.gpus_per_worker},
    )
    assert scaling.resources_per_worker == {"CPU": 1.0, "GPU": 0.25}
