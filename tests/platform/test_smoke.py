"""``--smoke`` shrinks sizes only: every shipped file keeps its code paths, variants and long tail when smoked.

The allow-list of keys that a smoke run may change is written out here, not imported, so that a new change to
``platform.smoke`` that touches anything else (a cadence, a searcher, a launcher) fails this test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pytest

from elm.config import ExperimentConfig, from_dict, load_config
from elm.data.longtail import first_per_class, longtail_train_val
from platform import smoke as sm
from platform.smoke import smoke
from platform.spec import parse_platform
from platform.tune import make_plan
from tests.conftest import tiny_raw

ABLATIONS = sorted((Path(__file__).resolve().parents[2] / "ablations").glob("*.yaml"))
IDS = [p.name for p in ABLATIONS]

# The only keys a smoke run may add or change: sizes of data, epochs, steps, trials, seeds and resources.
SIZE_KEYS = frozenset(
    {
        "optim.epochs",
        "optim.warmup_epochs",
        "optim.milestones",  # the schedule compressed to the smoke epochs
        "train.max_steps_per_epoch",
        "tune.num_samples",
        "tune.grace_period",
        "ablation.seeds",
        "data.max_train_per_class",
        "data.max_test_per_class",
        "data.val_per_class",
        "data.image_size",
        "resources.num_workers",
        "resources.cpus_per_worker",
        "resources.gpus_per_worker",
    }
)
LAUNCHER_KEY = "resources.launcher"  # may be written out, but only as the launcher the full run resolves to
MISSING = "<absent>"


def flatten(raw: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted key -> leaf value of a nested mapping (lists are leaves)."""
    out: dict[str, Any] = {}
    for k, v in raw.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def changed_keys(full: ExperimentConfig, small: ExperimentConfig) -> dict[str, tuple[Any, Any]]:
    a, b = flatten(full.to_dict()), flatten(small.to_dict())
    return {
        k: (a.get(k, MISSING), b.get(k, MISSING))
        for k in sorted(set(a) | set(b))
        if a.get(k, MISSING) != b.get(k, MISSING)
    }


def launcher(cfg: ExperimentConfig) -> str:
    """The launcher a config's trials run with (``auto`` resolved)."""
    return "in_trial" if parse_platform(cfg).resources.runs_in_trial else "ray_train"


def evaluated_epochs(cfg: ExperimentConfig) -> list[int]:
    """The 1-based epochs on which ``elm.train.fit`` evaluates: the cadence, and always the last."""
    e, k = cfg.optim.epochs, cfg.train.eval_every
    return [i for i in range(1, e + 1) if i % k == 0 or i == e]


@pytest.fixture(params=ABLATIONS, ids=IDS)
def pair(request: pytest.FixtureRequest) -> tuple[ExperimentConfig, ExperimentConfig]:
    full = load_config(request.param)
    return full, smoke(full)


def test_there_are_shipped_files() -> None:
    assert len(ABLATIONS) >= 4


def test_nothing_but_sizes_changes(pair: tuple[ExperimentConfig, ExperimentConfig]) -> None:
    full, small = pair
    changed = changed_keys(full, small)
    assert changed, "smoke changed nothing"
    outside = {k: v for k, v in changed.items() if k not in SIZE_KEYS and k != LAUNCHER_KEY}
    assert not outside, f"smoke changed keys that are not sizes: {outside}"
    assert launcher(small) == launcher(full)
    if LAUNCHER_KEY in changed:
        assert changed[LAUNCHER_KEY] == (full.platform.get("resources", {}).get("launcher", MISSING), launcher(full))


