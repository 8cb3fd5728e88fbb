"""Config files: YAML text -> raw mapping, with one file's ``include:`` of others resolved.

The YAML dialect (``ConfigLoader``): safe, ``1e-3`` is a float, and a key given twice in one mapping is an error.
``include:`` lets experiment files share a recipe instead of copying it::

    include: recipes/la_cifar.yaml      # or a list of files; paths are relative to the including file
    name: my_run
    optim: {epochs: 10}                 # deep-merged over the recipe's optim block

The included files merge in order, each with its own includes resolved first; the including file's keys merge on
top. Mappings merge key by key; any other value (a list, a scalar, ``null``) replaces. So a file that switches a
recipe's component (``loss: {name: cross_entropy}`` over a recipe's ELM loss) keeps the recipe's other arguments of
that block; the config check names any the new component does not take. Tag the block ``!replace`` to take none::

    loss: !replace {name: cross_entropy}      # the recipe's loss block is dropped, not merged into

``elm.config.load_config`` reads files this way; a sweep saves the merged config.
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


class Replace(dict):
    """A mapping tagged ``!replace`` in a config file (``loss: !replace {name: cross_entropy}``): it replaces the
    included files' block under its key instead of merging into it. Only ``read_config`` sees the tag; every reader
    gets plain dicts."""


def _construct_replace(loader: ConfigLoader, node: yaml.Node) -> Replace:
    if not isinstance(node, yaml.MappingNode):
        raise yaml.constructor.ConstructorError(None, None, "!replace must tag a mapping", node.start_mark)
    return Replace(loader.construct_mapping(node, deep=True))


ConfigLoader.add_constructor("!replace", _construct_replace)


def plain(value: Any) -> Any:
    """``value`` with every ``Replace`` (and any other dict subclass) turned into a plain dict, recursively."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


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
    return plain(_parse(text))


def _parse(text: str) -> Any:
    return yaml.load(text, Loader=ConfigLoader)  # noqa: S506  (ConfigLoader is a SafeLoader)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Parse a YAML file into a mapping (without resolving ``include:``: ``read_config``).

    Raises:
        ConfigError: naming the file: missing, a directory, not UTF-8 text, not valid YAML (with the line and
            column), or not a mapping at the top level.
    """
    return plain(_read_tagged(Path(path)))


def _read_tagged(path: Path) -> dict[str, Any]:
    """``read_yaml``, keeping ``!replace`` mappings as ``Replace``."""
    if path.is_dir():
        raise ConfigError(f"{path} is a directory, not a config file")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = _parse(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text: byte {e.object[e.start]:#04x} at offset {e.start}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {yaml_error_line(e)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must contain a mapping at the top level")
    return raw


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` merged in: mappings merge key by key, any other value (or a mapping tagged ``!replace``)
    replaces; neither is modified."""
    out = dict(base)
    for key, value in over.items():
        both = isinstance(out.get(key), Mapping) and isinstance(value, Mapping) and not isinstance(value, Replace)
        out[key] = deep_merge(out[key], value) if both else value
    return out


def read_config(path: str | Path) -> dict[str, Any]:
    """A config file's mapping with its ``include:`` resolved (module docstring); the result has no ``include``.

    Raises:
        ConfigError: as ``read_config_and_includes``.
    """
    return read_config_and_includes(path)[0]


def read_config_and_includes(path: str | Path) -> tuple[dict[str, Any], list[Path]]:
    """``read_config`` and the files it included, in the order they were read (resolved paths; ``[]`` without
    ``include:``). Include paths are relative to the including file's real location (symlinks resolved), the same
    rule for the top-level file and for the files it includes.

    Raises:
        ConfigError: naming the file: it or an included file is missing, a directory, not UTF-8, not valid YAML or
            not a mapping; ``include`` is not a path or a list of paths; or the includes form a cycle.
    """
    included: list[Path] = []
    return plain(_read_including(Path(path), (), included)), included


def _read_including(path: Path, chain: tuple[Path, ...], included: list[Path]) -> dict[str, Any]:
    raw = _read_tagged(path)
    if INCLUDE_KEY not in raw:
        return raw
    names = raw.pop(INCLUDE_KEY)
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(
            f"{path}: include must be a file path or a list of file paths (relative to the file), got {names!r}"
        )
    here = path.resolve()
    chain = (*chain, here)
    merged: dict[str, Any] = {}
    for name in names:
        target = (here.parent / name).resolve()
        if target in chain:
            cycle = " -> ".join(str(p) for p in (*chain[chain.index(target) :], target))
            raise ConfigError(f"{path}: include {name!r} makes a cycle: {cycle}")
        if target.is_dir():
            raise ConfigError(f"{path}: include {name!r} is a directory, not a file ({target})")
        if not target.is_file():
            raise ConfigError(f"{path}: included file {name!r} not found (looked for {target})")
        included.append(target)
        merged = deep_merge(merged, _read_including(target, chain, included))
    return deep_merge(merged, raw)
