"""Every ``ablations/*.yaml`` loads, validates and builds its Tune search space, without data or training.

Also checks that each file's header states its run command and expected result (STYLE.md, sections 2 and 5).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from elm.config import ConfigError, load_config, with_overrides
from platform.search_spaces import parse_search, to_tune, validate_space
from platform.smoke import smoke
from platform.spec import parse_platform

ABLATIONS = sorted((Path(__file__).resolve().parents[2] / "ablations").glob("*.yaml"))


def header(path: Path) -> list[str]:
    """The leading comment lines of a YAML file, without their '#'."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return lines


def check_and_build(path: Path, *, smoke_run: bool) -> dict[str, Any]:
    """``platform.tune.make_plan`` + ``param_space`` minus the dataset check: the Tune param space of ``path``."""
    from ray import tune

    cfg = load_config(path)
    if smoke_run:
        cfg = smoke(cfg)
    spec = parse_platform(cfg)
    space = parse_search(cfg.platform.get("search"))
    validate_space(space, cfg, spec.tune.searcher)
    param_space = to_tune(space)
    if spec.ablation is not None:
        assert spec.tune.searcher == "grid" and spec.tune.scheduler == "fifo", "ablations run a full grid"
        for name, variant in spec.ablation.variants.items():
            try:
                with_overrides(cfg, dict(variant))
            except ConfigError as e:
                raise AssertionError(f"{path.name}: ablation.variants.{name}: {e}") from None
        param_space["variant"] = tune.grid_search(list(spec.ablation.variants))
        param_space["seed"] = tune.grid_search(list(spec.ablation.seeds))
    else:
        assert space or spec.tune.searcher == "grid", f"{path.name}: nothing to search"
    return param_space


def test_there_are_ablations() -> None:
    assert len(ABLATIONS) >= 4


@pytest.mark.parametrize("path", ABLATIONS, ids=[p.name for p in ABLATIONS])
def test_ablation_header_states_run_command_and_expected_result(path: Path) -> None:
    lines = header(path)
    assert any(ln.startswith("Run:") and "python -m platform.tune" in ln and path.name in ln for ln in lines), \
        f"{path.name}: header needs a 'Run: python -m platform.tune ablations/{path.name} ...' line"
    assert any(ln.startswith("Expected") for ln in lines), f"{path.name}: header needs an 'Expected' line"


@pytest.mark.parametrize("smoke_run", [False, True], ids=["full", "smoke"])
@pytest.mark.parametrize("path", ABLATIONS, ids=[p.name for p in ABLATIONS])
def test_ablation_loads_and_builds_its_search_space(path: Path, smoke_run: bool) -> None:
    param_space = check_and_build(path, smoke_run=smoke_run)
    cfg = load_config(path)
    if "ablation" in cfg.platform:
        assert {"variant", "seed"} <= set(param_space)
    else:
        assert param_space, f"{path.name}: an empty search space"
    if smoke_run:
        assert smoke(cfg).optim.epochs <= 2
