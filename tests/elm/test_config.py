"""Config loading: every bad input is rejected before any work, with the key named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from elm.config import (
    PLATFORM_BLOCKS,
    ConfigError,
    check_name,
    from_dict,
    load_config,
    parse_set_args,
    set_keys,
    with_overrides,
)
from elm.config_files import read_yaml
from tests.conftest import REPO_ROOT, tiny_raw


def test_round_trip_is_identity() -> None:
    cfg = from_dict(tiny_raw())
    assert from_dict(cfg.to_dict()) == cfg
    assert from_dict(yaml.safe_load(cfg.to_yaml())) == cfg


@pytest.mark.parametrize(
    "overrides, needle",
    [
        ({"loss.tua": 1.0}, "loss.tua"),  # unknown loss kwarg
        ({"optim.lrr": 0.1}, "optim.lrr"),  # unknown optim key
        ({"loss.tau": "big"}, "loss.tau"),  # wrong type
        ({"loss.tau": -1.0}, "loss.tau"),  # out of range
        ({"loss.temperature": 0.0}, "loss.temperature"),  # open bound
        ({"optim.epochs": 0}, "optim.epochs"),
        ({"optim.schedule": "linear"}, "optim.schedule"),  # not a choice
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
        "loss.tau": 0.5,
        "train.bf16": True,
        "optim.milestones": [3, 4],
        "name": "x",
    }
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


SCIENTIFIC = ["1e-3", "5E+2", ".5e-1", "-2e5", "+1.5E-07", "3e0", "1_0e2"]


@pytest.mark.parametrize("text", SCIENTIFIC)
def test_scientific_notation_is_a_float_on_the_cli_and_in_files(text: str, tmp_path: Path) -> None:
    """PyYAML's YAML 1.1 resolver reads ``1e-3`` as a string, which once failed ``--set optim.lr=1e-3``."""
    assert parse_set_args([f"optim.lr={text}"]) == {"optim.lr": float(text)}
    assert type(parse_set_args([f"optim.lr={text}"])["optim.lr"]) is float
    assert parse_set_args([f"optim.milestones=[{text}, 2]"])["optim.milestones"] == [float(text), 2]
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(tiny_raw()).replace("lr: 0.05", f"lr: {text}"))
    assert read_yaml(path)["optim"]["lr"] == float(text)
    if float(text) > 0:
        assert load_config(path).optim.lr == float(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("10", 10),
        ("-3", -3),
        ("0", 0),
        ("e5", "e5"),
        ("1e", "1e"),
        ("1.2.3", "1.2.3"),
        ("e-3", "e-3"),
        ("1e-", "1e-"),
        ("x1e3", "x1e3"),
    ],
)
def test_ints_stay_ints_and_non_numbers_stay_strings(text: str, expected: object) -> None:
    value = parse_set_args([f"k={text}"])["k"]
    assert value == expected and type(value) is type(expected)
    if isinstance(expected, str):
        with pytest.raises(ValueError):
            float(text)


def test_scientific_lr_on_the_cli_passes_validation() -> None:
    cfg = from_dict(set_keys(tiny_raw(), parse_set_args(["optim.lr=1e-3", "optim.weight_decay=5E-4"])))
    assert cfg.optim.lr == 0.001 and cfg.optim.weight_decay == 0.0005


@pytest.mark.parametrize("block", ["optim", "train", *PLATFORM_BLOCKS])
def test_set_keys_creates_a_missing_known_block(block: str) -> None:
    raw = {k: v for k, v in tiny_raw().items() if k != block}
    out = set_keys(raw, {f"{block}.some_key": "http://x"})
    assert out[block] == {"some_key": "http://x"} and block not in raw


def test_tracking_uri_override_without_a_tracking_block() -> None:
    raw = tiny_raw()
    assert "tracking" not in raw
    cfg = from_dict(set_keys(raw, parse_set_args(["tracking.uri=http://x"])))
    assert cfg.platform["tracking"] == {"uri": "http://x"}


def test_unknown_top_level_block_in_an_override_names_it_and_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"'trakcing' is not in the config.*known: \[.*'tracking'") as info:
        set_keys(tiny_raw(), {"trakcing.uri": "http://x"})
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="'optim.sub' is not in the config"):  # below the top level: no creation
        set_keys(tiny_raw(), {"optim.sub.x": 1})


@pytest.mark.parametrize("name", ["a", "tiny", "la_tau", "cifar10-LT.v2", "0run", "x" * 100])
def test_good_names_pass(name: str) -> None:
    assert from_dict(tiny_raw(name=name)).name == name


@pytest.mark.parametrize(
    "name, needle",
    [
        (
            "tail's sweep",
            "name 'tail's sweep' may only use letters, digits, '.', '_' and '-' (it names folders and MLflow runs)",
        ),
        ("a/b", "may only use"),
        ('a"b', "may only use"),
        ("a b", "may only use"),
        ("caf\u00e9", "may only use"),
        (".hidden", "must start with a letter or digit"),
        ("-x", "must start with a letter or digit"),
        ("x" * 101, "has 101 characters; at most 100"),
        ("", "non-empty string"),
        (3, "non-empty string"),
    ],
)
def test_names_that_cannot_name_a_folder_or_run_are_rejected(name: object, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_dict(tiny_raw(name=name))
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_names_of_every_shipped_ablation_are_valid() -> None:
    files = sorted((REPO_ROOT / "ablations").glob("*.yaml"))
    assert files
    for path in files:
        check_name(read_yaml(path)["name"])
