"""Name -> factory registries for losses, models and datasets, with config checks before anything runs.

A factory's keyword arguments are its config schema: their annotations give the type and, through
``typing.Annotated[..., Interval(...)]`` or ``Choice(...)``, the allowed range; the markers ``Folder()`` (the value
names a folder) and ``Size(role)`` (a size a toy run may shrink) tell callers what an argument means, whatever its
name (``Registry.marked``). ``Registry.check`` validates
a config's kwargs against that schema (unknown keys, wrong types, out-of-range values) without building
anything; ``Registry.build`` checks, then calls the factory with the data-derived values the caller supplies.
"""

from __future__ import annotations

import inspect
import math
import typing
from dataclasses import dataclass
from typing import Any, Callable, Generic, Mapping, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Interval:
    """Closed or open bounds for a numeric config value, used as ``Annotated[float, Interval(ge=0)]``."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def check(self, key: str, value: Any) -> None:
        """Raise ValueError naming ``key`` if ``value`` lies outside the interval or is not finite."""
        if isinstance(value, (list, tuple)):
            for v in value:
                self.check(key, v)
            return
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{key}={value!r} must be finite")
        bad = (
            (self.ge is not None and value < self.ge, f">= {self.ge}"),
            (self.gt is not None and value <= self.gt, f"> {self.gt}"),
            (self.le is not None and value > self.le, f"<= {self.le}"),
            (self.lt is not None and value >= self.lt, f"< {self.lt}"),
        )
        for failed, rule in bad:
            if failed:
                raise ValueError(f"{key}={value!r} is out of range: must be {rule}")


@dataclass(frozen=True)
class Choice:
    """The allowed values of a string config value, used as ``Annotated[str, Choice("exp", "step")]``."""

    options: tuple[str, ...]

    def __init__(self, *options: str) -> None:
        object.__setattr__(self, "options", tuple(options))

    def check(self, key: str, value: Any) -> None:
        if value not in self.options:
            raise ValueError(f"{key}={value!r} is not allowed; choose one of {list(self.options)}")


@dataclass(frozen=True)
class Folder:
    """Marks a factory argument whose value names a folder, as ``Annotated[str, Folder()]``: a relative value is
    resolved against the launch directory before trials run in other processes (``platform.plan``)."""


SIZE_ROLES = ("val_per_class", "max_train_per_class", "max_test_per_class", "image_size", "imbalance_ratio")


@dataclass(frozen=True)
class Size:
    """Marks a dataset size knob for ``--smoke`` (``platform.smoke``), as ``Annotated[int, Size("image_size")]``.

    ``role`` is one of ``SIZE_ROLES``: ``val_per_class`` (validation images held out per class), ``max_train_per_class``
    and ``max_test_per_class`` (per-class caps), ``image_size`` (network input side, pixels) and ``imbalance_ratio``
    (n_max / n_min, read to size the training cap).

    Raises:
        ValueError: an unknown ``role``.
    """

    role: str

    def __post_init__(self) -> None:
        if self.role not in SIZE_ROLES:
            raise ValueError(f"Size role {self.role!r} is unknown; known: {list(SIZE_ROLES)}")


def _type_ok(value: Any, hint: Any) -> bool:
    """Whether a YAML-loaded ``value`` fits the annotation ``hint`` (ints are accepted as floats)."""
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return _type_ok(value, args[0])
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return any(_type_ok(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is bool:
        return isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (tuple, list, typing.Sequence) or hint in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False
        item = args[0] if args else Any
        return all(_type_ok(v, item) for v in value)
    if origin in (dict, typing.Mapping) or hint in (dict,):
        return isinstance(value, Mapping)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _constraints(hint: Any) -> list[Any]:
    """The Interval/Choice markers inside an annotation, including inside Optional[...]."""
    found: list[Any] = []
    if typing.get_origin(hint) is typing.Annotated:
        found += [m for m in typing.get_args(hint)[1:] if hasattr(m, "check")]
        hint = typing.get_args(hint)[0]
    for arg in typing.get_args(hint):
        found += _constraints(arg)
    return found


def _markers(hint: Any, kind: type) -> list[Any]:
    """The ``kind`` instances inside an annotation's ``Annotated[...]`` metadata, including inside Optional[...]."""
    found: list[Any] = []
    if typing.get_origin(hint) is typing.Annotated:
        found += [m for m in typing.get_args(hint)[1:] if isinstance(m, kind)]
        hint = typing.get_args(hint)[0]
    for arg in typing.get_args(hint):
        found += _markers(arg, kind)
    return found


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) is typing.Annotated:
        return _describe(typing.get_args(hint)[0])
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def check_kwargs(
    where: str,
    factory: Callable[..., Any],
    kwargs: Mapping[str, Any],
    supplied: tuple[str, ...] = (),
    partial: bool = False,
) -> None:
    """Validate ``kwargs`` against ``factory``'s keyword parameters.

    Args:
        where: the config path used in messages, e.g. ``"loss"``.
        factory: a class or function whose signature is the schema.
        kwargs: values from the config.
        supplied: names the calling code passes itself (e.g. ``class_counts``); the config may not set them.
        partial: ``kwargs`` is only part of the arguments (an alias's fixed keys): skip the required-key check.
    Raises:
        ValueError: naming the offending key.
    """
    target = factory.__init__ if inspect.isclass(factory) else factory
    sig = inspect.signature(target)
    hints = typing.get_type_hints(target, include_extras=True)
    params = {n: p for n, p in sig.parameters.items() if n != "self" and p.kind is not p.VAR_POSITIONAL}
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    settable = sorted(n for n, p in params.items() if n not in supplied and p.kind is not p.VAR_KEYWORD)
    for key, value in kwargs.items():
        if key in supplied:
            raise ValueError(f"{where}.{key} is computed from the data and cannot be set in the config")
        if key not in params:
            if accepts_any:
                continue
            raise ValueError(f"unknown key {where}.{key}; known keys: {settable}")
        hint = hints.get(key, params[key].annotation)
        if not _type_ok(value, hint):
            raise ValueError(f"{where}.{key}={value!r} has the wrong type: expected {_describe(hint)}")
        if value is not None:
            for marker in _constraints(hint):
                marker.check(f"{where}.{key}", value)
    if partial:
        return
    missing = [
        n
        for n, p in params.items()
        if p.default is p.empty and p.kind not in (p.VAR_KEYWORD,) and n not in kwargs and n not in supplied
    ]
    if missing:
        raise ValueError(f"{where} is missing required key(s): {[f'{where}.{m}' for m in missing]}")


