"""platform.report.per_class: per-class means over seeds, log-size bins and the margin quantiles by group."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from platform.report import per_class
from tests.platform.report_fixtures import stats_of


def test_per_class_mean_averages_seeds_and_orders_by_size() -> None:
    rows = pd.DataFrame(
        [
            {"variant": "ce", "seed": s, "class": c, "train_count": n, "group": g, "accuracy": a}
            for s, accs in ((0, (1.0, 0.2)), (1, (0.8, 0.4)))
            for (c, n, g), a in zip(((0, 100, "many"), (1, 10, "few")), accs)
        ]
    )
    out = per_class.per_class_mean(rows, "accuracy")
    assert out["class"].tolist() == [0, 1]
    assert out["accuracy"].tolist() == pytest.approx([0.9, 0.3])
    assert out["n"].tolist() == [2, 2]


def test_binned_by_size_means_within_log_bins() -> None:
    pc = pd.DataFrame(
        {
            "variant": ["v"] * 4,
            "class": range(4),
            "train_count": [1, 2, 100, 50],
            "spread": [0.4, 0.2, 0.1, 0.3],
            "n": [1] * 4,
        }
    )
    out = per_class.binned_by_size(pc, "spread", bins=2)  # edges 1, 10, 100
    assert out["classes"].tolist() == [2, 2]
    assert out["spread"].tolist() == pytest.approx([0.3, 0.2])
    assert out["train_count"].tolist() == pytest.approx([math.sqrt(2), math.sqrt(5000)])


def test_group_quantiles_skip_groups_a_variant_lacks() -> None:
    quantiles = (("q10", -1), ("q50", 0), ("q90", 1), ("mean", 0.1))
    stats = stats_of(ce={f"logit_margin/{q}_few": (v, 0.0) for q, v in quantiles})
    assert per_class.group_quantiles(stats, "test/") == {"ce": {"few": {"q10": -1, "q50": 0, "q90": 1, "mean": 0.1}}}
