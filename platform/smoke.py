"""``--smoke``: the same experiment at toy size, a minute or two on a 2-core CPU, without editing its file.

    python -m platform.tune ablations/cifar10.yaml --smoke --set data.root=../shared/data   (= ``make run``)

``smoke(cfg)`` is one pure function of the config, shared by the CLI and the tests (``smoke_raw``: the same, before
validation). It shrinks SIZES only (data,
epochs, steps, trials, seeds, per-trial resources) and never a code path: the evaluation cadence
(``train.eval_every``), the searcher, the scheduler, the launcher, ``tune.metric``, the loss, the model, the
numerics and every ablation variant stay as the full file has them. A smoke mode that takes another path hides
the bugs users hit (every shipped Optuna sweep once died at epoch 1 while a smoke test that forced
``eval_every: 1`` stayed green).

What shrinks, and how (every number is a named constant below):

- Epochs: ``SMOKE_MIN_EPOCHS`` (2) when the file evaluates every epoch; with ``eval_every = k > 1``, ``k + 1``
  epochs, so the smoke run has what the full run has: epochs 1..k-1 report no metric, epoch k evaluates on the
  cadence (mid-run, where ASHA's rung sits), epoch k+1 evaluates because it is the last. Bounded by the full
  run's epochs and by ``SMOKE_MAX_EPOCHS`` (beyond it, the last epoch is the only evaluation; epochs without one
  remain). A shipped file with ``eval_every: 10`` runs 11 smoke epochs.
- Steps: a budget of ``SMOKE_TRAIN_IMAGES`` training images per trial over all its epochs, as
  ``train.max_steps_per_epoch`` (batches per epoch at the file's own batch size, each epoch a fresh shuffle);
  small data sets end their epochs earlier anyway.
- Learning-rate schedule: warm-up and step milestones scaled by smoke/full epochs (a warm-up keeps at least one
  epoch; milestones the shortened run never reaches are dropped); ASHA's first rung (``grace_period``) at the
  same multiple of ``eval_every`` as in the full file, scaled and at least one, so the rung falls on an
  evaluated epoch as in the full run.
- Data: CIFAR-LT keeps its long tail. The per-class cap is ``SMOKE_IMBALANCE_RATIO`` x the rarest class
  (CIFAR-10-LT at rho = 100: n_min = 50, cap 500, counts 500 x 5, 387, 232, 139, 83, 50: 3,391 images,
  rho = 10; after ``cifar10.yaml``'s validation holdout, 20 per class in the smoke run: 490 .. 49, 3,336 images),
  so tau still matters and learning shows; test and validation splits are capped per class. File
  datasets (ImageNet-LT, iNaturalist) are decoded at ``SMOKE_IMAGE_SIZE``. A dataset's size knobs are the factory
  arguments marked ``Size(role)`` in its signature (``elm.registry``), whatever their names.
- Trials: ``SMOKE_TRIALS`` samples of a search; an ablation keeps all its variants and ``SMOKE_SEEDS`` seed.
- Resources: one worker with one CPU and no GPU, through the launcher the full run would use (a multi-worker
  file keeps its Ray Train TorchTrainer path, with one worker).

Measured: ``make run`` (``ablations/cifar10.yaml``: 2 trials x 11 epochs x 11 steps of 128 images, ResNet-32 in
fp32 with two views per image, 1 core each) took 108 s on the 2-core machine shared with other jobs; the best
trial reached validation balanced accuracy 0.28 and test 0.27 (chance 0.10); ASHA stopped the other at epoch 10.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Mapping

from elm.config import ExperimentConfig, from_dict, set_keys
from elm.registry import DATASETS, Size
from platform.spec import parse_platform

SMOKE_MIN_EPOCHS = 2  # epochs of a file that evaluates every epoch
SMOKE_MAX_EPOCHS = 16  # bound on eval_every + 1
SMOKE_TRAIN_IMAGES = 15_000  # training images per trial, all epochs (ResNet-32, fp32, 2 views: ~90 s on one core)
SMOKE_TRIALS = 2  # tune.num_samples of a search, at most
SMOKE_SEEDS = 1  # ablation seeds kept (the first ones)
SMOKE_IMBALANCE_RATIO = 10  # n_max / n_min of a capped CIFAR-LT training set (at most the file's own ratio)
SMOKE_TEST_PER_CLASS = 50  # balanced test images per class kept
SMOKE_VAL_PER_CLASS = 20  # balanced validation images per class held out (when the file holds any out)
SMOKE_IMAGE_SIZE = 32  # network input side of datasets that resize (file datasets), at most
SMOKE_WORKERS, SMOKE_CPUS_PER_WORKER, SMOKE_GPUS_PER_WORKER = 1, 1, 0
# Images per class in the balanced training pools that the CIFAR-LT factories subsample (elm.data.cifar_lt).
CIFAR_POOL_PER_CLASS = {"cifar10_lt": 5000, "cifar100_lt": 500}


def smoke_epochs(epochs: int, eval_every: int) -> int:
    """Epochs of the smoke run: every kind of epoch the full run has (see the module docstring).

    Args:
        epochs: the full run's ``optim.epochs``.
        eval_every: ``train.eval_every``, kept as it is.
    """
    wanted = SMOKE_MIN_EPOCHS if eval_every == 1 else min(eval_every + 1, SMOKE_MAX_EPOCHS)
    return min(epochs, max(SMOKE_MIN_EPOCHS, wanted))


def scaled_schedule(warmup: int, milestones: list[int], full: int, small: int) -> tuple[int, list[int]]:
    """Warm-up epochs and step milestones of a ``full``-epoch schedule compressed to ``small`` epochs.

    A milestone ``m`` decays the lr from 0-based epoch ``m`` on (``elm.schedule``), so one at or past ``small``
    is never reached and is dropped. A warm-up keeps at least one epoch (and ends before the last one).
    """
    ratio = small / full
    scaled_warmup = min(max(1, round(warmup * ratio)), small - 1) if warmup > 0 else 0
    scaled = [max(1, round(m * ratio)) for m in milestones]
    return scaled_warmup, [m for m in scaled if m < small]


def smoke_grace_period(grace: int, eval_every: int, full: int, small: int) -> int:
    """ASHA's first rung: the full file's multiple of ``eval_every``, scaled to the smoke epochs, at least one."""
    rungs = max(1, round(grace / eval_every * small / full))
    return min(small, eval_every * rungs)


def _data_arg(cfg: ExperimentConfig, key: str) -> Any:
    """A data kwarg as the factory will see it: the config's value, else the factory's default."""
    if key in cfg.data.kwargs:
        return cfg.data.kwargs[key]
    param = inspect.signature(DATASETS.get(cfg.data.name)).parameters.get(key)
    return None if param is None or param.default is inspect.Parameter.empty else param.default


def smoke_train_cap(name: str, imbalance_ratio: float, val_per_class: int) -> int | None:
    """Per-class cap on a CIFAR-LT training set that keeps ``min(rho, SMOKE_IMBALANCE_RATIO)`` (None: no cap).

    The capped counts are ``min(n_c, cap)``: the head is cut to ``cap`` and the tail keeps its ``n_min`` images,
    so the smoke set's imbalance ratio is ``cap / n_min``.
    """
    pool = CIFAR_POOL_PER_CLASS.get(name)
    if pool is None:
        return None
    n_max = pool - val_per_class  # the holdout comes out of the pool first (elm.data.longtail)
    n_min = max(1, int(n_max * (1.0 / imbalance_ratio)))  # the rarest class, as elm.data.longtail truncates it
    cap = SMOKE_IMBALANCE_RATIO * n_min
    return cap if cap < n_max else None


def _data_overrides(cfg: ExperimentConfig) -> dict[str, Any]:
    """The dataset's size knobs shrunk: the arguments its factory marks ``Size(role)`` (``elm.registry``)."""
    knob = {marker.role: arg for arg, marker in DATASETS.marked(cfg.data.name, Size).items()}
    out: dict[str, Any] = {}
    val = _data_arg(cfg, knob["val_per_class"]) if "val_per_class" in knob else None
    if val:
        val = min(int(val), SMOKE_VAL_PER_CLASS)
        out[f"data.{knob['val_per_class']}"] = val
    if "max_train_per_class" in knob and "imbalance_ratio" in knob:
        cap = smoke_train_cap(
            DATASETS.canonical(cfg.data.name, cfg.data.kwargs),
            float(_data_arg(cfg, knob["imbalance_ratio"])),
            int(val or 0),
        )
        current = _data_arg(cfg, knob["max_train_per_class"])
        if cap is not None and (current is None or cap < current):
            out[f"data.{knob['max_train_per_class']}"] = cap
    if "max_test_per_class" in knob:
        current = _data_arg(cfg, knob["max_test_per_class"])
        out[f"data.{knob['max_test_per_class']}"] = min(SMOKE_TEST_PER_CLASS, current or SMOKE_TEST_PER_CLASS)
    size = knob.get("image_size")  # only a size the file sets: synthetic data is drawn at its size already
    if size in cfg.data.kwargs and cfg.data.kwargs[size] > SMOKE_IMAGE_SIZE:
        out[f"data.{size}"] = SMOKE_IMAGE_SIZE
    return out


