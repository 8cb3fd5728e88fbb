"""Experiment configuration: one YAML file -> one frozen, typed, validated ``ExperimentConfig``.

Run ``python -m elm.train CONFIG.yaml [--set key=value ...]`` to train one config without Ray. Every check here
runs before any data is loaded: unknown keys, wrong types and out-of-range values raise ``ConfigError`` naming
the key. Overrides (CLI ``--set loss.tau=0.5`` and Tune's sampled ``{"loss.tau": 0.73}``) all go through
``with_overrides``, which edits the raw mapping and re-validates the whole config.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Mapping

import yaml

from elm.config_files import ConfigError as ConfigError  # re-exported: the error of every config check
from elm.config_files import load_yaml, read_config_and_includes, yaml_error_line
from elm.registry import DATASETS, LOSSES, MODELS, Choice, Interval, Registry, check_kwargs

# Top-level blocks that belong to the platform (Ray Tune, MLflow); elm keeps them verbatim and never reads them.
PLATFORM_BLOCKS = ("search", "tune", "resources", "tracking", "ablation")
# Every top-level mapping a config may hold; ``set_keys`` creates a missing one (``--set tracking.uri=...``).
BLOCKS = ("data", "model", "loss", "optim", "train", *PLATFORM_BLOCKS)
# ``name`` becomes folder names, Ray run names and MLflow filter strings: no quotes, spaces or slashes.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
NAME_MAX_CHARS = 100
# Data-derived values the trainer passes to factories; a config may not set them.
SUPPLIED = {
    "data": (),
    "model": ("num_classes", "in_channels", "image_size"),
    "loss": ("class_counts",),
}


@dataclass(frozen=True)
class Component:
    """A registry key plus the keyword arguments of its factory."""

    name: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OptimConfig:
    """SGD with momentum and a warm-up + (step | cosine) learning-rate schedule (Menon et al. 2021, CIFAR recipe)."""

    lr: Annotated[float, Interval(gt=0)] = 0.1
    momentum: Annotated[float, Interval(ge=0, lt=1)] = 0.9
    nesterov: bool = False
    weight_decay: Annotated[float, Interval(ge=0)] = 2e-4
    epochs: Annotated[int, Interval(ge=1)] = 200
    batch_size: Annotated[int, Interval(ge=1)] = 128
    schedule: Annotated[str, Choice("step", "cosine", "constant")] = "step"
    warmup_epochs: Annotated[int, Interval(ge=0)] = 5
    milestones: tuple[int, ...] = (160, 180)
    gamma: Annotated[float, Interval(gt=0, le=1)] = 0.1


@dataclass(frozen=True)
class TrainConfig:
    """How the loop runs: evaluation cadence, checkpoints, numerics. Nothing here changes the maths of a method."""

    eval_every: Annotated[int, Interval(ge=1)] = 10
    eval_split: Annotated[str, Choice("val", "test")] = "test"
    posthoc_taus: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)
    checkpoint_every: Annotated[int, Interval(ge=1)] = 1
    keep_checkpoints: Annotated[int, Interval(ge=1)] = 2
    channels_last: bool = True
    # bf16 autocast: true, false, or auto (on where the device computes bf16 natively: CUDA with bf16, CPUs with
    # AVX-512 BF16 or AMX; fp32 elsewhere, where emulated bf16 is slower). elm.precision decides and logs it once.
    bf16: Annotated[bool | str, Choice(True, False, "auto")] = "auto"
    fp16: bool = False  # fp16 autocast + GradScaler, for GPUs without bf16; excludes bf16: true
    # In-memory splits (CIFAR) live on the training device, where batches are cropped, flipped and normalised
    # (the same random draws as on the CPU, so the same batches); auto: on when training on CUDA.
    data_on_device: Annotated[bool | str, Choice(True, False, "auto")] = "auto"
    cudnn_benchmark: bool = True  # let cuDNN pick the fastest convolutions (CUDA; off under train.deterministic)
    # Steps between host checks of a non-finite training loss (each check waits for the device; the error names
    # the first bad step, and no checkpoint is written after it).
    check_finite_every: Annotated[int, Interval(ge=1)] = 50
    # torch.compile the training forward (full batches only; a smaller last batch and evaluation run eager). Off by
    # default: what it buys and what a cold-cache compilation costs depend on the machine and precision (measured in
    # benchmarks/README.md, "torch.compile").
    compile: bool = False
    eval_batch_size: Annotated[int, Interval(ge=1)] = 1000
    num_threads: Annotated[int, Interval(ge=0)] = 0  # 0: leave torch's default
    deterministic: bool = False
    max_steps_per_epoch: Annotated[int, Interval(ge=0)] = 0  # 0: no cap (a cap is for smoke runs only)
    # Augmented views of every training image per step. 0: automatic, 2 for losses that read embeddings (a
    # contrastive term needs a positive for every anchor: the image's other view), 1 otherwise. Logit terms read
    # view 0 only (elm.losses.elm), so views change what the embedding term sees, not the logit term's data.
    views: Annotated[int, Interval(ge=0)] = 0
    # File-backed splits (ImageNet-LT, iNaturalist): the torch DataLoader that decodes and augments them.
    loader_workers: Annotated[int, Interval(ge=0)] = 0  # worker processes (0: decode in the training process)
    pin_memory: Annotated[bool | str, Choice(True, False, "auto")] = "auto"  # auto: on when training on CUDA
    persistent_workers: bool = True  # keep the workers between epochs (with loader_workers > 0)
    prefetch_factor: Annotated[int, Interval(ge=1)] = 2  # batches each worker prepares ahead

    def check(self) -> None:
        """Cross-field checks. Raises: ConfigError naming the keys."""
        if self.fp16 and self.bf16 is True:
            raise ConfigError("train.fp16 and train.bf16 are both true: choose one (fp16 is for GPUs without bf16)")


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment. ``platform`` holds the untouched platform blocks (search, tune, resources, ...)."""

    name: str
    seed: int
    data: Component
    model: Component
    loss: Component
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    platform: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain YAML-able mapping; ``from_dict(cfg.to_dict()) == cfg``."""
        out: dict[str, Any] = {"name": self.name, "seed": self.seed}
        for key in ("data", "model", "loss"):
            comp: Component = getattr(self, key)
            out[key] = {"name": comp.name, **copy.deepcopy(dict(comp.kwargs))}
        for key in ("optim", "train"):
            out[key] = {
                f.name: list(v) if isinstance(v := getattr(getattr(self, key), f.name), tuple) else v
                for f in dataclasses.fields(getattr(self, key))
            }
        out.update(copy.deepcopy(dict(self.platform)))
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def parse_section(cls: type, where: str, raw: Any) -> Any:
    """Build a frozen dataclass from a mapping, validating keys, types and ranges."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {type(raw).__name__}")
    try:
        check_kwargs(where, cls, raw)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    hints = typing.get_type_hints(cls)
    values = {k: tuple(v) if typing.get_origin(hints[k]) is tuple else v for k, v in raw.items()}
    return cls(**values)


