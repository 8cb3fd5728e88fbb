"""``include:`` in config files (``elm.config_files``): recipes merge in order under the file's own keys, a mapping
key by key and anything else by replacement; a bad include is one line naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from elm.config import ConfigError, from_dict, load_config
from elm.config_files import read_config, read_yaml
from tests.conftest import tiny_raw


def write(path: Path, raw: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw, sort_keys=False))
    return path


def test_a_file_without_include_reads_as_plain_yaml(tmp_path: Path) -> None:
    path = write(tmp_path / "exp.yaml", tiny_raw())
    assert read_config(path) == read_yaml(path) == tiny_raw()


def test_the_file_merges_over_its_recipe_mappings_by_key_lists_and_scalars_by_replacement(tmp_path: Path) -> None:
    recipe = {k: v for k, v in tiny_raw().items() if k not in ("name", "loss")}
    recipe["optim"] = {**recipe["optim"], "milestones": [5, 8], "weight_decay": 0.001}
    write(tmp_path / "recipes" / "base.yaml", recipe)
    path = write(
        tmp_path / "exp.yaml",
        {
            "include": "recipes/base.yaml",
            "name": "mine",
            "loss": {"name": "cross_entropy"},
            "optim": {"lr": 0.2, "milestones": [1]},
            "train": {"eval_every": 2},
        },
    )
    raw = read_config(path)
    assert "include" not in raw
    assert raw["optim"] == {**recipe["optim"], "lr": 0.2, "milestones": [1]}  # the list is replaced, not appended
    assert raw["train"] == {**recipe["train"], "eval_every": 2}
    assert raw["data"] == recipe["data"] and raw["model"] == recipe["model"]
    assert raw["name"] == "mine" and raw["loss"] == {"name": "cross_entropy"}
    cfg = load_config(path)
    assert cfg.optim.lr == 0.2 and list(cfg.optim.milestones) == [1] and cfg.train.eval_every == 2
    assert cfg.optim.weight_decay == 0.001 and cfg.data.kwargs == from_dict(tiny_raw()).data.kwargs


def test_includes_merge_in_order_and_nested_includes_resolve_relative_to_their_own_file(tmp_path: Path) -> None:
    write(tmp_path / "r" / "deep" / "lr.yaml", {"optim": {"lr": 0.3, "epochs": 7}})
    write(tmp_path / "r" / "a.yaml", {"include": "deep/lr.yaml", "optim": {"epochs": 5}, "seed": 1})
    write(tmp_path / "r" / "b.yaml", {"seed": 2, "train": {"eval_every": 3}})
    path = write(tmp_path / "exp.yaml", {"include": ["r/a.yaml", "r/b.yaml"], "name": "x"})
    # a.yaml over deep/lr.yaml, then b.yaml over both, then the file
    assert read_config(path) == {"optim": {"lr": 0.3, "epochs": 5}, "seed": 2, "train": {"eval_every": 3}, "name": "x"}


def test_a_recipe_loss_with_another_name_keeps_its_keys_and_is_refused_by_name(tmp_path: Path) -> None:
    """Merging is key by key, so a file that switches the loss must not inherit the recipe's ELM keys silently."""
    write(tmp_path / "base.yaml", {k: v for k, v in tiny_raw().items() if k != "name"})
    path = write(tmp_path / "exp.yaml", {"include": "base.yaml", "name": "x", "loss": {"name": "cross_entropy"}})
    with pytest.raises(ConfigError, match=r"exp\.yaml \(with base\.yaml\): .*loss.*(lam|margin|tau)"):
        load_config(path)


