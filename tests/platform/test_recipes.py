"""The shipped experiment files that ``include:`` a recipe of ``ablations/recipes/`` load exactly the configs they
spelt out in full before recipes existed (issue 14), and a recipe edited after a sweep started does not change it.

``SPELT_OUT`` is each file's body as it was (``git show abad739:ablations/<file>``; comments and the ``ablation:``
blocks left out, which ``tests/platform/test_variant_sets.py`` pins). A deliberate change to a shipped file's recipe
values changes its entry here too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from elm.config import from_dict, load_config
from elm.config_files import read_config, read_yaml
from tests.conftest import REPO_ROOT, tiny_raw

ABLATIONS = REPO_ROOT / "ablations"
BLOCKS = ("data", "model", "loss", "optim", "train")
RECIPES = sorted((ABLATIONS / "recipes").glob("*.yaml"))
SPELT_OUT = {
    "cifar10": """\
name: cifar10_elm_search
seed: 0
data: {name: cifar10_lt, root: data, imbalance_ratio: 100, val_per_class: 200, download: true}
model: {name: resnet32, projection_dim: 64}
loss: {name: elm, tau: 1.0, lam: 0.1, margin: 0.1, margin_schedule: log_prior, temperature: 0.1}
optim: {lr: 0.1, momentum: 0.9, weight_decay: 2.0e-4, epochs: 200, batch_size: 128,
        schedule: step, warmup_epochs: 5, milestones: [160, 180], gamma: 0.1}
train: {eval_every: 10, eval_split: val, posthoc_taus: [0.5, 1.0, 1.5, 2.0], bf16: false, channels_last: true}
search: {spaces: [elm_joint, weight_decay]}
tune: {searcher: optuna, metric: val/balanced_acc, mode: max, num_samples: 32, scheduler: asha,
       grace_period: 40, reduction_factor: 3, study_storage: true}
resources: {num_workers: 1, cpus_per_worker: 4, gpus_per_worker: 1}
""",
    "cifar100": """\
name: cifar100_elm_search
seed: 0
data: {name: cifar100_lt, root: data, imbalance_ratio: 100, val_per_class: 20, download: true}
model: {name: resnet32, projection_dim: 64}
loss: {name: elm, tau: 1.0, lam: 0.1, margin: 0.1, margin_schedule: log_prior, temperature: 0.1}
optim: {lr: 0.1, momentum: 0.9, weight_decay: 2.0e-4, epochs: 200, batch_size: 128,
        schedule: step, warmup_epochs: 5, milestones: [160, 180], gamma: 0.1}
train: {eval_every: 10, eval_split: val, posthoc_taus: [0.5, 1.0, 1.5, 2.0], bf16: false, channels_last: true}
search: {spaces: [elm_joint, weight_decay]}
tune: {searcher: optuna, metric: val/balanced_acc, mode: max, num_samples: 32, scheduler: asha,
       grace_period: 40, reduction_factor: 3, study_storage: true}
resources: {num_workers: 1, cpus_per_worker: 4, gpus_per_worker: 1}
""",
    "cifar100_ablation": """\
name: cifar100_ablation
seed: 0
data: {name: cifar100_lt, root: data, imbalance_ratio: 100, val_per_class: 20, download: true}
model: {name: resnet32, projection_dim: 64}
loss: {name: cross_entropy}
optim: {lr: 0.1, momentum: 0.9, weight_decay: 2.0e-4, epochs: 200, batch_size: 128,
        schedule: step, warmup_epochs: 5, milestones: [160, 180], gamma: 0.1}
train: {eval_every: 10, eval_split: val, posthoc_taus: [0.5, 1.0, 1.5, 2.0], bf16: false, channels_last: true}
tune: {searcher: grid, scheduler: fifo, metric: val/balanced_acc, mode: max, max_concurrent: 0}
resources: {num_workers: 1, cpus_per_worker: 4, gpus_per_worker: 1}
""",
    "cifar10_reduced": """\
name: cifar10_reduced
seed: 0
data: {name: cifar10_lt, root: data, imbalance_ratio: 100, val_per_class: 200}
model: {name: resnet32, projection_dim: 64}
loss: {name: cross_entropy}
optim: {lr: 0.1, momentum: 0.9, weight_decay: 2.0e-4, epochs: 10, batch_size: 128,
        schedule: step, warmup_epochs: 1, milestones: [8, 9], gamma: 0.1}