def _parse_component(where: str, raw: Any, registry: Registry[Any]) -> Component:
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, Mapping) or "name" not in raw:
        raise ConfigError(f"{where} must be a mapping with a 'name' key; known {where} names: {registry.names()}")
    kwargs = {k: v for k, v in raw.items() if k != "name"}
    try:
        registry.check(raw["name"], kwargs, SUPPLIED[where])
    except KeyError as e:
        raise ConfigError(f"{where}.name: {e.args[0]}") from None
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return Component(name=raw["name"], kwargs=kwargs)


def _ensure_registered() -> None:
    import elm.data  # noqa: F401  (registration side effects)
    import elm.losses  # noqa: F401
    import elm.models  # noqa: F401


def from_dict(raw: Mapping[str, Any]) -> ExperimentConfig:
    """Validate a raw mapping (e.g. parsed YAML) into an ``ExperimentConfig``.

    Raises:
        ConfigError: naming the first offending key.
    """
    _ensure_registered()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"a config must be a mapping at the top level, got {type(raw).__name__}")
    known = {"name", "seed", *BLOCKS}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {unknown}; known: {sorted(known)}")
    for key in ("name", "seed", "data", "model", "loss"):
        if key not in raw:
            raise ConfigError(f"missing required key '{key}'")
    check_name(raw["name"])
    if not isinstance(raw["seed"], int) or isinstance(raw["seed"], bool) or raw["seed"] < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {raw['seed']!r}")
    optim = parse_section(OptimConfig, "optim", raw.get("optim"))
    if optim.warmup_epochs >= optim.epochs and optim.warmup_epochs > 0:
        raise ConfigError(f"optim.warmup_epochs={optim.warmup_epochs} must be < optim.epochs={optim.epochs}")
    if list(optim.milestones) != sorted(optim.milestones) or any(m < 1 for m in optim.milestones):
        raise ConfigError(f"optim.milestones={list(optim.milestones)} must be increasing positive epochs")
    return ExperimentConfig(
        name=raw["name"],
        seed=raw["seed"],
        data=_parse_component("data", raw["data"], DATASETS),
        model=_parse_component("model", raw["model"], MODELS),
        loss=_parse_component("loss", raw["loss"], LOSSES),
        optim=optim,
        train=_parse_train(raw.get("train")),
        platform={k: copy.deepcopy(raw[k]) for k in PLATFORM_BLOCKS if k in raw},
    )


