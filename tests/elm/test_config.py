"""Config loading: every bad input is rejected before any work, with the key named."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from elm.config import ConfigError, from_dict, load_config, parse_set_args, set_keys, with_overrides
from tests.conftest import tiny_raw


def test_round_trip_is_identity() -> None:
    cfg = from_dict(tiny_raw())
    assert from_dict(cfg.to_dict()) == cfg
    assert from_dict(yaml.safe_load(cfg.to_yaml())) == cfg


@pytest.mark.parametrize(
    "overrides, needle",
    [
        ({"loss.tua": 1.0}, "loss.tua"),                      # unknown loss kwarg
        ({"optim.lrr": 0.1}, "optim.lrr"),                    # unknown optim key
        ({"loss.tau": "big"}, "loss.tau"),                    # wrong type
        ({"loss.tau": -1.0}, "loss.tau"),                     # out of range
        ({"loss.temperature": 0.0}, "loss.temperature"),      # open bound
        ({"optim.epochs": 0}, "optim.epochs"),
        ({"optim.schedule": "linear"}, "optim.schedule"),     # not a choice
        ({"optim.lr": float("nan")}, "optim.lr"),
        ({"loss.name": "la"}, "unknown loss 'la'"),
        ({"loss.class_counts": [1, 2]}, "computed from the data"),
        ({"train.bf16": "yes"}, "train.bf16"),
        ({"data.imbalance_ratio": 0.5}, "data.imbalance_ratio"),
    ],
)
def test_bad_values_name_the_key(overrides: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.").replace("(", r"\(")):
        from_dict(set_keys(tiny_raw(), overrides))


def test_unknown_top_level_key_and_missing_seed() -> None:
    with pytest.raises(ConfigError, match="unknown top-level key.*'modle'"):
        from_dict({**tiny_raw(), "modle": {}})
    raw = tiny_raw()
    del raw["seed"]
    with pytest.raises(ConfigError, match="missing required key 'seed'"):
        from_dict(raw)


def test_warmup_must_fit_in_training() -> None:
    with pytest.raises(ConfigError, match="warmup_epochs"):
        from_dict(set_keys(tiny_raw(), {"optim.warmup_epochs": 5, "optim.epochs": 5}))


def test_with_overrides_changes_only_the_key() -> None:
    cfg = from_dict(tiny_raw())
    new = with_overrides(cfg, {"loss.tau": 0.5, "optim.lr": 0.2})
    assert new.loss.kwargs["tau"] == 0.5 and new.optim.lr == 0.2
    assert new.loss.kwargs["lam"] == cfg.loss.kwargs["lam"] and new.model == cfg.model
    assert cfg.loss.kwargs["tau"] == 1.0  # the original is untouched (frozen)


def test_override_of_a_missing_parent_is_rejected() -> None:
    with pytest.raises(ConfigError, match="'nothere' is not in the config"):
        with_overrides(from_dict(tiny_raw()), {"nothere.x": 1})


def test_parse_set_args_reads_yaml_scalars() -> None:
    assert parse_set_args(["loss.tau=0.5", "train.bf16=true", "optim.milestones=[3, 4]", "name=x"]) == {
        "loss.tau": 0.5, "train.bf16": True, "optim.milestones": [3, 4], "name": "x"}
    with pytest.raises(ConfigError, match="key=value"):
        parse_set_args(["loss.tau"])


def test_load_config_reports_broken_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nseed: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(tiny_raw()))
    assert load_config(good, {"loss.tau": 0.0}).loss.kwargs["tau"] == 0.0


def test_set_keys_applies_in_order_and_never_edits_the_callers_values() -> None:
    block = {"name": "logit_adjusted"}
    overrides = {"loss": block, "loss.tau": 0.5}
    raw = tiny_raw()
    out = set_keys(raw, overrides)
    assert out["loss"] == {"name": "logit_adjusted", "tau": 0.5}
    assert block == {"name": "logit_adjusted"}  # a variant's loss block is reused by every trial: must stay intact
    assert raw == tiny_raw()
