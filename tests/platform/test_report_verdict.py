"""platform.report.verdict: each claim's comparison, difference and seed noise, against hand-computed values."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from platform.report import tables as rt
from platform.report import verdict as rv
from tests.platform.report_fixtures import ROLES, stats_of


def test_verdict_states_each_comparison_with_difference_and_noise() -> None:
    stats = stats_of(
        ce={"balanced_acc": (0.38, 0.005), "posthoc_tau1/balanced_acc": (0.42, 0.004)},
        logit_only={
            "balanced_acc": (0.43, 0.02),
            "embedding/spread_few": (0.30, 0.01),
            "logit_margin/class_mean_std_ratio": (1.0, 0.1),
        },
        elm={
            "balanced_acc": (0.425, 0.01),
            "embedding/spread_few": (0.20, 0.01),
            "logit_margin/class_mean_std_ratio": (0.95, 0.1),
        },
    )
    c = rv.verdict(stats, ROLES, "test/")
    assert [x.holds for x in c] == [True, True, False, True, True]
    assert [x.beyond_noise for x in c] == [True, False, False, True, False]
    assert [x.source for x in c] == [rv.LA_PAPER, rv.LA_PAPER, rv.ELM_PAPER, rv.ELM_PAPER, rv.HYPOTHESIS]
    assert c[0].difference == pytest.approx(0.04) and c[0].noise == pytest.approx(0.005)
    assert c[1].difference == pytest.approx(0.01) and c[1].noise == pytest.approx(0.02)
    assert c[2].difference == pytest.approx(-0.005)
    assert c[3].difference == pytest.approx(0.10)  # LA - ELM spread: positive means ELM is tighter
    assert "does NOT hold, within seed noise" in c[2].sentence()
    assert "-0.50 pts" in c[2].sentence() and "larger seed std 2.00 pts" in c[2].sentence()
    assert c[0].sentence().startswith("CE < post-hoc (tau=1 on CE): holds, beyond seed noise")


def test_verdict_uses_the_medium_group_when_the_data_has_no_few_class() -> None:
    stats = stats_of(
        logit_only={"embedding/spread_medium": (0.30, 0.01)}, elm={"embedding/spread_medium": (0.25, 0.01)}
    )
    spread = rv.verdict(stats, ROLES, "test/")[3]
    assert spread.claim == "ELM has lower Medium-group embedding spread than LA (embeddings)"
    assert spread.holds is True and spread.difference == pytest.approx(0.05)


def test_verdict_without_a_variant_or_with_one_seed_says_so() -> None:
    stats = {
        "ce": {
            "test/balanced_acc": rt.Stat(0.3, math.nan, 1),
            "test/posthoc_tau1/balanced_acc": rt.Stat(0.35, math.nan, 1),
        }
    }
    c = rv.verdict(stats, {"ce": "ce"}, "test/")
    assert c[0].holds is True and c[0].beyond_noise is None
    assert "seed noise unknown" in c[0].sentence()
    assert all(x.holds is None for x in c[1:])
    assert "not available" in c[2].sentence()


def test_compare_equal_means_satisfy_non_strict_only() -> None:
    a, b = ("a", rt.Stat(0.5, 0.1, 2)), ("b", rt.Stat(0.5, 0.1, 2))
    assert rv.compare("a <= b", a, b, strict=False).holds is True
    assert rv.compare("a < b", a, b, strict=True).holds is False


def test_geometry_is_read_from_the_projection_space_when_runs_report_it() -> None:
    """Runs since elm.metrics.geometry report {split}/emb_proj/... (pairwise spread); older ones embedding/..."""
    stats = stats_of(
        logit_only={"emb_proj/spread_pairwise_medium": (0.30, 0.01), "embedding/spread_medium": (0.1, 0.0)},
        elm={"emb_proj/spread_pairwise_medium": (0.25, 0.01), "embedding/spread_medium": (0.2, 0.0)},
    )
    spread = rv.verdict(stats, ROLES, "test/")[3]
    assert spread.claim == "ELM has lower Medium-group embedding spread than LA (projections)"
    assert spread.holds is True and spread.difference == pytest.approx(0.05)  # the projections, not embedding/
    cols = rt.geometry_columns(["test/emb_backbone/spread_pairwise_few", "test/acc"], "test/")
    assert [c.key for c in cols] == [
        "emb_backbone/spread_pairwise_many",
        "emb_backbone/spread_pairwise_medium",
        "emb_backbone/spread_pairwise_few",
        "emb_backbone/separation_min",
    ]
    assert all(c.label.endswith("(1 - cos)") for c in cols)
    assert rt.geometry_columns(["test/acc"], "test/")[0].key == "embedding/spread_many"


def test_verdict_separates_paper_claims_from_hypotheses_and_compares_tail_accuracy_and_backbone_geometry() -> None:
    stats = stats_of(
        logit_only={
            "balanced_acc": (0.43, 0.01),
            "acc_medium": (0.50, 0.01),
            "acc_few": (0.20, 0.02),
            "emb_backbone/spread_pairwise_few": (0.40, 0.01),
            "emb_proj/spread_pairwise_few": (0.9, 0.01),
        },
        elm={
            "balanced_acc": (0.44, 0.01),
            "acc_medium": (0.52, 0.01),
            "acc_few": (0.19, 0.02),
            "emb_backbone/spread_pairwise_few": (0.35, 0.01),
            "emb_proj/spread_pairwise_few": (0.2, 0.01),
        },
    )
    c = {x.claim: x for x in rv.verdict(stats, ROLES, "test/")}
    assert (
        c["LA loss < ELM on Medium classes"].holds is True
        and c["LA loss < ELM on Medium classes"].source == rv.ELM_PAPER
    )
    assert c["LA loss < ELM on Few classes"].holds is False
    spread = c["ELM has lower Few-group embedding spread than LA (backbone)"]  # never the untrained LA head
    assert spread.difference == pytest.approx(0.05)


def test_class_mean_std_ratio_is_scale_free() -> None:
    trials = pd.DataFrame({"test/logit_margin/class_mean_std": [2.0, 20.0], "test/logit_margin/std": [4.0, 40.0]})
    assert rv.with_derived(trials, "test/")["test/logit_margin/class_mean_std_ratio"].tolist() == [0.5, 0.5]
