"""Search spaces: named + inline entries, validated against the config, converted to Tune domains."""

from __future__ import annotations

import pytest

from elm.config import ConfigError, from_dict
from platform.search_spaces import named_spaces, parse_search, to_tune, validate_space
from tests.conftest import tiny_raw


def test_named_space_is_the_joint_elm_space_and_inline_entries_win() -> None:
    assert {"elm_joint", "la_tau"} <= set(named_spaces())
    space = parse_search(
        {"spaces": ["elm_joint"], "loss.tau": {"uniform": [0.5, 1.5]}, "loss.temperature": {"loguniform": [0.05, 0.5]}}
    )
    assert set(space) == {"loss.tau", "loss.margin", "loss.lam", "loss.temperature"}
    assert space["loss.tau"].args == (0.5, 1.5)
    validate_space(space, from_dict(tiny_raw()), "optuna")


@pytest.mark.parametrize(
    "raw, needle",
    [
        ({"spaces": ["nope"]}, "unknown search space 'nope'"),
        ({"loss.tau": {"gaussian": [0, 1]}}, "unknown kind 'gaussian'"),
        ({"loss.tau": {"uniform": [2, 1]}}, "lower bound 2"),
        ({"loss.tau": {"uniform": [0]}}, "takes 2 numbers"),
        ({"loss.lam": {"loguniform": [0, 1]}}, "positive bounds"),
        ({"loss.tau": [0, 1]}, "one-key mapping"),
    ],
)
def test_malformed_entries_name_the_key(raw: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_search(raw)


def test_keys_and_bounds_are_checked_against_the_config() -> None:
    cfg = from_dict(tiny_raw())
    with pytest.raises(ConfigError, match=r"search\.loss\.tua"):
        validate_space(parse_search({"loss.tua": {"uniform": [0, 1]}}), cfg, "optuna")
    with pytest.raises(ConfigError, match=r"search\.loss\.tau=-1"):
        validate_space(parse_search({"loss.tau": {"uniform": [-1, 1]}}), cfg, "optuna")
    with pytest.raises(ConfigError, match="Optuna cannot take"):
        validate_space(parse_search({"loss.tau": {"grid": [0, 1]}}), cfg, "optuna")
    with pytest.raises(ConfigError, match="takes only grid axes"):
        validate_space(parse_search({"loss.tau": {"uniform": [0, 1]}}), cfg, "grid")


def test_to_tune_builds_the_matching_domains() -> None:
    from ray.tune.search.sample import Categorical, Float, Integer

    domains = to_tune(
        parse_search(
            {
                "loss.tau": {"uniform": [0, 2]},
                "loss.lam": {"loguniform": [0.01, 1]},
                "optim.batch_size": {"randint": [16, 64]},
                "loss.margin": {"choice": [0.1, 0.2]},
            }
        )
    )
    assert isinstance(domains["loss.tau"], Float) and (domains["loss.tau"].lower, domains["loss.tau"].upper) == (0, 2)
    assert isinstance(domains["loss.lam"].sampler, Float._LogUniform)
    assert isinstance(domains["optim.batch_size"], Integer)
    assert isinstance(domains["loss.margin"], Categorical) and domains["loss.margin"].categories == [0.1, 0.2]
    assert to_tune(parse_search({"loss.tau": {"grid": [0, 1]}}))["loss.tau"] == {"grid_search": [0, 1]}


@pytest.mark.parametrize("name", ["cifar10.yaml", "cifar100.yaml"])
def test_shipped_cifar_joint_searches_tune_weight_decay(name: str) -> None:
    """Issue 15: weight decay belongs in the joint CIFAR space (a strong, often under-tuned long-tail baseline)."""
    from pathlib import Path

    from elm.config_files import read_config

    raw = read_config(Path(__file__).parents[2] / "ablations" / name)  # the search block comes from a recipe
    space = parse_search(raw["search"])
    assert {"loss.tau", "loss.margin", "loss.lam", "optim.weight_decay"} <= set(space)
    wd = space["optim.weight_decay"]
    assert wd.kind == "loguniform" and wd.args[0] <= raw["optim"]["weight_decay"] <= wd.args[1]