def test_code_paths_and_variants_are_kept(pair: tuple[ExperimentConfig, ExperimentConfig]) -> None:
    full, small = pair
    f, s = parse_platform(full), parse_platform(small)
    assert small.train.eval_every == full.train.eval_every and small.train.eval_split == full.train.eval_split
    assert (s.tune.searcher, s.tune.scheduler, s.tune.metric, s.tune.mode) == (
        f.tune.searcher,
        f.tune.scheduler,
        f.tune.metric,
        f.tune.mode,
    )
    assert (small.loss, small.model, small.optim.schedule) == (full.loss, full.model, full.optim.schedule)
    assert (small.train.bf16, small.train.channels_last) == (full.train.bf16, full.train.channels_last)
    if f.ablation is not None:
        assert s.ablation is not None
        assert dict(s.ablation.variants) == dict(f.ablation.variants)  # every variant, unchanged
        assert list(s.ablation.seeds) == list(f.ablation.seeds)[:1]
    else:
        assert s.tune.num_samples == min(f.tune.num_samples, sm.SMOKE_TRIALS)


def test_sizes_shrink(pair: tuple[ExperimentConfig, ExperimentConfig]) -> None:
    full, small = pair
    res = parse_platform(small).resources
    assert (res.num_workers, res.cpus_per_worker, res.gpus_per_worker) == (1, 1, 0)
    assert small.optim.epochs <= min(full.optim.epochs, sm.SMOKE_MAX_EPOCHS)
    steps = small.train.max_steps_per_epoch
    assert 1 <= steps and (steps - 1) * small.optim.epochs * small.optim.batch_size < sm.SMOKE_TRAIN_IMAGES
    if "max_test_per_class" in small.data.kwargs:
        assert small.data.kwargs["max_test_per_class"] <= sm.SMOKE_TEST_PER_CLASS


def test_every_kind_of_epoch_the_full_run_has(pair: tuple[ExperimentConfig, ExperimentConfig]) -> None:
    """With eval_every > 1 the full run has epochs without evaluation and evaluations before the last epoch;
    so has its smoke run (the KeyError of issue 10 came from the first kind)."""
    full, small = pair
    k = full.train.eval_every
    done = evaluated_epochs(small)
    assert done[-1] == small.optim.epochs
    if k > 1:
        assert len(done) < small.optim.epochs, "no epoch without evaluation"
        if k < full.optim.epochs:
            assert done[0] == k < small.optim.epochs, "no evaluation on the cadence before the last epoch"
    s = parse_platform(small)
    if s.tune.scheduler == "asha":
        assert s.tune.grace_period in done, "ASHA's first rung must fall on an evaluated epoch"


def test_the_cli_smoke_is_this_function() -> None:
    path = Path(__file__).resolve().parents[2] / "ablations" / "cifar10.yaml"
    plan = make_plan(str(path), {}, smoke_run=True, check_data=False)
    expected = smoke(load_config(path))
    assert (plan.cfg.optim, plan.cfg.train) == (expected.optim, expected.train)
    assert plan.cfg.platform["tune"] == expected.platform["tune"]


def test_smoke_is_pure_and_leaves_its_input_alone() -> None:
    full = load_config(ABLATIONS[0])
    before = full.to_dict()
    assert smoke(full) == smoke(full)
    assert full.to_dict() == before


# ------------------------------------------------------------------------------ the long tail of the smoke set


def smoke_train_counts(cfg: ExperimentConfig, per_class: int, num_classes: int) -> np.ndarray:
    """Class counts of the smoke training set, selected as ``elm.data.cifar_lt`` selects them, from a balanced
    pool of ``per_class`` labels per class (CIFAR's pool; only the labels matter to the selection)."""
    kw = cfg.data.kwargs
    labels = np.random.default_rng(0).permutation(np.repeat(np.arange(num_classes), per_class))
    train_idx, _, _ = longtail_train_val(
        labels,
        float(kw["imbalance_ratio"]),
        str(kw.get("profile", "exp")),
        int(kw.get("subsample_seed", 0)),
        int(kw.get("val_per_class", 0)),
    )
    train_idx = train_idx[first_per_class(labels[train_idx], kw.get("max_train_per_class"))]
    return np.bincount(labels[train_idx], minlength=num_classes)


CIFAR_SHAPES = {"cifar10_lt": (5000, 10), "cifar100_lt": (500, 100)}  # official train images per class, classes
CIFAR_FILES = [p for p in ABLATIONS if load_config(p).data.name in CIFAR_SHAPES]


