"""Registries: duplicate and unknown names fail loudly; factory signatures act as the config schema."""

from __future__ import annotations

from typing import Annotated

import pytest

from elm.registry import Choice, Interval, Registry


def test_duplicate_and_unknown_names() -> None:
    reg: Registry = Registry("thing")

    @reg.register("a")
    def make_a(*, x: int = 1) -> int:
        return x

    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(make_a)
    with pytest.raises(KeyError, match=r"unknown thing 'b'; known: \['a'\]"):
        reg.get("b")


def test_build_checks_types_ranges_and_passes_declared_data_values() -> None:
    reg: Registry = Registry("loss")

    @reg.register("f")
    def f(
        *, counts: list, tau: Annotated[float, Interval(ge=0)] = 1.0, kind: Annotated[str, Choice("a", "b")] = "a"
    ) -> tuple:
        return counts, tau, kind

    assert reg.build("f", {"tau": 2}, counts=[1], unrelated=5) == ([1], 2, "a")
    with pytest.raises(ValueError, match=r"loss\.tau=-1 is out of range"):
        reg.build("f", {"tau": -1}, counts=[1])
    with pytest.raises(ValueError, match=r"loss\.kind='c' is not allowed"):
        reg.build("f", {"kind": "c"}, counts=[1])
    with pytest.raises(ValueError, match=r"loss\.tau=True has the wrong type"):
        reg.check("f", {"tau": True}, ("counts",))
    with pytest.raises(ValueError, match="missing required key"):
        reg.check("f", {}, ())
