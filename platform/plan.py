"""Plan a sweep before Ray starts: load, shrink, override and validate everything that can be known up front.

No Ray import here. ``make_plan`` raises ``ConfigError`` (or ``DatasetNotFoundError``) naming the problem for: a
bad config or platform block, a search space whose sampled values do not fit their keys, a ``tune.metric`` the
trials will not report (checked against the metric names an evaluation of this dataset's class counts gives), an
evaluation split the data lacks, long-tail counts that leave a class empty, missing or corrupt data, and an
output folder that is a file or not writable. The resume protocol sits here too: ``record_start`` writes what
``resumed_plan`` reads back.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import os

import yaml

from elm.config import ConfigError, ExperimentConfig, from_dict, load_config, with_overrides
from elm.data import load_data
from elm.metrics.reported import evaluation_metric_names, is_training_metric, training_metric_names
from elm.registry import LOSSES
from platform.layout import ExperimentDir, new_sweep_id
from platform.search_spaces import Dimension, parse_search, validate_space
from platform.smoke import smoke
from platform.spec import PlatformSpec, parse_platform
from platform.storage import SWEEP_FILES, StoragePath, is_default_storage, resolve_storage, sweep_storage

EXPERIMENTS_DIR = Path("experiments")
LAUNCHERS = ("in_trial", "ray_train")


@dataclass(frozen=True)
class Plan:
    """A validated sweep: nothing in it has touched Ray yet."""

    cfg: ExperimentConfig
    spec: PlatformSpec
    space: dict[str, Dimension]
    out: Path
    variant_sources: dict[str, dict[str, Any]] = field(default_factory=dict)  # variants taken from a sweep
    sweep_id: str = ""  # the sweep's own id (MLflow tags); new for a new sweep, read back on --resume

    @property
    def sweep_name(self) -> str:
        return self.cfg.name

    @property
    def layout(self) -> ExperimentDir:
        return ExperimentDir(self.out)

    @cached_property
    def storage(self) -> StoragePath:
        """The sweep's folder on its storage (``platform.storage``): ``ray/`` and ``train/`` live there."""
        return sweep_storage(self.spec.tune.storage, self.out)

    @property
    def variants(self) -> dict[str, dict[str, Any]]:
        return {k: dict(v) for k, v in self.spec.ablation.variants.items()} if self.spec.ablation else {}


def make_plan(
    config: str, overrides: dict[str, Any], *, smoke_run: bool = False, out: str | None = None,
    check_data: bool = True, resume: bool = False, storage: str | None = None,
) -> Plan:
    """Load, shrink (``--smoke``) and validate everything an experiment needs, before Ray starts.

    With ``resume`` the sweep in the output folder continues as it started (``resumed_plan``): the YAML and
    ``--set`` only name the folder. ``check_data=False`` skips loading the dataset (tests that validate configs of
    data this machine lacks). ``storage`` (``--storage``) sets ``tune.storage``; on ``resume`` it (or the YAML's
    ``tune.storage``) is where the sweep's saved config is fetched from when the output folder lacks it.

    Raises:
        ConfigError: naming the offending key, value or path; DatasetNotFoundError for missing data.
    """
    cfg = load_config(config)
    if smoke_run:
        parse_platform(cfg)  # the full run's blocks must be valid too, not only their smoked version
        cfg = smoke(cfg)
    if storage is not None:
        overrides = {**overrides, "tune.storage": storage}
    cfg = absolute_storage_path(absolute_data_paths(with_overrides(cfg, overrides)))  # --set wins over --smoke
    layout = ExperimentDir(Path(out or EXPERIMENTS_DIR / cfg.name).resolve())
    if resume:
        plan = resumed_plan(layout, storage=(cfg.platform.get("tune") or {}).get("storage"), asked=storage)
        if plan.spec.tune.storage is not None:
            check_storage(plan.storage, plan.spec.tune.storage)
        if plan.spec.tracking.uri:  # a server that was up when the sweep started may be down now
            check_tracking_uri(plan.spec.tracking.uri)
        if check_data:
            check_metric_and_data(plan.cfg, plan.spec)
        return plan
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
    if spec.tune.scheduler == "asha" and "train.eval_every" in space:
        raise ConfigError("search.train.eval_every: ASHA compares trials at the same evaluated epochs; "
                          "do not search the evaluation cadence")
    check_metric_prefix(cfg, spec)
    if spec.tracking.uri:
        check_tracking_uri(spec.tracking.uri)
    if check_data:
        check_metric_and_data(cfg, spec)
    layout.check_writable()
    plan = Plan(cfg=cfg, spec=spec, space=space, out=layout.root, variant_sources=sources, sweep_id=new_sweep_id())
    if spec.tune.storage is not None:  # resolves a remote store now: unreachable, no bucket or no credentials fail
        check_storage(plan.storage, spec.tune.storage)
    return plan


