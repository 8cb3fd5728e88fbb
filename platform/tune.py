"""Run an experiment's sweep or ablation with Ray Tune (Optuna TPE + ASHA, or a grid), Ray Train and MLflow.

    python -m platform.tune ablations/cifar100.yaml [--set key=value ...] [--smoke] [--resume] [--address ADDR]

Everything is validated before Ray starts (config, platform blocks, search space, dataset presence). Outputs go
to ``experiments/<name>/`` (or ``--out``): ``ray/`` (Tune and Train state with checkpoints), ``mlflow.db`` and
``mlartifacts/`` (the default MLflow store), ``optuna.db`` (with ``tune.study_storage``), ``trials.csv`` and
``summary.md``. Interrupted (even by SIGKILL)? Run the same command with ``--resume``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from elm.config import ConfigError, ExperimentConfig, load_config, parse_set_args, with_overrides
from elm.data import load_data
from platform.search_spaces import Dimension, parse_search, to_tune, validate_space
from platform.smoke import smoke
from platform.spec import PlatformSpec, parse_platform

RAY_DIR = "ray"
TRAIN_DIR = "train"
DRIVER_MEMORY_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Plan:
    """A validated sweep: nothing in it has touched Ray yet."""

    cfg: ExperimentConfig
    spec: PlatformSpec
    space: dict[str, Dimension]
    out: Path
    variant_sources: dict[str, dict[str, Any]] = field(default_factory=dict)  # variants taken from a sweep

    @property
    def sweep_name(self) -> str:
        return self.cfg.name

    @property
    def variants(self) -> dict[str, dict[str, Any]]:
        return {k: dict(v) for k, v in self.spec.ablation.variants.items()} if self.spec.ablation else {}


def make_plan(
    config: str, overrides: dict[str, Any], *, smoke_run: bool = False, out: str | None = None, check_data: bool = True
) -> Plan:
    """Load, shrink (``--smoke``) and validate everything an experiment needs, before Ray starts.

    ``check_data=False`` skips loading the dataset (tests that validate configs of data this machine lacks).

    Raises:
        ConfigError: naming the offending key; FileNotFoundError (DatasetNotFoundError) for missing data.
    """
    cfg = load_config(config)
    if smoke_run:
        parse_platform(cfg)  # the full run's blocks must be valid too, not only their smoked version
        cfg = smoke(cfg)
    cfg = absolute_data_paths(with_overrides(cfg, overrides))  # --set wins over --smoke
    spec = parse_platform(cfg)
    sources: dict[str, dict[str, Any]] = {}
    if spec.ablation is not None:
        cfg, sources = _resolve_from_sweep(cfg)
        spec = parse_platform(cfg)
    space = parse_search(cfg.platform.get("search"))
    validate_space(space, cfg, spec.tune.searcher)
    if spec.ablation is not None:
        if spec.tune.searcher != "grid":
            raise ConfigError("an ablation runs a grid of variants x seeds: set tune.searcher: grid")
        if spec.tune.scheduler != "fifo":
            raise ConfigError("an ablation must not stop runs early: set tune.scheduler: fifo")
        for name, variant in spec.ablation.variants.items():
            try:
                with_overrides(cfg, dict(variant))
            except ConfigError as e:
                raise ConfigError(f"ablation.variants.{name}: {e}") from None
    if not space and spec.ablation is None and spec.tune.searcher != "grid":
        raise ConfigError("nothing to search: add a search: block (or an ablation: block)")
    if check_data:
        load_data(cfg.data.name, cfg.data.kwargs)  # fails now, with the path to fix, if the dataset is missing
    return Plan(cfg=cfg, spec=spec, space=space, out=Path(out or Path("experiments") / cfg.name).resolve(),
                variant_sources=sources)


def _resolve_from_sweep(cfg: ExperimentConfig) -> tuple[ExperimentConfig, dict[str, dict[str, Any]]]:
    """``cfg`` with every ``ablation.variants.*.from_sweep`` replaced by that sweep's best values."""
    from platform.sweep_best import resolve_variants

    ablation = dict(cfg.platform["ablation"])
    ablation["variants"], sources = resolve_variants(ablation["variants"])
    return replace(cfg, platform={**cfg.platform, "ablation": ablation}), sources