def _parse_train(raw: Any) -> TrainConfig:
    train: TrainConfig = parse_section(TrainConfig, "train", raw)
    train.check()
    return train


def check_name(name: Any) -> None:
    """Check that an experiment name can name folders, Ray runs and MLflow runs (and sit in their filter strings).

    Raises:
        ConfigError: unless ``name`` matches ``NAME_PATTERN``: 1-100 letters, digits, '.', '_' or '-', starting
            with a letter or digit.
    """
    why = "(it names folders and MLflow runs)"
    if not isinstance(name, str) or not name:
        raise ConfigError(f"name must be a non-empty string, got {name!r}")
    if NAME_PATTERN.fullmatch(name):
        return
    if not re.fullmatch(r"[A-Za-z0-9._-]*", name):
        raise ConfigError(f"name '{name}' may only use letters, digits, '.', '_' and '-' {why}")
    if len(name) > NAME_MAX_CHARS:
        raise ConfigError(f"name '{name[:20]}...' has {len(name)} characters; at most {NAME_MAX_CHARS} {why}")
    raise ConfigError(f"name '{name}' must start with a letter or digit {why}")


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> ExperimentConfig:
    """Read a YAML config file (its ``include:`` resolved: ``elm.config_files``), override and validate it.

    Raises:
        ConfigError: naming the file (and the files it includes, where a value may come from) and the offending
            key, value or included file.
    """
    raw, included = read_config_and_includes(path)
    try:
        return from_dict(set_keys(raw, overrides or {}))
    except ConfigError as e:
        here = Path(path).resolve().parent
        shown = [str(p.relative_to(here) if p.is_relative_to(here) else p) for p in included]
        with_includes = f" (with {', '.join(shown)})" if shown else ""
        raise ConfigError(f"{path}{with_includes}: {e}") from None


def set_keys(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return a deep copy of ``raw`` with dotted keys set (``{"loss.tau": 0.5}``).

    A missing top-level block of ``BLOCKS`` is created (``{"tracking.uri": "..."}`` on a file without
    ``tracking:``); below the top level the parents must exist. Keys apply in order, so
    ``{"loss": {"name": "elm"}, "loss.tau": 0.5}`` replaces the block, then sets tau; neither ``raw`` nor the
    override values are modified.

    Raises:
        ConfigError: a dotted key whose top-level block is unknown (listing the known ones), or whose parent is
            missing or not a mapping.
    """
    out = copy.deepcopy(dict(raw))
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node: Any = out
        for i, part in enumerate(parts[:-1]):
            if part not in node or node[part] is None:
                if i == 0 and part in BLOCKS:
                    node[part] = {}
                elif i == 0:
                    raise ConfigError(
                        f"cannot set '{dotted}': '{part}' is not in the config and not a known block; "
                        f"known: {sorted(BLOCKS)}"
                    )
                else:
                    raise ConfigError(f"cannot set '{dotted}': '{'.'.join(parts[: i + 1])}' is not in the config")
            node = node[part]
            if not isinstance(node, dict):
                raise ConfigError(f"cannot set '{dotted}': '{'.'.join(parts[: i + 1])}' is not a mapping")
        node[parts[-1]] = copy.deepcopy(value)  # never alias the caller's mappings: later keys may edit them
    return out


def with_overrides(cfg: ExperimentConfig, overrides: Mapping[str, Any]) -> ExperimentConfig:
    """A new validated config with dotted keys replaced, e.g. ``with_overrides(cfg, {"loss.tau": 0.5})``."""
    return from_dict(set_keys(cfg.to_dict(), overrides))


def parse_set_args(items: list[str]) -> dict[str, Any]:
    """Parse CLI ``key=value`` strings; values are YAML scalars/lists (``0.5``, ``true``, ``[1, 2]``)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        try:
            out[key.strip()] = load_yaml(value)
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {item!r}: value is not valid YAML: {yaml_error_line(e)}") from None
    return out
