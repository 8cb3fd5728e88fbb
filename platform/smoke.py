"""``--smoke``: shrink any experiment to a run of a minute or two on a 2-core CPU, without editing its file."""
from __future__ import annotations

from typing import Any

from elm.config import ExperimentConfig, from_dict, set_keys
from elm.registry import DATASETS

SMOKE_TRAIN_PER_CLASS = 40
SMOKE_TEST_PER_CLASS = 20


def smoke(cfg: ExperimentConfig) -> ExperimentConfig:
    """The same experiment at toy size: 2 epochs, a tiny data subset, 2 trials of one 1-CPU worker each (through
    the launcher the full run would use), ablations cut to 2 variants x 1 seed."""
    raw = cfg.to_dict()
    overrides: dict[str, Any] = {
        "optim.epochs": 2,
        "optim.warmup_epochs": 0,
        "optim.milestones": [],
        "train.eval_every": 1,
        "train.checkpoint_every": 1,
        "tune.num_samples": 2,
        "tune.grace_period": 1,
    }
    data_params = DATASETS.supplied_params(cfg.data.name, {"max_train_per_class": 0, "max_test_per_class": 0})
    if "max_train_per_class" in data_params:
        overrides["data.max_train_per_class"] = SMOKE_TRAIN_PER_CLASS
    if "max_test_per_class" in data_params:
        overrides["data.max_test_per_class"] = SMOKE_TEST_PER_CLASS
    if "val_per_class" in data_params and cfg.data.kwargs.get("val_per_class"):
        overrides["data.val_per_class"] = 5
    raw.setdefault("tune", {})
    raw.setdefault("resources", {})
    # One CPU worker, whatever GPUs or cores the full experiment asks for; but the same launcher as the full run
    # would use (a multi-worker experiment smoke-tests its Ray Train TorchTrainer path, with one worker).
    resources = raw["resources"] or {}
    overrides.update({"resources.num_workers": 1, "resources.cpus_per_worker": 1, "resources.gpus_per_worker": 0})
    if resources.get("launcher", "auto") == "auto" and int(resources.get("num_workers", 1)) > 1:
        overrides["resources.launcher"] = "ray_train"  # what auto means for the full run, not for one worker
    if "ablation" in raw:
        variants = raw["ablation"].get("variants", {})
        raw["ablation"]["variants"] = dict(list(variants.items())[:2])
        raw["ablation"]["seeds"] = list(raw["ablation"].get("seeds", [cfg.seed]))[:1]
        overrides["tune.num_samples"] = 1
    return from_dict(set_keys(raw, overrides))