@dataclass(frozen=True)
class Preset:
    """A registry alias: the entry ``base`` with the keyword arguments ``fixed`` set for good."""

    base: str
    fixed: Mapping[str, Any]


def _preset_factory(name: str, base: str, factory: Callable[..., Any], fixed: Mapping[str, Any]) -> Callable[..., Any]:
    """A keyword-only factory that calls ``factory(**fixed, **kwargs)``; its signature and type hints are the base's
    minus the fixed keys, so ``check_kwargs`` validates it like any registered factory."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    sig = inspect.signature(target)
    hints = typing.get_type_hints(target, include_extras=True)
    params = [p for n, p in sig.parameters.items() if n != "self" and n not in fixed]

    def build(**kwargs: Any) -> Any:
        return factory(**fixed, **kwargs)

    build.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    build.__annotations__ = {p.name: hints[p.name] for p in params if p.name in hints}
    build.__name__ = build.__qualname__ = name
    build.__module__ = factory.__module__
    fixed_text = ", ".join(f"{k}={v!r}" for k, v in fixed.items())
    build.__doc__ = f"'{base}' with {fixed_text} fixed.\n\n{factory.__doc__ or ''}"
    return build


class Registry(Generic[F]):
    """A name -> factory table. ``register`` raises on duplicates and ``get`` on unknown names; ``alias`` adds a
    preset of a registered entry; ``where`` says where a name is defined."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., Any]] = {}
        self._presets: dict[str, Preset] = {}

    def _add(self, name: str, factory: Callable[..., Any]) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is already registered")
        self._entries[name] = factory

    def register(self, name: str) -> Callable[[F], F]:
        def deco(factory: F) -> F:
            self._add(name, factory)
            return factory

        return deco

    def alias(self, name: str, base: str, **fixed: Any) -> None:
        """Register ``name`` as ``base`` with the keyword arguments ``fixed`` set; its config schema is the base's
        minus those keys, and a config that sets one of them is refused (``check``).

        Raises:
            KeyError: ``base`` is not registered.
            ValueError: ``name`` is taken, or ``fixed`` does not fit ``base``'s schema (unknown key, wrong type,
                out of range), naming the key.
        """
        factory = self.get(base)
        if not fixed:
            raise ValueError(f"{self.kind} alias '{name}' of '{base}' fixes nothing: register a name only once")
        check_kwargs(f"{self.kind} alias '{name}': {self.kind}", factory, fixed, partial=True)
        self._add(name, _preset_factory(name, base, factory, fixed))
        self._presets[name] = Preset(base=base, fixed=dict(fixed))

    def preset(self, name: str) -> Preset | None:
        """The alias behind ``name``, or None for an entry registered with its own factory."""
        self.get(name)
        return self._presets.get(name)

    def canonical(self, name: str, kwargs: Mapping[str, Any]) -> str:
        """The alias a base entry with ``kwargs`` amounts to (``cifar_lt`` with ``source: cifar10`` is
        ``cifar10_lt``), so tables keyed by alias names (smoke sizes, paper figures, required files) find it;
        ``name`` itself when no alias of it fixes exactly these values.
        """
        for alias, p in sorted(self._presets.items()):
            if p.base == name and all(k in kwargs and kwargs[k] == v for k, v in p.fixed.items()):
                return alias
        return name

    def where(self, name: str) -> str:
        """Where ``name`` is defined: ``module:qualname`` of its factory, or the alias and the base's location."""
        p = self.preset(name)
        if p is not None:
            fixed = ", ".join(f"{k}={v!r}" for k, v in p.fixed.items())
            return f"alias of '{p.base}' with {fixed} ({self.where(p.base)})"
        factory = self._entries[name]
        return f"{factory.__module__}:{factory.__qualname__}"

    def describe(self) -> dict[str, str]:
        """``{name: where(name)}`` for every registered name, sorted."""
        return {n: self.where(n) for n in self.names()}

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> Callable[..., Any]:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} '{name}'; known: {self.names()}") from None

    def supplied_params(self, name: str, available: Mapping[str, Any]) -> dict[str, Any]:
        """The subset of ``available`` data-derived values that factory ``name`` declares as parameters."""
        factory = self.get(name)
        target = factory.__init__ if inspect.isclass(factory) else factory
        params = inspect.signature(target).parameters
        return {k: v for k, v in available.items() if k in params}

    def marked(self, name: str, kind: type) -> dict[str, Any]:
        """``{argument: marker}`` for the arguments of factory ``name`` annotated with a ``kind`` marker (e.g.
        ``Folder`` or ``Size``), in signature order; an alias's fixed arguments are not among them.

        Raises:
            KeyError: unknown ``name``.
        """
        factory = self.get(name)
        target = factory.__init__ if inspect.isclass(factory) else factory
        hints = typing.get_type_hints(target, include_extras=True)
        out: dict[str, Any] = {}
        for arg in inspect.signature(target).parameters:
            found = _markers(hints.get(arg), kind)
            if found:
                out[arg] = found[0]
        return out

    def check(self, name: str, kwargs: Mapping[str, Any], supplied: tuple[str, ...] = ()) -> None:
        """Validate a config entry ``{name, **kwargs}`` without building it.

        Raises:
            KeyError: unknown ``name``.
            ValueError: naming the offending key (including a key an alias fixes).
        """
        factory = self.get(name)
        p = self._presets.get(name)
        for key in kwargs:
            if p is not None and key in p.fixed:
                raise ValueError(
                    f"{self.kind}.{key} is fixed to {p.fixed[key]!r} by '{name}' (an alias of "
                    f"'{p.base}'); use {self.kind}.name={p.base} to set it"
                )
        check_kwargs(self.kind, factory, kwargs, supplied)

    def build(self, name: str, kwargs: Mapping[str, Any], **available: Any) -> Any:
        """Check ``kwargs``, then call the factory with them plus whichever ``available`` values it declares."""
        extra = self.supplied_params(name, available)
        self.check(name, kwargs, tuple(available))
        return self.get(name)(**kwargs, **extra)


LOSSES: Registry[Any] = Registry("loss")
MODELS: Registry[Any] = Registry("model")
DATASETS: Registry[Any] = Registry("data")
