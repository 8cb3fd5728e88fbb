"""Every ``ablations/*.yaml`` loads, validates and builds its Tune search space, without data or training.

Also checks that each file's header states its run command and expected result, so a reader knows how to run a file
and what it should give before running it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from elm.config import load_config
from platform.smoke import smoke
from platform.tune import make_plan, param_space

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
    """``platform.tune.make_plan`` (all of its validation but the dataset check) and the Tune param space."""
    return param_space(make_plan(str(path), {}, smoke_run=smoke_run, check_data=False))


def test_there_are_ablations() -> None:
    assert len(ABLATIONS) >= 4


@pytest.mark.parametrize("path", ABLATIONS, ids=[p.name for p in ABLATIONS])
def test_ablation_header_states_run_command_and_expected_result(path: Path) -> None:
    lines = header(path)
    assert any(ln.startswith("Run:") and "python -m platform.tune" in ln and path.name in ln for ln in lines), (
        f"{path.name}: header needs a 'Run: python -m platform.tune ablations/{path.name} ...' line"
    )
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
    if smoke_run:  # what else a smoke run keeps and shrinks: tests/platform/test_smoke.py
        assert smoke(cfg).optim.epochs <= cfg.optim.epochs and smoke(cfg).train.eval_every == cfg.train.eval_every