PATH_KEYS = ("root", "split_dir")  # data kwargs that name folders


def absolute_data_paths(cfg: ExperimentConfig) -> ExperimentConfig:
    """Relative data folders resolved against the launch directory: Ray workers run elsewhere."""
    fixed = {f"data.{k}": str(Path(v).resolve()) for k, v in cfg.data.kwargs.items()
             if k in PATH_KEYS and isinstance(v, str) and not Path(v).is_absolute()}
    return with_overrides(cfg, fixed) if fixed else cfg


def param_space(plan: Plan) -> dict[str, Any]:
    """Tune's param space: searched keys, plus the ``variant`` x ``seed`` grid of an ablation."""
    from ray import tune

    space = to_tune(plan.space)
    if plan.spec.ablation is not None:
        space["variant"] = tune.grid_search(list(plan.spec.ablation.variants))
        space["seed"] = tune.grid_search(list(plan.spec.ablation.seeds))
    return space


def make_searcher(plan: Plan) -> Any:
    t = plan.spec.tune
    seed = plan.cfg.seed if t.seed is None else t.seed
    if t.searcher != "optuna":
        return None  # Tune's BasicVariantGenerator: grid axes expanded, random ones sampled
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    storage = None
    if t.study_storage:
        plan.out.mkdir(parents=True, exist_ok=True)
        storage = optuna.storages.RDBStorage(f"sqlite:///{plan.out / 'optuna.db'}")
    return OptunaSearch(
        sampler=optuna.samplers.TPESampler(seed=seed), study_name=plan.sweep_name, storage=storage
    )


def make_scheduler(plan: Plan) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    t = plan.spec.tune
    if t.scheduler == "fifo":
        return FIFOScheduler()
    return ASHAScheduler(
        time_attr="training_iteration",
        max_t=plan.cfg.optim.epochs,
        grace_period=min(t.grace_period, plan.cfg.optim.epochs),
        reduction_factor=t.reduction_factor,
    )


def make_trainable(plan: Plan) -> Any:
    from ray import tune

    from platform.trainables.driver import train_driver_fn
    from platform.trainables.in_trial import train_in_trial_fn

    r = plan.spec.resources
    storage_path = str(plan.out / TRAIN_DIR)
    if r.runs_in_trial:
        # The trial trains in its own process, so it holds the worker's CPUs and GPUs itself.
        trainable = tune.with_parameters(train_in_trial_fn, base=plan.cfg.to_dict(), variants=plan.variants,
                                         cpus=r.cpus_per_worker, storage_path=storage_path)
        return tune.with_resources(trainable, {"CPU": r.cpus_per_worker, "GPU": r.gpus_per_worker})
    trainable = tune.with_parameters(
        train_driver_fn,
        base=plan.cfg.to_dict(),
        variants=plan.variants,
        resources=r,
        storage_path=storage_path,
        max_failures=plan.spec.tune.max_failures,
    )
    # The Tune trial only drives a TorchTrainer whose workers hold the CPUs/GPUs. It takes no CPU (even 0.01 would
    # keep a worker that needs a whole node's CPUs from starting); Ray needs a non-empty request, so it asks memory.
    return tune.with_resources(trainable, {"CPU": 0, "memory": DRIVER_MEMORY_BYTES})


def make_tracker(plan: Plan) -> Any:
    from platform.tracking import MlflowTracker, default_tracking_uri

    tr = plan.spec.tracking
    plan.out.mkdir(parents=True, exist_ok=True)
    return MlflowTracker(
        tracking_uri=tr.uri or default_tracking_uri(plan.out),
        experiment=tr.experiment or plan.cfg.name,
        sweep=plan.sweep_name,
        base=plan.cfg.to_dict(),
        variants=plan.variants,
        artifact_location=None if tr.uri else (plan.out / "mlartifacts").as_uri(),
        variant_sources=plan.variant_sources,
    )