def smoke(cfg: ExperimentConfig) -> ExperimentConfig:
    """The same experiment at toy size; only sizes change (module docstring: what, how and why).

    Args:
        cfg: a validated full config (its platform blocks valid too).
    Returns:
        the smoke config, validated.
    Raises:
        ConfigError: a platform block of ``cfg`` is invalid.
    """
    return from_dict(smoke_raw(cfg))


def smoke_raw(cfg: ExperimentConfig) -> dict[str, Any]:
    """``smoke(cfg)`` as a raw mapping, not validated yet (``platform.plan`` edits it further, then validates).

    Raises:
        ConfigError: a platform block of ``cfg`` is invalid (``parse_platform``: the full run's blocks must be
            valid, not only their smoked version).
    """
    spec = parse_platform(cfg)
    raw = cfg.to_dict()
    full, eval_every = cfg.optim.epochs, cfg.train.eval_every
    epochs = smoke_epochs(full, eval_every)
    warmup, milestones = scaled_schedule(cfg.optim.warmup_epochs, list(cfg.optim.milestones), full, epochs)
    steps = max(1, math.ceil(SMOKE_TRAIN_IMAGES / (epochs * cfg.optim.batch_size)))
    if cfg.train.max_steps_per_epoch:
        steps = min(steps, cfg.train.max_steps_per_epoch)
    overrides: dict[str, Any] = {
        "optim.epochs": epochs,
        "optim.warmup_epochs": warmup,
        "optim.milestones": milestones,
        "train.max_steps_per_epoch": steps,
        **_data_overrides(cfg),
    }
    tune: Mapping[str, Any] = raw.setdefault("tune", {}) or {}
    if spec.ablation is None and spec.tune.searcher != "grid" and spec.tune.num_samples > SMOKE_TRIALS:
        overrides["tune.num_samples"] = SMOKE_TRIALS
    if spec.tune.scheduler == "asha":
        grace = smoke_grace_period(spec.tune.grace_period, eval_every, full, epochs)
        if grace != tune.get("grace_period", spec.tune.grace_period):
            overrides["tune.grace_period"] = grace
    if spec.ablation is not None:
        raw["ablation"] = {**raw["ablation"], "seeds": list(spec.ablation.seeds)[:SMOKE_SEEDS]}
    raw["resources"] = dict(raw.get("resources") or {})
    res = spec.resources
    overrides.update(
        {
            "resources.num_workers": SMOKE_WORKERS,
            "resources.cpus_per_worker": SMOKE_CPUS_PER_WORKER,
            "resources.gpus_per_worker": SMOKE_GPUS_PER_WORKER,
        }
    )
    if res.launcher == "auto" and not res.runs_in_trial:
        # What auto means for the full run (Ray Train for several workers), not what it would mean for one.
        overrides["resources.launcher"] = "ray_train"
    return set_keys(raw, overrides)
