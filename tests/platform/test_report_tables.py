"""platform.report.tables: mean and seed std, aggregation by variant, formatting, post-hoc taus, the Pareto front and
the geometry tables, against hand-computed values."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from platform.report import tables as rt


def test_mean_std_is_mean_and_sample_std_of_finite_values() -> None:
    s = rt.mean_std([0.5, 0.7, 0.9, float("nan")])
    assert s.n == 3
    assert s.mean == pytest.approx(0.7)
    assert s.std == pytest.approx(0.2)  # sqrt((0.2^2 + 0 + 0.2^2) / (3 - 1))


def test_mean_std_of_one_value_has_no_std_and_of_none_has_no_mean() -> None:
    one = rt.mean_std([0.4])
    assert (one.mean, one.n) == (0.4, 1) and math.isnan(one.std)
    none = rt.mean_std([])
    assert none.n == 0 and math.isnan(none.mean)


def test_aggregate_groups_by_variant_in_order_of_appearance() -> None:
    frame = pd.DataFrame(
        {
            "variant": ["la", "ce", "la", "ce"],
            "seed": [0, 0, 1, 1],
            "test/balanced_acc": [0.40, 0.30, 0.44, 0.34],
            "test/ece": [0.1, 0.2, 0.3, float("nan")],
        }
    )
    stats = rt.aggregate(frame, ["test/balanced_acc", "test/ece", "test/absent"])
    assert list(stats) == ["la", "ce"]
    assert stats["la"]["test/balanced_acc"].mean == pytest.approx(0.42)
    assert stats["la"]["test/balanced_acc"].std == pytest.approx(math.sqrt(2 * 0.02**2))  # ddof = 1
    assert stats["ce"]["test/ece"].n == 1 and math.isnan(stats["ce"]["test/ece"].std)
    assert "test/absent" not in stats["la"]


def test_format_stat() -> None:
    assert rt.format_stat(rt.Stat(0.4211, 0.0123, 3), percent=True) == "42.11 ± 1.23"
    assert rt.format_stat(rt.Stat(0.4211, math.nan, 1), percent=True) == "42.11"
    assert rt.format_stat(rt.Stat(1.23456, 0.5, 2)) == "1.235 ± 0.500"
    assert rt.format_stat(None) == rt.format_stat(rt.Stat(math.nan, math.nan, 0)) == "—"


def test_posthoc_taus_are_found_and_sorted_numerically() -> None:
    cols = [
        "test/posthoc_tau2/balanced_acc",
        "test/posthoc_tau0.5/balanced_acc",
        "test/posthoc_tau1/acc",
        "test/posthoc_tau1/balanced_acc",
        "val/posthoc_tau3/balanced_acc",
    ]
    assert rt.posthoc_taus(cols, "test/") == ["0.5", "1", "2"]


def test_pareto_front_maximises_both_keeps_ties_and_skips_nan() -> None:
    x = [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, float("nan"), 0.5]
    y = [5.0, 4.0, 1.0, 1.0, 2.0, 1.0, 9.0, 5.0]
    # (1,5), (2,4), (3,1) twice; (1,1), (2,2) and (0.5,5) are dominated; nan never on the front
    assert rt.pareto_front(x, y) == [0, 1, 2, 5]


def test_geometry_tables_hold_one_unit_each_for_both_spaces_and_the_training_sample() -> None:
    stats = {
        "elm": {
            k: rt.Stat(0.3, 0.01, 3)
            for k in (
                "test/emb_proj/spread_pairwise_many",
                "train/emb_proj/spread_pairwise_few",
                "test/emb_backbone/var_ratio_few",
                "train/emb_backbone/spread_logsize_spearman",
            )
        }
    }
    tables = rt.geometry_tables(stats, "test/")
    titles = [t for t, _, _ in tables]
    assert titles[0].startswith("Spread in the projections") and "1 - cos" in titles[0]
    assert any(t.startswith("Within-class variance ratio in the backbone") for t in titles)
    assert titles[-1].startswith("Spearman correlation")
    first = tables[0]
    assert first[1] == ["variant", "seeds", "test Many", "train Few"] and first[2] == [
        ["elm", "3", "0.300 ± 0.010", "0.300 ± 0.010"]
    ]
