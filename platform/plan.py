"""Plan a sweep before Ray starts: load, shrink, override and validate everything that can be known up front.

No Ray import here. ``make_plan`` raises ``ConfigError`` (or ``DatasetNotFoundError``) naming the problem for: a
bad config or platform block, a search space whose sampled values do not fit their keys, a ``tune.metric`` the
trials will not report (checked against the metric names an evaluation of this dataset's class counts gives), an
evaluation split the data lacks, long-tail counts that leave a class empty, missing or corrupt data, and an
output folder that is a file or not writable. The resume protocol sits here too: ``record_start`` writes what
``resumed_plan`` reads back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from elm.config import ConfigError, ExperimentConfig, from_dict, load_config, set_keys, with_overrides
from elm.registry import DATASETS, Folder
from platform.code_version import check_code_on_resume, source_digests
from platform.layout import ExperimentDir, new_sweep_id
from platform.plan_checks import (  # noqa: F401  (check_tracking_uri re-exported, for platform.report)
    check_metric_and_data,
    check_metric_prefix,
    check_storage,
    check_tracking_uri,
)
from platform.search_spaces import Dimension, parse_search, validate_space
from platform.smoke import smoke_raw
from platform.spec import PlatformSpec, parse_platform
from platform.storage import SWEEP_FILES, StoragePath, is_default_storage, resolve_storage, sweep_storage
from platform.variant_sets import expand_variant_set

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
    code: dict[str, str] = field(default_factory=source_digests)  # elm/ and platform/ when planned (code_version)

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
    config: str,
    overrides: dict[str, Any],
    *,
    smoke_run: bool = False,
    out: str | None = None,
    check_data: bool = True,
    resume: bool = False,
    storage: str | None = None,
    allow_code_change: bool = False,
) -> Plan:
    """Load, shrink (``--smoke``) and validate everything an experiment needs, before Ray starts.

    The file is validated on its own (its errors name the file); then every edit applies to its raw mapping, in
    this order, and the result is validated once: the file's ``ablation.variant_set`` expanded
    (``platform.variant_sets``), ``--smoke`` (``platform.smoke``), ``--set`` and ``--storage``
    (so ``--set`` wins over ``--smoke``), ``from_sweep`` variants (``platform.sweep_best``; not on resume), then
    absolute folder paths (``absolute_paths``). With ``resume`` the sweep in the output folder continues as it
    started (``resumed_plan``): the YAML and ``--set`` only name the folder. ``check_data=False`` skips loading the
    dataset (tests that validate configs of data this machine lacks). ``storage`` (``--storage``) sets
    ``tune.storage``; on ``resume`` it (or the YAML's ``tune.storage``) is where the sweep's saved config is fetched
    from when the output folder lacks it.

    The sources are fingerprinted first (``platform.code_version``): the trials check they run that code. A resumed
    sweep whose sources changed since it started is refused unless ``allow_code_change``.

    Raises:
        ConfigError: naming the offending key, value or path; DatasetNotFoundError for missing data.
    """
    code = source_digests()
    file_cfg = load_config(config)
    raw = smoke_raw(file_cfg) if smoke_run else file_cfg.to_dict()
    if "ablation" in raw:  # a named variant set, expanded: the saved config needs no set file on resume
        raw["ablation"] = expand_variant_set(raw["ablation"])
    raw = set_keys(raw, {**overrides, **({"tune.storage": storage} if storage is not None else {})})
    if "ablation" in raw:  # again: --set may name a variant set too
        raw["ablation"] = expand_variant_set(raw["ablation"])
    sources: dict[str, dict[str, Any]] = {}
    if not resume:
        raw, sources = resolve_from_sweep(raw)
    cfg = from_dict(absolute_paths(raw))
    layout = ExperimentDir(Path(out or EXPERIMENTS_DIR / cfg.name).resolve())
    if resume:
        plan = resumed_plan(layout, storage=(cfg.platform.get("tune") or {}).get("storage"), asked=storage)
        check_code_on_resume(layout.code, code, allow_code_change)
        plan = replace(plan, code=code)
        if plan.spec.tune.storage is not None:
            check_storage(plan.storage, plan.spec.tune.storage)
        if plan.spec.tracking.uri:  # a server that was up when the sweep started may be down now
            check_tracking_uri(plan.spec.tracking.uri)
        if check_data:
            check_metric_and_data(plan.cfg, plan.spec)
        return plan
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
        raise ConfigError(
            "search.train.eval_every: ASHA compares trials at the same evaluated epochs; "
            "do not search the evaluation cadence"
        )
    check_metric_prefix(cfg, spec)
    if spec.tracking.uri:
        check_tracking_uri(spec.tracking.uri)
    if check_data:
        check_metric_and_data(cfg, spec)
    layout.check_writable()
    plan = Plan(
        cfg=cfg, spec=spec, space=space, out=layout.root, variant_sources=sources, sweep_id=new_sweep_id(), code=code
    )
    if spec.tune.storage is not None:  # resolves a remote store now: unreachable, no bucket or no credentials fail
        check_storage(plan.storage, spec.tune.storage)
    return plan


def resolve_from_sweep(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``raw`` with every ``ablation.variants.*.from_sweep`` replaced by that sweep's best values, and the sources
    of those values (``platform.sweep_best.resolve_variants``).

    Raises:
        ConfigError: naming the variant's ``from_sweep`` whose sweep has no usable best trial.
    """
    ablation = raw.get("ablation")
    variants = ablation.get("variants") if isinstance(ablation, dict) else None
    if not isinstance(variants, dict) or not all(isinstance(v, dict) for v in variants.values()):
        return raw, {}  # no ablation, or a malformed one: validation names the problem
    from platform.sweep_best import resolve_variants

    resolved, sources = resolve_variants(variants)
    return {**raw, "ablation": {**ablation, "variants": resolved}}, sources


def absolute_paths(raw: dict[str, Any], storage: bool = True) -> dict[str, Any]:
    """``raw`` with relative local folders resolved against the launch directory (Ray workers run elsewhere): the
    data arguments its dataset's factory marks ``Folder()`` (``elm.registry``), whatever their names, and (with
    ``storage``) a local ``tune.storage``, saved so for resume.

    Raises:
        ConfigError: a ``tune.storage`` like ``s3:/bucket`` (a mistyped scheme, not the local folder ``s3:``).
    """
    data, tune = raw.get("data"), raw.get("tune")
    store = tune.get("storage") if storage and isinstance(tune, dict) else None
    known = isinstance(data, dict) and data.get("name") in DATASETS.names()  # else validation names the problem
    folders = DATASETS.marked(data["name"], Folder) if known else {}
    fixed = {
        f"data.{k}": str(Path(v).resolve())
        for k, v in (data.items() if known else ())
        if k in folders and isinstance(v, str) and not Path(v).is_absolute()
    }
    if isinstance(store, str) and "://" not in store and not Path(store).is_absolute():
        resolve_storage(store)  # refuses 's3:/bucket', which would become the local folder 's3:'
        fixed["tune.storage"] = str(Path(store).expanduser().resolve())
    return set_keys(raw, fixed) if fixed else raw


def absolute_data_paths(cfg: ExperimentConfig) -> ExperimentConfig:
    """``cfg`` with its relative data folders made absolute (``absolute_paths``)."""
    return from_dict(absolute_paths(cfg.to_dict(), storage=False))


def launcher_of(plan: Plan) -> str:
    return "in_trial" if plan.spec.resources.runs_in_trial else "ray_train"


def record_start(plan: Plan) -> None:
    """Save what ``--resume`` needs to continue this sweep unchanged (only when a new sweep starts)."""
    layout = plan.layout
    layout.config.write_text(plan.cfg.to_yaml())
    layout.launcher.write_text(launcher_of(plan) + "\n")
    layout.sweep_id.write_text(plan.sweep_id + "\n")
    layout.code.write_text(json.dumps(plan.code, indent=0, sort_keys=True) + "\n")
    if plan.variant_sources:
        layout.sources.write_text(yaml.safe_dump(plan.variant_sources, sort_keys=False))
    if not is_default_storage(plan.storage, plan.out):  # a driver on another machine can --resume from storage
        for name in SWEEP_FILES:
            if (layout.root / name).is_file():
                (plan.storage / name).write_bytes((layout.root / name).read_bytes())
    for name, src in plan.variant_sources.items():
        print(
            f"variant {name}: {src['values']} from trial {src['trial_id']} of {src['sweep']} "
            f"({src['metric']} = {src['value']:.4f})",
            flush=True,
        )


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
        raise ConfigError(
            f"--resume: no sweep was started in {layout.root} (no {layout.config.name}); "
            f"run without --resume first, or pass the sweep's --out"
        )
    cfg = from_dict(yaml.safe_load(layout.config.read_text()))
    saved = (cfg.platform.get("tune") or {}).get("storage")
    if asked is not None and sweep_storage(asked, layout.root) != sweep_storage(saved, layout.root):
        raise ConfigError(
            f"--resume: this sweep keeps its state in {sweep_storage(saved, layout.root)}, not in "
            f"{sweep_storage(asked, layout.root)}; drop --storage to resume it"
        )
    launcher = layout.launcher.read_text().strip() if layout.launcher.is_file() else "ray_train"  # older sweeps
    if launcher not in LAUNCHERS:
        raise ConfigError(f"--resume: {layout.launcher} names launcher {launcher!r}; expected one of {LAUNCHERS}")
    resources = {**dict(cfg.platform.get("resources") or {}), "launcher": launcher}
    cfg = replace(cfg, platform={**cfg.platform, "resources": resources})
    sources = yaml.safe_load(layout.sources.read_text()) if layout.sources.is_file() else {}
    print(
        f"--resume: continuing the sweep in {layout.root} with the config it started with ({layout.config})", flush=True
    )
    return Plan(
        cfg=cfg,
        spec=parse_platform(cfg),
        space=parse_search(cfg.platform.get("search")),
        out=layout.root,
        variant_sources=sources or {},
        sweep_id=layout.read_sweep_id(cfg.name),
    )


def fetch_sweep_files(folder: StoragePath, layout: ExperimentDir) -> None:
    """Copy the files ``record_start`` mirrored to the sweep's storage ``folder`` into ``layout`` (if any)."""
    if not (folder / layout.config.name).is_file():
        return
    layout.root.mkdir(parents=True, exist_ok=True)
    for name in SWEEP_FILES:
        if (folder / name).is_file():
            (layout.root / name).write_bytes((folder / name).read_bytes())
    print(f"--resume: fetched the sweep's saved config from {folder}", flush=True)