@pytest.mark.parametrize(
    "files, needle",
    [
        ({"exp.yaml": {"include": "nope.yaml"}}, r"exp\.yaml: included file 'nope\.yaml' not found \(looked for /"),
        ({"exp.yaml": {"include": 3}}, r"exp\.yaml: include must be a file path or a list of file paths .* got 3$"),
        ({"exp.yaml": {"include": []}}, r"exp\.yaml: include must be a file path or a list"),
        ({"exp.yaml": {"include": ["a.yaml", None]}}, r"exp\.yaml: include must be a file path or a list"),
        (
            {"exp.yaml": {"include": "a.yaml"}, "a.yaml": {"include": "b.yaml"}, "b.yaml": {"include": "a.yaml"}},
            r"b\.yaml: include 'a\.yaml' makes a cycle: \S*a\.yaml -> \S*b\.yaml -> \S*a\.yaml$",
        ),
        ({"exp.yaml": {"include": "exp.yaml"}}, r"include 'exp\.yaml' makes a cycle"),
        ({"exp.yaml": {"include": "a.yaml"}, "a.yaml": "optim: {lr: 1, lr: 2}\n"}, r"a\.yaml is not valid YAML: .*"),
        ({"exp.yaml": {"include": "a.yaml"}, "a.yaml": "- 1\n- 2\n"}, r"a\.yaml must contain a mapping"),
    ],
)
def test_a_bad_include_is_one_line_naming_the_file(files: dict[str, Any], needle: str, tmp_path: Path) -> None:
    for name, raw in files.items():
        write(tmp_path / name, raw)
    for read in (read_config, load_config):
        with pytest.raises(ConfigError, match=needle) as info:
            read(tmp_path / "exp.yaml")
        assert "\n" not in str(info.value)


def test_a_key_given_twice_in_an_included_file_names_the_key(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "optim: {lr: 1, lr: 2}\n")
    path = write(tmp_path / "exp.yaml", {"include": "a.yaml"})
    with pytest.raises(ConfigError, match=r"key 'lr' is given twice in one mapping at line 1"):
        read_config(path)


def test_a_block_tagged_replace_drops_the_recipe_block_instead_of_merging(tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", {k: v for k, v in tiny_raw().items() if k != "name"})
    path = write(tmp_path / "exp.yaml", "include: base.yaml\nname: x\nloss: !replace {name: cross_entropy}\n")
    raw = read_config(path)
    assert raw["loss"] == {"name": "cross_entropy"} and type(raw["loss"]) is dict  # a plain dict for every reader
    assert load_config(path).loss.kwargs == {}
    assert yaml.safe_dump(raw)  # nothing of the tag is left that a YAML writer would refuse
    with pytest.raises(ConfigError, match=r"!replace must tag a mapping"):
        read_config(write(tmp_path / "bad.yaml", "include: base.yaml\nloss: !replace [1]\n"))


def test_includes_are_relative_to_the_real_file_for_a_linked_experiment_file_too(tmp_path: Path) -> None:
    write(tmp_path / "shipped" / "recipes" / "r.yaml", {"seed": 7})
    write(tmp_path / "shipped" / "exp.yaml", {"include": "recipes/r.yaml", "name": "x"})
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "exp.yaml").symlink_to(tmp_path / "shipped" / "exp.yaml")
    assert read_config(tmp_path / "mine" / "exp.yaml") == {"seed": 7, "name": "x"}


def test_a_directory_or_a_non_utf8_file_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "recipes").mkdir()
    path = write(tmp_path / "exp.yaml", {"include": "recipes"})
    with pytest.raises(ConfigError, match=r"exp\.yaml: include 'recipes' is a directory, not a file"):
        read_config(path)
    (tmp_path / "latin.yaml").write_bytes("name: caf\u00e9\n".encode("latin-1"))
    path = write(tmp_path / "exp2.yaml", {"include": "latin.yaml"})
    with pytest.raises(ConfigError, match=r"latin\.yaml is not UTF-8 text: byte 0xe9 at offset 9$"):
        load_config(path)


def test_a_bad_value_from_a_recipe_names_the_file_and_its_includes(tmp_path: Path) -> None:
    write(tmp_path / "recipes" / "r.yaml", {k: v for k, v in tiny_raw().items() if k != "name"} | {"optim": {"lrr": 1}})
    path = write(tmp_path / "exp.yaml", {"include": "recipes/r.yaml", "name": "x"})
    with pytest.raises(ConfigError, match=r"exp\.yaml \(with recipes/r\.yaml\): unknown key optim\.lrr") as info:
        load_config(path)
    assert "\n" not in str(info.value)
