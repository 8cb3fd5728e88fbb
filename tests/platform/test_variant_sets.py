"""Named ablation variant sets (``ablation: {variant_set: four_way}``): the shipped files that use one plan exactly
the variants they spelt out before, and a bad set, override or order is one line naming what is valid."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from elm.config import ConfigError, from_dict, load_config
from platform.spec import parse_platform
from platform.tune import make_plan
from platform.variant_sets import expand_variant_set, named_sets
from tests.conftest import tiny_raw

CE = {"loss": {"name": "cross_entropy"}}
LA = {"loss": {"name": "logit_adjusted", "tau": 1.0}}
EMB = {"loss": {"name": "embedding_margin", "lam": 0.1, "margin": 0.1, "temperature": 0.1}}
ELM = {"loss": {"name": "elm", "tau": 1.0, "lam": 0.1, "margin": 0.1, "temperature": 0.1}}
TUNED = {"lam": 0.4626, "margin": 0.0101, "temperature": 0.0611}
LOG_PRIOR = {"margin_schedule": "log_prior"}
# The variant blocks the files spelt out before variant sets, in their order.
BEFORE = {
    "smoke_ablation": {"ce": CE, "logit_only": LA, "embedding_only": EMB, "elm": ELM},
    "cifar10_mlp_ablation": {"ce": CE, "logit_only": LA, "embedding_only": EMB, "elm": ELM},
    "cifar100_ablation": {
        "ce": CE,
        "logit_only": LA,
        "embedding_only": {"loss": {**EMB["loss"], **LOG_PRIOR}},
        "elm": {"loss": {**ELM["loss"], **LOG_PRIOR}},
    },
    "cifar10_reduced": {
        "elm": {"loss": {**ELM["loss"], **TUNED}},
        "embedding_only": {"loss": {**EMB["loss"], **TUNED}},
        "logit_only": LA,
        "ce": CE,
    },
}


@pytest.mark.parametrize("stem", sorted(BEFORE))
def test_a_shipped_file_plans_the_variants_it_spelt_out_before(stem: str, tmp_path: Path) -> None:
    path = f"ablations/{stem}.yaml"
    assert "variant_set" in yaml.safe_load(Path(path).read_text())["ablation"]
    for smoke_run in (False, True):
        plan = make_plan(path, {}, smoke_run=smoke_run, out=str(tmp_path / "out"), check_data=False)
        assert list(plan.variants.items()) == list(BEFORE[stem].items())  # values and order
        assert plan.cfg.platform["ablation"] == {"seeds": list(plan.spec.ablation.seeds), "variants": BEFORE[stem]}
    assert parse_platform(load_config(path)).ablation.variants == BEFORE[stem]  # for any reader of the file


def test_set_keys_win_and_land_on_the_expanded_variants(tmp_path: Path) -> None:
    raw = tiny_raw(
        ablation={"variant_set": "four_way", "variants": {"elm": {"loss": {"tau": 2.0}}, "wide": {"model.hidden": 64}}},
        tune={"searcher": "grid", "scheduler": "fifo"},
    )
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(raw))
    plan = make_plan(
        str(tmp_path / "exp.yaml"),
        {"ablation.variants.ce.loss.label_smoothing": 0.1},
        out=str(tmp_path / "out"),
        check_data=False,
    )
    assert list(plan.variants) == ["ce", "logit_only", "embedding_only", "elm", "wide"]  # new names after the set's
    assert plan.variants["elm"] == {"loss": {**ELM["loss"], "tau": 2.0}}
    assert plan.variants["ce"] == {"loss": {"name": "cross_entropy", "label_smoothing": 0.1}}


def test_a_dotted_override_merges_into_the_set_variant_so_each_value_is_spelt_once(tmp_path: Path) -> None:
    raw = tiny_raw(
        ablation={"variant_set": "four_way", "variants": {"elm": {"loss.lam": 0.5, "model.hidden": 16}}},
        tune={"searcher": "grid", "scheduler": "fifo"},
    )
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(raw))
    plan = make_plan(
        str(tmp_path / "exp.yaml"),
        {"ablation.variants.ce.loss.label_smoothing": 0.1},
        check_data=False,
        out=str(tmp_path / "out"),
    )
    # loss.lam lands inside the set's loss mapping; model.hidden has no mapping to land in and stays dotted
    assert plan.variants["elm"] == {"loss": {**ELM["loss"], "lam": 0.5}, "model.hidden": 16}
    assert plan.cfg.platform["ablation"]["variants"]["elm"] == plan.variants["elm"]


@pytest.mark.parametrize(
    "base, over, loss",
    [
        # the file's dotted value wins over the set's, whichever way the set spells it
        (
            {"loss": {"name": "logit_adjusted"}, "loss.tau": 1.0},
            {"loss.tau": 2.0},
            {"name": "logit_adjusted", "tau": 2.0},
        ),
        (
            {"loss": {"name": "logit_adjusted"}, "loss.tau": 1.0},
            {"loss": {"tau": 2.0}},
            {"name": "logit_adjusted", "tau": 2.0},
        ),
        # a dotted key set before the block it belongs to is replaced by the block, as set_keys applies them in order
        ({"loss.tau": 1.0, "loss": {"name": "logit_adjusted"}}, {}, {"name": "logit_adjusted"}),
        (
            {"loss.tau": 1.0, "loss": {"name": "logit_adjusted"}},
            {"loss.tau": 2.0},
            {"name": "logit_adjusted", "tau": 2.0},
        ),
        # a mapping under a dotted key replaces the value there; a mapping under a block name merges into it
        ({"loss": {"name": "elm", "margin": 0.1}}, {"loss": {"margin": 0.2}}, {"name": "elm", "margin": 0.2}),
    ],
)
def test_merged_overrides_mean_what_set_keys_makes_of_them(base: dict, over: dict, loss: dict) -> None:
    from elm.config import set_keys
    from platform.variant_sets import merge_overrides

    merged = merge_overrides(base, over)
    assert set_keys(tiny_raw(), merged)["loss"] == loss
    assert merge_overrides(base, over) == merged and base == dict(base)  # pure


def test_a_set_named_by_set_keys_is_saved_expanded(tmp_path: Path) -> None:
    raw = tiny_raw(
        ablation={"seeds": [0], "variants": {"wide": {"model.hidden": 64}}},
        tune={"searcher": "grid", "scheduler": "fifo"},
    )
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(raw))
    plan = make_plan(
        str(tmp_path / "exp.yaml"), {"ablation.variant_set": "four_way"}, out=str(tmp_path / "out"), check_data=False
    )
    saved = plan.cfg.platform["ablation"]
    assert "variant_set" not in saved  # --resume and the report never read the set file again
    assert list(saved["variants"]) == ["ce", "logit_only", "embedding_only", "elm", "wide"]
    assert saved["variants"]["elm"] == ELM


@pytest.mark.parametrize(
    "ablation, needle",
    [
        ({"variant_set": "for_way"}, r"^ablation\.variant_set: unknown variant set 'for_way'; known: \['four_way'"),
        (
            {"variant_set": "four_way", "order": ["elm", "ce"]},
            r"^ablation\.order=\['elm', 'ce'\] must name every variant once: "
            r"\['ce', 'elm', 'embedding_only', 'logit_only'\]$",
        ),
        ({"variant_set": "four_way", "variants": {"elm": "big"}}, r"^ablation\.variants must map variant names to"),
    ],
)
def test_a_bad_set_order_or_override_is_one_line(ablation: dict, needle: str, tmp_path: Path) -> None:
    raw = tiny_raw(ablation=ablation, tune={"searcher": "grid", "scheduler": "fifo"})
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(raw))
    for smoke_run in (False, True):
        with pytest.raises(ConfigError, match=needle) as info:
            make_plan(str(tmp_path / "exp.yaml"), {}, smoke_run=smoke_run, out=str(tmp_path / "o"), check_data=False)
        assert "\n" not in str(info.value)


def test_a_block_without_a_set_is_left_alone_and_order_needs_a_set() -> None:
    block = {"seeds": [0], "variants": {"a": CE}}
    assert expand_variant_set(block) is block
    assert "four_way" in named_sets()
    with pytest.raises(ConfigError, match=r"unknown key ablation\.order"):
        parse_platform(from_dict(tiny_raw(ablation={**block, "order": ["a"]}, tune={"searcher": "grid"})))
