"""YAML ``search:`` block -> a validated search space -> Ray Tune domains. Pure: nothing here trains or samples.

Forms accepted in an experiment's ``search:`` block::

    search:
      spaces: [elm_joint]                         # named spaces: platform/search_spaces/<name>.yaml
      loss.temperature: {loguniform: [0.05, 0.5]} # inline entries add to or replace named ones
      optim.lr: {choice: [0.05, 0.1]}
      loss.tau: {grid: [0.0, 1.0, 2.0]}           # grid axes: searcher 'grid' only (Optuna cannot take them)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from elm.config import ConfigError, ExperimentConfig, with_overrides
from platform.searchers import SEARCHERS

SPACES_DIR = Path(__file__).resolve().parent
KINDS = {"uniform": 2, "loguniform": 2, "quniform": 3, "randint": 2, "choice": None, "grid": None}


@dataclass(frozen=True)
class Dimension:
    """One searched key: ``kind`` in KINDS and its arguments (bounds, or the list of values)."""

    key: str
    kind: str
    args: tuple[Any, ...]

    def candidates(self) -> list[Any]:
        """Values that must all be valid for the config, of the type Tune samples: the bounds (floats for the
        continuous kinds, even when written as ints: ``quniform: [32, 256, 16]`` samples 48.0), or every listed
        value."""
        if self.kind in ("choice", "grid"):
            return list(self.args)
        if self.kind == "randint":  # upper bound exclusive, as in Tune
            return [int(self.args[0]), int(self.args[1]) - 1]
        return [float(self.args[0]), float(self.args[1])]


def named_spaces() -> list[str]:
    return sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))


def _load_named(name: str) -> Mapping[str, Any]:
    path = SPACES_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown search space '{name}'; known: {named_spaces()}")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"search space file {path} must hold a mapping")
    return raw


def _dimension(key: str, spec: Any) -> Dimension:
    if not isinstance(spec, Mapping) or len(spec) != 1:
        raise ConfigError(f"search.{key} must be a one-key mapping like {{uniform: [0, 1]}}; kinds: {sorted(KINDS)}")
    ((kind, args),) = spec.items()
    if kind not in KINDS:
        raise ConfigError(f"search.{key}: unknown kind '{kind}'; known: {sorted(KINDS)}")
    if not isinstance(args, list) or not args:
        raise ConfigError(f"search.{key}.{kind} must be a non-empty list")
    arity = KINDS[kind]
    if arity is not None:
        if len(args) != arity or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
            raise ConfigError(f"search.{key}.{kind} takes {arity} numbers, got {args}")
        if args[0] >= args[1]:
            raise ConfigError(f"search.{key}.{kind}: lower bound {args[0]} must be below upper {args[1]}")
        if kind == "loguniform" and args[0] <= 0:
            raise ConfigError(f"search.{key}.loguniform needs positive bounds, got {args}")
    return Dimension(key=key, kind=kind, args=tuple(args))


def parse_search(raw: Mapping[str, Any] | None) -> dict[str, Dimension]:
    """Resolve named spaces and inline entries into ``{dotted key: Dimension}`` (inline entries win)."""
    raw = dict(raw or {})
    names = raw.pop("spaces", [])
    if isinstance(names, str):
        names = [names]
    merged: dict[str, Any] = {}
    for name in names:
        merged.update(_load_named(name))
    merged.update(raw)
    return {key: _dimension(key, spec) for key, spec in merged.items()}


def validate_space(space: Mapping[str, Dimension], cfg: ExperimentConfig, searcher: str) -> None:
    """Every key must exist in ``cfg`` and every bound/value must give a valid config; grids need 'grid'."""
    for dim in space.values():
        takes = SEARCHERS[searcher].grid_axes
        if dim.kind == "grid" and takes == "no":
            raise ConfigError(
                f"search.{dim.key} is a grid axis, which {searcher.capitalize()} cannot take: use tune.searcher: grid"
            )
        if dim.kind != "grid" and takes == "only":
            raise ConfigError(f"search.{dim.key} is '{dim.kind}', but tune.searcher '{searcher}' takes only grid axes")
        root = dim.key.split(".")[0]
        if root not in ("data", "model", "loss", "optim", "train", "seed"):
            raise ConfigError(f"search.{dim.key}: '{root}' is not a searchable config section")
        for value in dim.candidates():
            try:
                with_overrides(cfg, {dim.key: value})
            except ConfigError as e:
                hint = ""
                if (
                    isinstance(value, float)
                    and dim.kind in ("uniform", "loguniform", "quniform")
                    and "wrong type" in str(e)
                ):
                    hint = f" ('{dim.kind}' samples floats; for an integer key use randint or choice)"
                raise ConfigError(f"search.{dim.key}={value!r} does not give a valid config: {e}{hint}") from None


def to_tune(space: Mapping[str, Dimension]) -> dict[str, Any]:
    """Ray Tune domains for ``space``, keyed by the dotted config key."""
    from ray import tune

    make = {
        "uniform": lambda a: tune.uniform(*a),
        "loguniform": lambda a: tune.loguniform(*a),
        "quniform": lambda a: tune.quniform(*a),
        "randint": lambda a: tune.randint(*a),
        "choice": lambda a: tune.choice(list(a)),
        "grid": lambda a: tune.grid_search(list(a)),
    }
    return {key: make[dim.kind](dim.args) for key, dim in space.items()}