train: {eval_every: 5, eval_split: val, posthoc_taus: [0.5, 1.0, 1.5, 2.0], bf16: true, channels_last: true,
        eval_batch_size: 500}
tune: {searcher: grid, scheduler: fifo, metric: val/balanced_acc, mode: max, max_concurrent: 2}
resources: {num_workers: 1, cpus_per_worker: 1}
""",
    "cifar10_paper": """\
name: cifar10_paper
seed: 0
data: {name: cifar10_lt, root: data, imbalance_ratio: 100}
model: {name: resnet32, projection_dim: 64}
loss: {name: cross_entropy}
optim: {lr: 0.1, momentum: 0.9, weight_decay: 2.0e-4, epochs: 200, batch_size: 128,
        schedule: step, warmup_epochs: 5, milestones: [160, 180], gamma: 0.1}
train: {eval_every: 10, eval_split: test, posthoc_taus: [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0], bf16: true,
        channels_last: true, eval_batch_size: 500, checkpoint_every: 1}
tune: {searcher: grid, scheduler: fifo, metric: test/balanced_acc, mode: max, max_concurrent: 2}
resources: {num_workers: 1, cpus_per_worker: 1}
""",
    "cifar10_elm_val_search": """\
name: cifar10_elm_val_search
seed: 0
data: {name: cifar10_lt, root: data, imbalance_ratio: 100, val_per_class: 200}
model: {name: resnet32, projection_dim: 64}
loss: {name: elm, tau: 1.0, lam: 0.1, margin: 0.1, margin_schedule: log_prior, temperature: 0.1}
optim: {lr: 0.1, momentum: 0.9, weight_decay: 2.0e-4, epochs: 4, batch_size: 128,
        schedule: step, warmup_epochs: 1, milestones: [3], gamma: 0.1}
train: {eval_every: 1, eval_split: val, posthoc_taus: [1.0], bf16: true, channels_last: true, eval_batch_size: 500,
        views: 2}
search: {spaces: [elm_embedding]}
tune: {searcher: optuna, scheduler: fifo, metric: val/balanced_acc, mode: max, num_samples: 12, max_concurrent: 2,
       study_storage: true}
resources: {num_workers: 1, cpus_per_worker: 1}
""",
    "cifar10_mlp_search": """\
name: cifar10_mlp_search
seed: 0
data: {name: cifar10_lt, root: data, imbalance_ratio: 100, val_per_class: 200}
model: {name: tiny_mlp, hidden: 256, projection_dim: 64}
loss: {name: elm, tau: 1.0, lam: 0.1, margin: 0.1, temperature: 0.1}
optim: {lr: 0.05, momentum: 0.9, weight_decay: 5.0e-4, epochs: 10, batch_size: 128, schedule: cosine,
        warmup_epochs: 0, milestones: []}
train: {eval_every: 1, eval_split: val, bf16: false, channels_last: false, eval_batch_size: 1000, posthoc_taus: []}
search: {spaces: [elm_joint]}
tune: {searcher: optuna, scheduler: asha, metric: val/balanced_acc, mode: max, num_samples: 36, grace_period: 1,
       reduction_factor: 3, max_concurrent: 2}
resources: {num_workers: 1, cpus_per_worker: 1}
""",
    "cifar10_mlp_ablation": """\
name: cifar10_mlp_ablation
seed: 0
data: {name: cifar10_lt, root: data, imbalance_ratio: 100, val_per_class: 200}
model: {name: tiny_mlp, hidden: 256, projection_dim: 64}
loss: {name: cross_entropy}
optim: {lr: 0.05, momentum: 0.9, weight_decay: 5.0e-4, epochs: 10, batch_size: 128, schedule: cosine,
        warmup_epochs: 0, milestones: []}
train: {eval_every: 1, eval_split: val, bf16: false, channels_last: false, eval_batch_size: 1000,
        posthoc_taus: [0.5, 1.0, 1.5, 2.0]}
tune: {searcher: grid, scheduler: fifo, metric: val/balanced_acc, mode: max, max_concurrent: 2}
resources: {num_workers: 1, cpus_per_worker: 1}
""",
    "imagenet_lt": """\
name: imagenet_lt_elm_search
seed: 0
data: {name: imagenet_lt, root: data/imagenet, split_dir: data/imagenet_lt_splits, image_size: 224}
model: {name: resnet50, projection_dim: 128}
loss: {name: elm, tau: 1.0, lam: 0.1, margin: 0.1, margin_schedule: log_prior, temperature: 0.1}
optim: {lr: 0.4, momentum: 0.9, weight_decay: 5.0e-4, epochs: 90, batch_size: 512,
        schedule: cosine, warmup_epochs: 5, milestones: []}
