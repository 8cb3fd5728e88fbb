"""Typed, validated platform blocks of an experiment YAML: ``tune``, ``resources``, ``tracking``, ``ablation``.

Each block is a frozen dataclass whose fields are the schema; ``elm.config.parse_section`` rejects
unknown keys, wrong types and out-of-range values with the key's name, before Ray starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Mapping

from elm.config import ConfigError, ExperimentConfig, parse_section
from elm.registry import Choice, Interval
from platform.searchers import SAMPLERS, SEARCHERS
from platform.variant_sets import expand_variant_set

GPU_FRACTION_STEPS = 10_000  # Ray stores resource amounts in units of 1/10000


@dataclass(frozen=True)
class TuneSpec:
    """How trials are searched and scheduled."""

    searcher: Annotated[str, Choice(*SEARCHERS)] = "optuna"
    # One metric (a string), or several (a list, with a list of modes of the same length): a multi-objective search
    # whose result is the Pareto front of the persisted Optuna study (platform.pareto). A one-item list is one metric.
    metric: str | tuple[str, ...] = "test/balanced_acc"
    mode: str | tuple[str, ...] = "max"
    sampler: Annotated[str, Choice(*SAMPLERS)] = "tpe"  # Optuna's sampler; both take one metric or several
    num_samples: Annotated[int, Interval(ge=1)] = 16
    scheduler: Annotated[str, Choice("asha", "fifo")] = "asha"
    grace_period: Annotated[int, Interval(ge=1)] = 10  # epochs before ASHA may stop a trial
    reduction_factor: Annotated[float, Interval(gt=1)] = 3.0
    max_concurrent: Annotated[int, Interval(ge=0)] = 0  # 0: as many as resources allow
    seed: int | None = None  # defaults to the experiment seed
    study_storage: bool = False  # keep the Optuna study in <experiment>/optuna.db (SQLite)
    max_failures: Annotated[int, Interval(ge=0)] = 2  # worker restarts from the last checkpoint per trial
    # On a joined cluster (--address): end the sweep when trials have waited this long while none ran (0: never).
    max_pending_s: Annotated[float, Interval(ge=0)] = 600.0
    # Where Tune's state and the trials' checkpoints go (platform.storage): a local or shared folder, or a URI such
    # as s3://bucket/prefix (--storage). None: the experiment folder itself. Required to be shared on a cluster.
    storage: str | None = None

    def __post_init__(self) -> None:
        # YAML gives lists; a one-item list is the single-metric case, spelt as a string everywhere downstream
        for key in ("metric", "mode"):
            value = getattr(self, key)
            if isinstance(value, (list, tuple)):
                object.__setattr__(self, key, value[0] if len(value) == 1 else tuple(value))

    @property
    def metrics(self) -> tuple[str, ...]:
        """The tuned metrics, in order (one for a single-objective search)."""
        return (self.metric,) if isinstance(self.metric, str) else tuple(self.metric)

    @property
    def modes(self) -> tuple[str, ...]:
        """``max`` or ``min`` per metric of ``metrics``."""
        return (self.mode,) if isinstance(self.mode, str) else tuple(self.mode)

    @property
    def multi_objective(self) -> bool:
        return len(self.metrics) > 1

    def check_objectives(self) -> None:
        """Refuse metric/mode lists the searcher, scheduler or study cannot take.

        Raises:
            ConfigError: naming the key: an empty list, a mode per metric missing or not max/min, a metric named
                twice; with several metrics: a searcher without multi-objective support, ASHA (it compares one
                metric), or no persisted study (the Pareto front is read from it).
        """
        metrics, modes = self.metrics, self.modes
        if not metrics or not all(isinstance(m, str) and m for m in metrics):
            raise ConfigError(f"tune.metric={list(metrics)!r}: give one metric name or a list of them")
        if len(modes) != len(metrics):
            raise ConfigError(
                f"tune.mode: {len(modes)} mode(s) for {len(metrics)} metric(s) in tune.metric; "
                f"give one mode (max or min) per metric, in the same order"
            )
        bad = [m for m in modes if m not in ("max", "min")]
        if bad:
            raise ConfigError(f"tune.mode={bad[0]!r} is not allowed; choose one of ['max', 'min'] per metric")
        if len(set(metrics)) != len(metrics):
            raise ConfigError(f"tune.metric: {list(metrics)} names a metric twice")
        if not self.multi_objective:
            return
        takes = [name for name, entry in SEARCHERS.items() if entry.multi_objective]
        if not SEARCHERS[self.searcher].multi_objective:
            raise ConfigError(
                f"tune.searcher: {self.searcher} takes one metric; with several metrics use "
                f"tune.searcher: {' or '.join(takes)} (tune.sampler: {' | '.join(SAMPLERS)})"
            )
        if self.scheduler == "asha":
            raise ConfigError("tune.scheduler: ASHA compares one metric; use tune.scheduler: fifo with several metrics")
        if not self.study_storage:
            raise ConfigError(
                "tune.study_storage: with several metrics the Pareto front is read from the persisted "
                "Optuna study; set tune.study_storage: true"
            )


@dataclass(frozen=True)
class ResourcesSpec:
    """Per-trial resources, and how a trial runs its training.

    ``launcher``: ``ray_train`` runs every trial as a Ray Train ``TorchTrainer`` (a controller actor and
    ``num_workers`` worker actors, DDP across them); ``in_trial`` trains inside the Tune trial's own process
    (one worker, no extra actors: ~10 s less start-up per trial); ``auto`` picks ``in_trial`` for one worker and
    ``ray_train`` otherwise.
    """

    num_workers: Annotated[int, Interval(ge=1)] = 1
    cpus_per_worker: Annotated[float, Interval(gt=0)] = 1.0
    # A fraction (e.g. 0.25) packs several one-worker trials on one GPU: Ray then starts up to 1/fraction of them
    # per GPU (CPUs permitting); each trains on the whole device, sharing its memory and compute.
    gpus_per_worker: Annotated[float, Interval(ge=0)] = 0.0
    launcher: Annotated[str, Choice("auto", "ray_train", "in_trial")] = "auto"

    @property
    def runs_in_trial(self) -> bool:
        return self.launcher == "in_trial" or (self.launcher == "auto" and self.num_workers == 1)

    def check_gpus(self) -> None:
        """Refuse a GPU share Ray or the launcher cannot honour.

        Raises:
            ConfigError: naming ``resources.gpus_per_worker``: a fraction with more than one worker (DDP ranks
                cannot share one GPU: NCCL refuses two ranks on one device), a fraction finer than Ray's
                resource unit of 0.0001, or more than 1 GPU (a worker's ``elm.train.fit`` trains on one device, so
                the others would sit idle; more GPUs per trial are more workers).
        """
        g = self.gpus_per_worker
        key = f"resources.gpus_per_worker={g:g}"
        if g > 1:
            raise ConfigError(
                f"{key}: a worker trains on one GPU and would leave the rest idle; for more GPUs per "
                f"trial set resources.num_workers (one DDP rank per GPU) with gpus_per_worker: 1"
            )
        if 0 < g < 1 and self.num_workers > 1:
            raise ConfigError(
                f"{key}: a GPU fraction packs one-worker trials; with resources.num_workers="
                f"{self.num_workers} the DDP ranks would share one GPU; use whole GPUs"
            )
        if 0 < g < 1 and abs(g * GPU_FRACTION_STEPS - round(g * GPU_FRACTION_STEPS)) > 1e-9:
            raise ConfigError(f"{key}: Ray counts resources in steps of {1 / GPU_FRACTION_STEPS:g}; use e.g. 0.25")


@dataclass(frozen=True)
class TrackingSpec:
    """MLflow destination; the default is a SQLite store inside the experiment folder."""

    uri: str | None = None
    experiment: str | None = None  # defaults to the config name


@dataclass(frozen=True)
class AblationSpec:
    """Named variants (each a set of dotted overrides) crossed with seeds; a block naming a ``variant_set`` is
    expanded first (``platform.variant_sets``)."""

    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0, 1, 2)


@dataclass(frozen=True)
class PlatformSpec:
    tune: TuneSpec
    resources: ResourcesSpec
    tracking: TrackingSpec
    ablation: AblationSpec | None


def parse_platform(cfg: ExperimentConfig) -> PlatformSpec:
    """Validate the platform blocks of ``cfg`` (``search`` is parsed by ``platform.search_spaces``)."""
    blocks = cfg.platform
    ablation = None
    if "ablation" in blocks:
        ablation = parse_section(AblationSpec, "ablation", expand_variant_set(blocks["ablation"]))
        if not ablation.variants:
            raise ConfigError("ablation.variants must name at least one variant")
        for name, overrides in ablation.variants.items():
            if not isinstance(overrides, Mapping):
                raise ConfigError(f"ablation.variants.{name} must be a mapping of dotted keys to values")
    resources = parse_section(ResourcesSpec, "resources", blocks.get("resources"))
    resources.check_gpus()
    if resources.launcher == "in_trial" and resources.num_workers > 1:
        raise ConfigError(
            "resources.launcher: in_trial trains in one process; with num_workers > 1 use ray_train (or auto)"
        )
    tune = parse_section(TuneSpec, "tune", blocks.get("tune"))
    tune.check_objectives()
    return PlatformSpec(
        tune=tune,
        resources=resources,
        tracking=parse_section(TrackingSpec, "tracking", blocks.get("tracking")),
        ablation=ablation,
    )