def build_tuner(plan: Plan, *, resume: bool) -> Any:
    from ray import tune

    experiment_path = plan.out / RAY_DIR / plan.sweep_name
    trainable = make_trainable(plan)
    if resume:
        if not tune.Tuner.can_restore(str(experiment_path)):
            raise ConfigError(f"--resume: no interrupted sweep at {experiment_path}; run without --resume first")
        return tune.Tuner.restore(
            str(experiment_path), trainable=trainable, resume_unfinished=True, resume_errored=False,
            param_space=param_space(plan),
        )
    if experiment_path.exists():
        raise ConfigError(
            f"{experiment_path} already holds a sweep: pass --resume to continue it, or --out for a new folder"
        )
    t = plan.spec.tune
    num_samples = 1 if (plan.spec.ablation is not None or t.searcher == "grid") else t.num_samples
    return tune.Tuner(
        trainable,
        param_space=param_space(plan),
        tune_config=tune.TuneConfig(
            metric=t.metric, mode=t.mode, num_samples=num_samples, search_alg=make_searcher(plan),
            scheduler=make_scheduler(plan), max_concurrent_trials=t.max_concurrent or None,
        ),
        run_config=tune.RunConfig(
            name=plan.sweep_name,
            storage_path=str(plan.out / RAY_DIR),
            callbacks=[make_tracker(plan)],
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),  # in-trial checkpoints: the last two per trial
            # Ray Train restarts dead workers of a TorchTrainer trial itself; an in-trial trial is restarted by Tune.
            failure_config=tune.FailureConfig(
                max_failures=t.max_failures if plan.spec.resources.runs_in_trial else 0, fail_fast=False),
        ),
    )


def summarize(results: Any, plan: Plan) -> str:
    """Write ``trials.csv`` (every trial, pandas) and ``summary.md``; return the summary text."""
    import pandas as pd

    from platform.trainables.common import HISTORY_KEY, PER_CLASS_KEY

    t = plan.spec.tune
    df: pd.DataFrame = results.get_dataframe()
    df = df[[c for c in df.columns if c not in (PER_CLASS_KEY, HISTORY_KEY)]]
    df.to_csv(plan.out / "trials.csv", index=False)
    lines = [f"# {plan.sweep_name}: {len(df)} trials, metric {t.metric} ({t.mode}, last reported epoch)", ""]
    errors = [r for r in results if r.error is not None]
    if t.metric in df.columns and df[t.metric].notna().any():
        best = df.loc[df[t.metric].idxmax() if t.mode == "max" else df[t.metric].idxmin()]
        cfg_cols = [c for c in df.columns if c.startswith("config/")]
        lines += ["## Best trial", "", f"- trial `{best['trial_id']}`: {t.metric} = {best[t.metric]:.4f}"]
        lines += [f"- {c[len('config/'):]} = {best[c]}" for c in cfg_cols]
        lines.append("")
        if "config/variant" in df.columns:
            cols = [c for c in (t.metric, "test/acc_many", "test/acc_medium", "test/acc_few",
                                "test/posthoc_tau1/balanced_acc") if c in df.columns]
            g = df.groupby("config/variant")[cols].agg(["mean", "std", "count"])
            lines += ["## Per variant (mean, std over seeds)", "", g.to_markdown() if _has_tabulate() else g.to_string(), ""]
    if errors:
        lines += ["## Failed trials", ""] + [f"- {type(r.error).__name__}: {str(r.error).strip().splitlines()[-1]}"
                                             for r in errors]
    text = "\n".join(lines) + "\n"
    (plan.out / "summary.md").write_text(text)
    return text


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


LAUNCHER_FILE = "launcher.txt"  # the launcher a sweep started with; --resume must use the same trainable