def check_storage(folder: StoragePath, root: str) -> None:
    """A local storage folder must be or become a writable folder (remote ones were reached by ``resolve_storage``).

    Raises:
        ConfigError: naming the storage root and the folder that is not writable.
    """
    local = folder.local()
    if local is None:
        return
    path = local
    while not path.exists():
        path = path.parent
    if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"--storage {root}: {path} is not a writable folder")


def absolute_storage_path(cfg: ExperimentConfig) -> ExperimentConfig:
    """A relative local ``tune.storage`` resolved against the launch directory (the driver's, saved for resume)."""
    value = (cfg.platform.get("tune") or {}).get("storage")
    if not isinstance(value, str) or "://" in value or Path(value).is_absolute():
        return cfg
    resolve_storage(value)  # refuses 's3:/bucket' (a mistyped scheme), which would become the local folder 's3:'
    return with_overrides(cfg, {"tune.storage": str(Path(value).expanduser().resolve())})


TRACKING_SCHEMES = ("sqlite", "http", "https", "file", "postgresql", "mysql", "mssql", "databricks")
TRACKING_PROBE_S = 5.0  # a tracking server must answer its /health page within this


def check_tracking_uri(uri: str, timeout_s: float = TRACKING_PROBE_S) -> None:
    """``tracking.uri`` must be a store MLflow can write to: a known scheme, an SQLite file whose folder exists,
    and for ``http(s)://`` a server that answers its ``/health`` page now (MLflow itself would retry silently for
    minutes).

    Raises:
        ConfigError: naming the URI and what is wrong.
    """
    import urllib.error
    import urllib.request
    from urllib.parse import urlsplit

    scheme = urlsplit(uri).scheme.split("+")[0]
    if scheme not in TRACKING_SCHEMES and not (scheme == "" and uri.startswith("/")):
        raise ConfigError(f"tracking.uri '{uri}': unsupported scheme '{scheme}'; use sqlite:///PATH/mlflow.db, "
                          f"http(s)://HOST:PORT (an mlflow server) or file:///PATH")
    if scheme == "sqlite":
        folder = Path(uri.removeprefix("sqlite:///")).parent if uri.startswith("sqlite:///") else None
        if folder is not None and not folder.is_dir():
            raise ConfigError(f"tracking.uri '{uri}': folder {folder} does not exist")
    if scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s) as response:
                if response.status != 200:
                    raise ConfigError(f"tracking.uri '{uri}': /health answered HTTP {response.status}")
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ConfigError(f"tracking.uri '{uri}': no MLflow server answers there ({reason}); start one with "
                              f"'mlflow server' or drop tracking.uri") from None


def check_metric_prefix(cfg: ExperimentConfig, spec: PlatformSpec) -> None:
    """Every ``tune.metric`` must be a training metric or one of the evaluation split's (``train.eval_split``).

    Raises:
        ConfigError: naming the metric and the split.
    """
    split = cfg.train.eval_split
    for metric, mode in zip(spec.tune.metrics, spec.tune.modes):
        if mode == "max" and metric.rsplit("/", 1)[-1].startswith("loss"):
            raise ConfigError(f"tune.metric '{metric}' is a loss but tune.mode is 'max': set its tune.mode: min")
        if is_training_metric(metric) or metric.startswith(f"{split}/"):
            continue
        rest = metric.partition("/")[2]
        hint = f"; did you mean '{split}/{rest}'?" if rest else ""
        raise ConfigError(f"tune.metric '{metric}' is never reported: trials evaluate on the '{split}' split "
                          f"(train.eval_split){hint}")


def check_metric_and_data(cfg: ExperimentConfig, spec: PlatformSpec) -> None:
    """Load the dataset (fails now, with the path to fix, if it is missing or corrupt) and check that it has the
    evaluation split and that every ``tune.metric`` is among the metrics an evaluation of its class counts reports
    (CIFAR-10-LT at rho = 100 has no Few class, so ``val/acc_few`` is refused there).

    Raises:
        ConfigError: no validation split for ``train.eval_split: val``; a metric the trials will not report.
    """
    data = load_data(cfg.data.name, cfg.data.kwargs)
    split = cfg.train.eval_split
    if split == "val" and data.val is None:
        raise ConfigError(f"train.eval_split: val, but dataset '{cfg.data.name}' has no validation split "
                          f"(set data.val_per_class > 0 where the dataset takes it)")
    for metric in spec.tune.metrics:
        if is_training_metric(metric):
            # every variant must report it (a loss term of one loss is not reported by another)
            configs = [cfg] + [with_overrides(cfg, dict(v)) for v in (spec.ablation.variants.values()
                                                                        if spec.ablation is not None else [])]
            reported = set.intersection(*[
                training_metric_names(LOSSES.build(c.loss.name, c.loss.kwargs, class_counts=data.class_counts),
                                      data.num_classes) for c in configs])
            if metric not in reported:
                raise ConfigError(f"tune.metric '{metric}' is never reported by loss '{cfg.loss.name}'"
                                  + (" (or some ablation variant's loss)" if len(configs) > 1 else "")
                                  + f"; training metrics: {sorted(reported)}")
            continue
        names = evaluation_metric_names(split, data.class_counts, cfg.train.posthoc_taus)
        if metric not in names:
            stem = metric.rsplit("/", 1)[-1].split("_")[0]  # e.g. "acc" of "test/acc_many"
            close = sorted(n for n in names if n.rsplit("/", 1)[-1].split("_")[0] == stem)
            raise ConfigError(f"tune.metric '{metric}' is never reported for '{cfg.data.name}' (its class counts "
                              f"give no such metric); candidates: {close[:8] or sorted(names)[:8]}")


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