@pytest.mark.parametrize("path", CIFAR_FILES, ids=[p.name for p in CIFAR_FILES])
def test_smoke_train_counts_stay_long_tailed(path: Path) -> None:
    full = load_config(path)
    small = smoke(full)
    per_class, num_classes = CIFAR_SHAPES[full.data.name]
    assert sm.CIFAR_POOL_PER_CLASS[full.data.name] == per_class
    counts = smoke_train_counts(small, per_class, num_classes)
    full_counts = smoke_train_counts(full, per_class, num_classes)
    ratio = counts.max() / counts.min()
    assert counts.min() >= 1
    assert ratio >= min(sm.SMOKE_IMBALANCE_RATIO, full_counts.max() / full_counts.min()) - 0.5  # ~10 or the file's
    assert counts.sum() < full_counts.sum()  # and the data did shrink
    assert list(counts) == sorted(counts, reverse=True)  # head to tail, as in the full set


def test_cifar10_smoke_counts_are_the_documented_ones() -> None:
    """platform.smoke's docstring: CIFAR-10-LT at rho = 100 without a holdout smokes on 500 x 5, 387 ... 50."""
    full = from_dict(tiny_raw(data={"name": "cifar10_lt", "root": "data", "imbalance_ratio": 100}))
    counts = smoke_train_counts(smoke(full), 5000, 10)
    assert counts.tolist() == [500, 500, 500, 500, 500, 387, 232, 139, 83, 50] and counts.sum() == 3391


# -------------------------------------------------------------------------------------------- the pieces


@pytest.mark.parametrize(
    "epochs, eval_every, expected",
    [
        (200, 1, 2),
        (3, 1, 2),
        (200, 10, 11),
        (13, 5, 6),
        (200, 2, 3),
        (5, 10, 5),
        (1, 1, 1),
        (200, 40, sm.SMOKE_MAX_EPOCHS),
    ],
)
def test_smoke_epochs(epochs: int, eval_every: int, expected: int) -> None:
    assert sm.smoke_epochs(epochs, eval_every) == expected


def test_schedule_is_compressed_and_unreached_milestones_dropped() -> None:
    assert sm.scaled_schedule(5, [160, 180], 200, 11) == (1, [9, 10])
    assert sm.scaled_schedule(1, [10, 12], 13, 6) == (1, [5])  # 12 -> 6 is the last epoch's end: never reached
    assert sm.scaled_schedule(0, [], 10, 2) == (0, [])
    assert sm.scaled_schedule(5, [40, 45], 50, 2) == (1, [])


def test_grace_period_stays_on_the_evaluation_cadence() -> None:
    assert sm.smoke_grace_period(40, 10, 200, 11) == 10
    assert sm.smoke_grace_period(30, 10, 90, 11) == 10
    assert sm.smoke_grace_period(1, 1, 10, 2) == 1
    assert sm.smoke_grace_period(10, 1, 200, 2) == 1


def test_train_cap_keeps_the_tail_and_cuts_the_head() -> None:
    assert sm.smoke_train_cap("cifar10_lt", 100, 0) == 500
    assert sm.smoke_train_cap("cifar100_lt", 100, 0) == 50
    assert sm.smoke_train_cap("cifar10_lt", 100, 20) == 490  # n_max 4980 -> n_min 49
    assert sm.smoke_train_cap("cifar10_lt", 5, 0) is None  # rho 5 < 10: the head is not cut at all
    assert sm.smoke_train_cap("synthetic_lt", 100, 0) is None


def test_a_config_without_platform_blocks_smokes() -> None:
    small = smoke(
        from_dict(
            tiny_raw(
                optim={"epochs": 30, "warmup_epochs": 0, "milestones": [], "batch_size": 32}, train={"eval_every": 3}
            )
        )
    )
    assert (small.optim.epochs, small.train.eval_every) == (4, 3)
    assert parse_platform(small).tune.num_samples == sm.SMOKE_TRIALS
