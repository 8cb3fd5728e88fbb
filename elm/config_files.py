"""Config files: YAML text -> raw mapping, with one file's ``include:`` of others resolved.

The YAML dialect (``ConfigLoader``): safe, ``1e-3`` is a float, and a key given twice in one mapping is an error.
``include:`` lets experiment files share a recipe instead of copying it::

    include: recipes/la_cifar.yaml      # or a list of files; paths are relative to the including file
    name: my_run
    optim: {epochs: 10}                 # deep-merged over the recipe's optim block

The included files merge in order, each with its own includes resolved first; the including file's keys merge on
top. Mappings merge key by key; any other value (a list, a scalar, ``null``) replaces. ``elm.config.load_config``
reads files this way, and the platform saves the merged config, so a resumed sweep never reads the recipe again.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import yaml

INCLUDE_KEY = "include"


class ConfigError(ValueError):
    """A config that cannot run: the message names the offending key."""


_FLOAT_TAG = "tag:yaml.org,2002:float"
# YAML 1.1's float pattern (PyYAML's) requires a '.' and a signed exponent, so ``1e-3`` and ``5E+2`` load as strings;
# this one also takes the exponent forms of YAML 1.2 / Python (``1e-3``, ``5E+2``, ``.5e-1``, ``-2e5``). Plain
# integers (``10``) do not match and stay ints; ``e5`` or ``1e`` stay strings.
_FLOAT_PATTERN = re.compile(
    r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.VERBOSE,
)


class ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that reads scientific notation (``lr: 1e-3``) as a float and refuses a key given twice
    in one mapping (PyYAML would silently keep the last); used for files and ``--set``."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


ConfigLoader.yaml_implicit_resolvers = {  # a copy without YAML 1.1's float resolver, then ours
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _FLOAT_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ConfigLoader.add_implicit_resolver(_FLOAT_TAG, _FLOAT_PATTERN, list("-+0123456789."))


def yaml_error_line(error: yaml.YAMLError) -> str:
    """A YAML error on one line: what is wrong and where (line and column, 1-based)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def load_yaml(text: str) -> Any:
    """Parse YAML text with ``ConfigLoader`` (safe, plus ``1e-3`` as a float).

    Raises:
        yaml.YAMLError: the text is not valid YAML.
    """
    return yaml.load(text, Loader=ConfigLoader)  # noqa: S506  (ConfigLoader is a SafeLoader)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Parse a YAML file into a mapping, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = load_yaml(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {yaml_error_line(e)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must contain a mapping at the top level")
    return raw


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` merged in: mappings merge key by key, any other value replaces (neither is modified)."""
    out = dict(base)
    for key, value in over.items():
        both = isinstance(out.get(key), Mapping) and isinstance(value, Mapping)
        out[key] = deep_merge(out[key], value) if both else value
    return out


def read_config(path: str | Path) -> dict[str, Any]:
    """A config file's mapping with its ``include:`` resolved (module docstring); the result has no ``include``.

    Raises:
        ConfigError: naming the file: it or an included file is missing, is not valid YAML or not a mapping;
            ``include`` is not a path or a list of paths; or the includes form a cycle.
    """
    return _read_including(Path(path), ())


def _read_including(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    raw = read_yaml(path)
    if INCLUDE_KEY not in raw:
        return raw
    names = raw.pop(INCLUDE_KEY)
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(
            f"{path}: include must be a file path or a list of file paths (relative to the file), got {names!r}"
        )
    chain = (*chain, path.resolve())
    merged: dict[str, Any] = {}
    for name in names:
        target = (path.parent / name).resolve()
        if target in chain:
            cycle = " -> ".join(str(p) for p in (*chain[chain.index(target) :], target))
            raise ConfigError(f"{path}: include {name!r} makes a cycle: {cycle}")
        if not target.is_file():
            raise ConfigError(f"{path}: included file {name!r} not found (looked for {target})")
        merged = deep_merge(merged, _read_including(target, chain))
    return deep_merge(merged, raw)