def launcher_of(plan: Plan) -> str:
    return "in_trial" if plan.spec.resources.runs_in_trial else "ray_train"


def record_start(plan: Plan) -> None:
    """Save what ``--resume`` needs to continue this sweep unchanged (only when a new sweep starts)."""
    layout = plan.layout
    layout.config.write_text(plan.cfg.to_yaml())
    layout.launcher.write_text(launcher_of(plan) + "\n")
    layout.sweep_id.write_text(plan.sweep_id + "\n")
    if plan.variant_sources:
        layout.sources.write_text(yaml.safe_dump(plan.variant_sources, sort_keys=False))
    if not is_default_storage(plan.storage, plan.out):  # a driver on another machine can --resume from storage
        for name in SWEEP_FILES:
            if (layout.root / name).is_file():
                (plan.storage / name).write_bytes((layout.root / name).read_bytes())
    for name, src in plan.variant_sources.items():
        print(f"variant {name}: {src['values']} from trial {src['trial_id']} of {src['sweep']} "
              f"({src['metric']} = {src['value']:.4f})", flush=True)


def resumed_plan(layout: ExperimentDir, storage: str | None = None, asked: str | None = None) -> Plan:
    """The plan of the sweep in ``layout`` as it was started (``record_start``): its saved config (``from_sweep``
    values and data paths already resolved there), launcher, sweep id and variant sources, whatever the YAML or
    ``--set`` say now. Resuming with anything else would train the remaining trials differently from the finished
    ones, and Tune refuses a trainable other than the one it pickled.

    Args:
        storage: a storage root to fetch the sweep's saved files from when ``layout`` lacks them (a driver on a new
            machine); the saved config's own ``tune.storage`` is used in every other case.
        asked: the ``--storage`` given now, which must match the saved one.

    Raises:
        ConfigError: no sweep was started in ``layout`` (nor in ``storage``), or ``asked`` is not its storage.
    """
    if not layout.config.is_file() and storage is not None:
        fetch_sweep_files(sweep_storage(storage, layout.root), layout)
    if not layout.config.is_file():
        raise ConfigError(f"--resume: no sweep was started in {layout.root} (no {layout.config.name}); "
                          f"run without --resume first, or pass the sweep's --out")
    cfg = from_dict(yaml.safe_load(layout.config.read_text()))
    saved = (cfg.platform.get("tune") or {}).get("storage")
    if asked is not None and sweep_storage(asked, layout.root) != sweep_storage(saved, layout.root):
        raise ConfigError(f"--resume: this sweep keeps its state in {sweep_storage(saved, layout.root)}, not in "
                          f"{sweep_storage(asked, layout.root)}; drop --storage to resume it")
    launcher = layout.launcher.read_text().strip() if layout.launcher.is_file() else "ray_train"  # older sweeps
    if launcher not in LAUNCHERS:
        raise ConfigError(f"--resume: {layout.launcher} names launcher {launcher!r}; expected one of {LAUNCHERS}")
    resources = {**dict(cfg.platform.get("resources") or {}), "launcher": launcher}
    cfg = replace(cfg, platform={**cfg.platform, "resources": resources})
    sources = yaml.safe_load(layout.sources.read_text()) if layout.sources.is_file() else {}
    print(f"--resume: continuing the sweep in {layout.root} with the config it started with ({layout.config})",
          flush=True)
    return Plan(cfg=cfg, spec=parse_platform(cfg), space=parse_search(cfg.platform.get("search")), out=layout.root,
                variant_sources=sources or {}, sweep_id=layout.read_sweep_id(cfg.name))


def fetch_sweep_files(folder: StoragePath, layout: ExperimentDir) -> None:
    """Copy the files ``record_start`` mirrored to the sweep's storage ``folder`` into ``layout`` (if any)."""
    if not (folder / layout.config.name).is_file():
        return
    layout.root.mkdir(parents=True, exist_ok=True)
    for name in SWEEP_FILES:
        if (folder / name).is_file():
            (layout.root / name).write_bytes((folder / name).read_bytes())
    print(f"--resume: fetched the sweep's saved config from {folder}", flush=True)