def resumed_plan(plan: Plan) -> Plan:
    """The plan of the sweep in ``plan.out`` as it was started: its saved ``config.yaml`` (``from_sweep`` values
    already resolved there), ``variant_sources.yaml`` and launcher, whatever the YAML or ``--set`` say now.

    Resuming with anything else would train the remaining trials differently from the finished ones, and Tune
    refuses a trainable other than the one it pickled.
    """
    import yaml

    from elm.config import from_dict
    from platform.sweep_best import SOURCES_FILE

    saved = plan.out / "config.yaml"
    if not saved.is_file():
        return plan  # nothing saved: build_tuner explains that there is no sweep to resume
    cfg = from_dict(yaml.safe_load(saved.read_text()))
    if cfg.to_dict() != plan.cfg.to_dict():
        print(f"note: --resume continues with the config the sweep started with ({saved}); "
              "changes made since in the YAML or with --set are ignored", flush=True)
    launcher_file = plan.out / LAUNCHER_FILE
    launcher = launcher_file.read_text().strip() if launcher_file.is_file() else "ray_train"  # older sweeps
    resources = {**dict(cfg.platform.get("resources") or {}), "launcher": launcher}
    cfg = replace(cfg, platform={**cfg.platform, "resources": resources})
    sources_file = plan.out / SOURCES_FILE
    sources = yaml.safe_load(sources_file.read_text()) if sources_file.is_file() else {}
    return Plan(cfg=cfg, spec=parse_platform(cfg), space=parse_search(cfg.platform.get("search")), out=plan.out,
                variant_sources=sources or {})


def record_start(plan: Plan) -> None:
    """Save what ``--resume`` needs to continue this sweep unchanged (only when a new sweep starts)."""
    import yaml

    from platform.sweep_best import SOURCES_FILE

    (plan.out / "config.yaml").write_text(plan.cfg.to_yaml())
    (plan.out / LAUNCHER_FILE).write_text("in_trial\n" if plan.spec.resources.runs_in_trial else "ray_train\n")
    if plan.variant_sources:
        (plan.out / SOURCES_FILE).write_text(yaml.safe_dump(plan.variant_sources, sort_keys=False))
    for name, src in plan.variant_sources.items():
        print(f"variant {name}: {src['values']} from trial {src['trial_id']} of {src['sweep']} "
              f"({src['metric']} = {src['value']:.4f})", flush=True)


def run(plan: Plan, *, resume: bool = False, address: str | None = None) -> Any:
    """Start (or join) Ray, run the sweep, write the summary; returns Tune's ResultGrid."""
    import ray

    from platform.runtime import ray_init_kwargs

    if resume:
        plan = resumed_plan(plan)
    plan.out.mkdir(parents=True, exist_ok=True)
    # Evaluation (hence the tuned metric) runs every train.eval_every epochs and not in a diverged trial's last
    # report; Tune must accept results without it (ASHA and the searchers skip such results).
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    ray.init(**ray_init_kwargs(address), log_to_driver=True, ignore_reinit_error=True)
    try:
        tuner = build_tuner(plan, resume=resume)  # refuses an existing sweep (fresh) or a missing one (--resume)
        if not resume:
            record_start(plan)
        results = tuner.fit()
        print(summarize(results, plan), flush=True)
        return results
    finally:
        ray.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m platform.tune", description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="experiment YAML, e.g. ablations/cifar100.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any key, e.g. --set loss.tau=0.5 --set tune.num_samples=32")
    parser.add_argument("--smoke", action="store_true", help="a 1-2 minute version: tiny data, 2 epochs, 2 trials")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted sweep in the same folder")
    parser.add_argument("--address", default=None, help="an existing Ray cluster (also RAY_ADDRESS)")
    parser.add_argument("--out", default=None, help="experiment folder (default experiments/<name>)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        plan = make_plan(args.config, parse_set_args(args.overrides), smoke_run=args.smoke, out=args.out)
        address = args.address
        if address is None:
            address = os.environ.get("RAY_ADDRESS") or None
        results = run(plan, resume=args.resume, address=address)
    except (ConfigError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"done in {time.perf_counter() - t0:.0f} s; outputs in {plan.out}", flush=True)
    return 1 if any(r.error is not None for r in results) and not any(r.error is None for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