train: {eval_every: 10, eval_split: val, posthoc_taus: [0.5, 1.0, 1.5, 2.0], bf16: true, channels_last: true,
        eval_batch_size: 500, checkpoint_every: 1}
search: {spaces: [elm_joint]}
tune: {searcher: optuna, metric: val/balanced_acc, mode: max, num_samples: 16, scheduler: asha,
       grace_period: 30, reduction_factor: 3, study_storage: true}
resources: {num_workers: 4, cpus_per_worker: 8, gpus_per_worker: 1}
""",
    "inaturalist": """\
name: inaturalist_elm_search
seed: 0
data: {name: inaturalist2018, root: data/inaturalist2018, split_dir: data/inaturalist2018_splits, image_size: 224}
model: {name: resnet50, projection_dim: 128}
loss: {name: elm, tau: 1.0, lam: 0.1, margin: 0.1, margin_schedule: log_prior, temperature: 0.1}
optim: {lr: 0.4, momentum: 0.9, weight_decay: 1.0e-4, epochs: 90, batch_size: 512,
        schedule: cosine, warmup_epochs: 5, milestones: []}
train: {eval_every: 10, eval_split: test, posthoc_taus: [0.5, 1.0, 1.5, 2.0], bf16: true, channels_last: true,
        eval_batch_size: 500, checkpoint_every: 1}
search: {spaces: [elm_joint]}
tune: {searcher: optuna, metric: test/balanced_acc, mode: max, num_samples: 12, scheduler: asha,
       grace_period: 30, reduction_factor: 3, study_storage: true}
resources: {num_workers: 4, cpus_per_worker: 8, gpus_per_worker: 1}
""",
}


@pytest.mark.parametrize("stem", sorted(SPELT_OUT))
def test_a_file_with_a_recipe_loads_the_config_it_spelt_out_before(stem: str) -> None:
    path = ABLATIONS / f"{stem}.yaml"
    assert "include" in read_yaml(path), f"{path.name} no longer includes a recipe"
    now = load_config(path)
    before = yaml.safe_load(SPELT_OUT[stem])
    if "ablation" in now.platform:
        before["ablation"] = now.platform["ablation"]
    assert now == from_dict(before)


def test_every_recipe_is_included_by_a_shipped_file_and_says_what_it_is() -> None:
    assert RECIPES
    included = set()
    for path in ABLATIONS.glob("*.yaml"):
        names = read_yaml(path).get("include") or []
        included |= {(path.parent / n).resolve() for n in ([names] if isinstance(names, str) else names)}
    for recipe in RECIPES:
        assert recipe.resolve() in included, f"{recipe.name} is included by no shipped file"
        assert recipe.read_text().startswith("#"), f"{recipe.name} needs a header comment: its source and use"
        assert "name" not in read_config(recipe), f"{recipe.name}: a recipe is not an experiment"


def test_a_recipe_edited_after_a_sweep_started_does_not_change_it_on_resume(tmp_path: Path) -> None:
    from platform.plan import record_start
    from platform.tune import make_plan

    recipe = {k: v for k, v in tiny_raw().items() if k != "name"}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    exp = {
        "include": "recipe.yaml",
        "name": "exp",
        "ablation": {"seeds": [0], "variants": {"a": {}}},
        "tune": {"searcher": "grid", "scheduler": "fifo"},
    }
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(exp))
    out = str(tmp_path / "out")
    plan = make_plan(str(tmp_path / "exp.yaml"), {}, out=out, check_data=False)
    assert plan.cfg.optim.lr == recipe["optim"]["lr"]
    plan.out.mkdir(parents=True)
    record_start(plan)
    assert "include" not in yaml.safe_load(plan.layout.config.read_text())  # the merged config is what is saved
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump({**recipe, "optim": {**recipe["optim"], "lr": 0.9}}))
    assert make_plan(str(tmp_path / "exp.yaml"), {}, out=out, check_data=False).cfg.optim.lr == 0.9  # a new sweep
    resumed = make_plan(str(tmp_path / "exp.yaml"), {}, out=out, check_data=False, resume=True)
    assert resumed.cfg.optim == plan.cfg.optim and resumed.cfg.optim.lr == recipe["optim"]["lr"]
    assert [getattr(resumed.cfg, b) for b in BLOCKS] == [getattr(plan.cfg, b) for b in BLOCKS]
