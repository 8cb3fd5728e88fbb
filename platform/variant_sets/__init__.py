"""Named ablation variant sets: an ``ablation:`` block's ``variant_set`` expands to the variants of
``platform/variant_sets/<name>.yaml``, the way ``search: {spaces: [...]}`` names search spaces. Pure: no Ray.

Forms accepted in an experiment's ``ablation:`` block::

    ablation:
      seeds: [0, 1, 2]
      variant_set: four_way                      # ce | logit_only | embedding_only | elm, in that order
      variants:                                  # optional: deep-merged into the set's variant of the same name;
        elm: {loss: {lam: 0.46}}                 #   a name the set lacks adds a variant after the set's
      order: [elm, embedding_only, logit_only, ce]   # optional: the run order, naming every variant once

The expansion is a plain ``ablation: {seeds, variants}`` block (``platform.spec.AblationSpec``); ``make_plan``
saves that, so ``--resume`` never reads a set file again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import yaml

from elm.config import ConfigError

SETS_DIR = Path(__file__).resolve().parent
SET_KEYS = ("variant_set", "order")  # consumed by the expansion


def named_sets() -> list[str]:
    return sorted(p.stem for p in SETS_DIR.glob("*.yaml"))


def load_set(name: Any) -> dict[str, dict[str, Any]]:
    """The variants of set ``name``, in the file's order.

    Raises:
        ConfigError: ``name`` is not a set (naming the known ones), or its file does not map names to mappings.
    """
    path = SETS_DIR / f"{name}.yaml"
    if not isinstance(name, str) or "/" in name or not path.is_file():
        raise ConfigError(f"ablation.variant_set: unknown variant set {name!r}; known: {named_sets()}")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ConfigError(f"variant set file {path} must map variant names to mappings of overrides")
    return raw


def merge_overrides(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """A set variant's overrides ``base`` with the file's ``over`` merged in, each value spelt once (neither is
    modified). Keys apply in order, ``base``'s then ``over``'s, with the meaning ``elm.config.set_keys`` gives them:

    - a dotted key (``loss.lam``) whose parents are mappings already there lands inside them (replacing the value
      at its end), so ``{loss: {name: elm}}`` plus ``{loss.lam: 0.5}`` is ``{loss: {name: elm, lam: 0.5}}``;
    - a mapping under a key that holds a mapping merges into it key by key (``{loss: {lam: 0.5}}`` likewise);
    - anything else is set as it is (a dotted key with no mapping to land in stays dotted).
    """
    out: dict[str, Any] = {}
    for key, value in (*base.items(), *over.items()):
        parts = key.split(".") if isinstance(key, str) else [key]
        if len(parts) > 1 and _mappings_along(out, parts[:-1]):
            out[parts[0]] = _with_value_at(out[parts[0]], parts[1:], value)
        elif isinstance(out.get(key), Mapping) and isinstance(value, Mapping):
            out[key] = merge_overrides(out[key], value)
        else:
            out[key] = value
    return out


def _mappings_along(node: Any, path: list[str]) -> bool:
    for part in path:
        node = node.get(part) if isinstance(node, Mapping) else None
        if not isinstance(node, Mapping):
            return False
    return True


def _with_value_at(node: Mapping[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    """A copy of ``node`` with ``value`` at ``path`` (whose parents are mappings)."""
    head, rest = path[0], path[1:]
    return {**node, head: _with_value_at(node[head], rest, value) if rest else value}


def expand_variant_set(ablation: Any) -> Any:
    """An ``ablation:`` block with its ``variant_set`` expanded (module docstring); any other block unchanged.

    Raises:
        ConfigError: an unknown set, ``variants`` that is not a mapping of mappings, or an ``order`` that does not
            name every variant exactly once.
    """
    if not isinstance(ablation, Mapping) or "variant_set" not in ablation:
        return ablation
    variants = load_set(ablation["variant_set"])
    own = ablation.get("variants") or {}
    if not isinstance(own, Mapping) or not all(isinstance(v, Mapping) for v in own.values()):
        raise ConfigError("ablation.variants must map variant names to mappings of dotted keys to values")
    for name, over in own.items():
        variants[name] = merge_overrides(variants.get(name, {}), over)
    order = ablation.get("order", list(variants))
    if not isinstance(order, list) or not all(isinstance(n, str) for n in order) or sorted(order) != sorted(variants):
        raise ConfigError(f"ablation.order={order!r} must name every variant once: {sorted(variants)}")
    out = {k: v for k, v in ablation.items() if k not in (*SET_KEYS, "variants")}
    return {**out, "variants": {name: variants[name] for name in order}}
