"""Build the Ray Tune objects of a planned sweep: param space, searcher, scheduler, trainable, tracker, Tuner.

Nothing here starts Ray; ``platform.tune.run`` does, then calls ``build_tuner``. Tune's state goes to
``<storage>/ray`` and the trials' own folders to ``<storage>/train`` through Ray's storage API (``platform.storage``;
by default the storage folder is the experiment folder).
"""

from __future__ import annotations

from typing import Any

from elm.config import ConfigError
from platform.best import EPOCH
from platform.code_version import same_code_trainable
from platform.layout import RAY_DIR, TRAIN_DIR
from platform.plan import Plan
from platform.search_spaces import to_tune
from platform.searchers import SEARCHERS

DRIVER_MEMORY_BYTES = 256 * 2**20
CHECKPOINTS_KEPT = 2  # Tune's copies of in-trial checkpoints per trial (each trial's own folder keeps its newest)


def param_space(plan: Plan) -> dict[str, Any]:
    """Tune's param space: searched keys, plus the ``variant`` x ``seed`` grid of an ablation."""
    from ray import tune

    space = to_tune(plan.space)
    if plan.spec.ablation is not None:
        space["variant"] = tune.grid_search(list(plan.spec.ablation.variants))
        space["seed"] = tune.grid_search(list(plan.spec.ablation.seeds))
    return space


def make_searcher(plan: Plan) -> Any:
    """The sweep's searcher from ``SEARCHERS``, behind the gate that only lets evaluated results through; None for
    Tune's own variant generator (grid and random)."""
    from platform.search_gate import EvaluatedResultsOnly

    t = plan.spec.tune
    entry = SEARCHERS[t.searcher]
    if entry.build is None:
        return None
    storage = None
    if t.study_storage:
        plan.out.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{plan.layout.optuna_db}"
    objectives = {"metric": list(t.metrics), "mode": list(t.modes)} if t.multi_objective else {}
    searcher = entry.build(
        plan.cfg.seed if t.seed is None else t.seed, plan.sweep_name, storage, sampler=t.sampler, **objectives
    )
    return EvaluatedResultsOnly(searcher, metric=t.metric, mode=t.mode, epochs=plan.cfg.optim.epochs)


def make_scheduler(plan: Plan) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    t = plan.spec.tune
    if t.scheduler == "fifo":
        return FIFOScheduler()
    return ASHAScheduler(
        time_attr=EPOCH,  # epochs, not reports: a trial resumed from a newer checkpoint reports fewer times
        max_t=plan.cfg.optim.epochs,
        grace_period=min(t.grace_period, plan.cfg.optim.epochs),
        reduction_factor=t.reduction_factor,
    )


def make_trainable(plan: Plan) -> Any:
    from ray import tune

    from platform.trainables.driver import train_driver_fn
    from platform.trainables.in_trial import train_in_trial_fn

    r = plan.spec.resources
    train_dir = plan.storage / TRAIN_DIR
    if r.runs_in_trial:
        # The trial trains in its own process, so it holds the worker's CPUs and GPUs itself.
        trainable = tune.with_parameters(
            same_code_trainable(train_in_trial_fn),
            code=plan.code,
            base=plan.cfg.to_dict(),
            variants=plan.variants,
            cpus=r.cpus_per_worker,
            train_dir=train_dir,
        )
        return tune.with_resources(trainable, {"CPU": r.cpus_per_worker, "GPU": r.gpus_per_worker})
    trainable = tune.with_parameters(
        same_code_trainable(train_driver_fn, forward_code=True),
        code=plan.code,
        base=plan.cfg.to_dict(),
        variants=plan.variants,
        resources=r,
        train_dir=train_dir,
        max_failures=plan.spec.tune.max_failures,
    )
    # The Tune trial only drives a TorchTrainer whose workers hold the CPUs/GPUs. It takes no CPU (even 0.01 would
    # keep a worker that needs a whole node's CPUs from starting); Ray needs a non-empty request, so it asks memory.
    return tune.with_resources(trainable, {"CPU": 0, "memory": DRIVER_MEMORY_BYTES})


def make_tracker(plan: Plan) -> Any:
    from platform.tracking import MlflowTracker

    tr = plan.spec.tracking
    plan.out.mkdir(parents=True, exist_ok=True)
    return MlflowTracker(
        tracking_uri=tr.uri or plan.layout.default_tracking_uri,
        experiment=tr.experiment or plan.cfg.name,
        sweep=plan.sweep_name,
        sweep_id=plan.sweep_id,
        epochs=plan.cfg.optim.epochs,
        base=plan.cfg.to_dict(),
        variants=plan.variants,
        artifact_location=None if tr.uri else plan.layout.mlartifacts.as_uri(),
        variant_sources=plan.variant_sources,
    )


def build_tuner(plan: Plan, tracker: Any, *, resume: bool, pending_guard: Any = None) -> Any:
    """A new ``tune.Tuner`` for ``plan``, or the interrupted one restored from its folder (``resume``).

    ``pending_guard``: a ``platform.failures.StopWhenNothingCanStart`` (on a joined cluster), added as a callback
    and as the experiment stopper.

    Raises:
        ConfigError: ``resume`` without an interrupted sweep, or a new sweep where one already is.
    """
    from ray import tune

    from platform.failures import NoRetryOnDeterministicFailure

    ray_dir = plan.storage / RAY_DIR
    experiment_path = ray_dir / plan.sweep_name
    trainable = make_trainable(plan)
    if resume:
        where = experiment_path.ray_storage()
        fs = where.get("storage_filesystem")
        if not tune.Tuner.can_restore(where["storage_path"], storage_filesystem=fs):
            raise ConfigError(f"--resume: no interrupted sweep at {experiment_path}; run without --resume first")
        return tune.Tuner.restore(
            where["storage_path"],
            trainable=trainable,
            resume_unfinished=True,
            resume_errored=False,
            param_space=param_space(plan),
            storage_filesystem=fs,
        )
    if experiment_path.exists():
        raise ConfigError(
            f"{experiment_path} already holds a sweep: pass --resume to continue it, or --out for a new folder"
        )
    t = plan.spec.tune
    # Several metrics: the searcher holds them (Ray's OptunaSearch takes lists); TuneConfig takes one metric only.
    metric, mode = (None, None) if t.multi_objective else (t.metric, t.mode)
    num_samples = 1 if plan.spec.ablation is not None else SEARCHERS[t.searcher].num_samples(t.num_samples)
    return tune.Tuner(
        trainable,
        param_space=param_space(plan),
        tune_config=tune.TuneConfig(
            metric=metric,
            mode=mode,
            num_samples=num_samples,
            search_alg=make_searcher(plan),
            scheduler=make_scheduler(plan),
            max_concurrent_trials=t.max_concurrent or None,
        ),
        run_config=tune.RunConfig(
            name=plan.sweep_name,
            **ray_dir.ray_storage(),
            callbacks=[NoRetryOnDeterministicFailure(), tracker, *([pending_guard] if pending_guard else [])],
            stop=pending_guard,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=CHECKPOINTS_KEPT),
            # Ray Train restarts dead workers of a TorchTrainer trial itself; an in-trial trial is restarted by Tune.
            # Deterministic failures are never retried (platform.failures).
            failure_config=tune.FailureConfig(
                max_failures=t.max_failures if plan.spec.resources.runs_in_trial else 0, fail_fast=False
            ),
        ),
    )
