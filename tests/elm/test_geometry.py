"""Tests for elm.metrics.geometry: every quantity against a plain-Python loop written here, plus known answers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from elm.metrics.geometry import average_ranks, class_geometry, embedding_statistics, spearman_correlation

NAMES = ("many", "medium", "few")
# class sizes in the eval set include 0, 1, 2 and 3; training counts cover all three groups
EVAL_SIZES = [5, 1, 2, 3, 0, 8, 2, 1, 4]
TRAIN_COUNTS = torch.tensor([500, 300, 150, 80, 60, 40, 19, 10, 5])


def make_data(sizes: list[int], dim: int, seed: int, noise: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    centres = torch.randn(len(sizes), dim, generator=g)
    scale = 0.5 + torch.rand(len(y), 1, generator=g)  # unequal norms, so normalize matters
    return (centres[y] + noise * torch.randn(len(y), dim, generator=g)) * scale, y


# ---------------------------------------------------------------- independent references


def dot(a: list[float], b: list[float]) -> float:
    return sum(p * q for p, q in zip(a, b))


def unit(a: list[float]) -> list[float]:
    norm = math.sqrt(dot(a, a))
    return [v / norm for v in a] if norm > 0 else [0.0] * len(a)


def cosine(a: list[float], b: list[float]) -> float:
    return dot(unit(a), unit(b))


def vsum(rows: list[list[float]], dim: int) -> list[float]:
    return [sum(r[d] for r in rows) for d in range(dim)]


def ref_geometry(features: torch.Tensor, targets: torch.Tensor, num_classes: int, normalize: bool) -> dict:
    """Every per-example and per-class quantity by explicit loops over examples, classes and pairs."""
    x = [unit(r) if normalize else r for r in features.double().tolist()]
    y = targets.tolist()
    n_all, dim = len(x), len(x[0])
    members = {c: [i for i in range(n_all) if y[i] == c] for c in range(num_classes)}
    present = [c for c in range(num_classes) if members[c]]
    full_mean = {c: unit(vsum([x[i] for i in members[c]], dim)) for c in present}
    own, margins = [math.nan] * n_all, [math.nan] * n_all
    for i in range(n_all):
        others = [j for j in members[y[i]] if j != i]
        if not others:
            continue
        own[i] = cosine(x[i], vsum([x[j] for j in others], dim))
        rivals = [cosine(x[i], full_mean[c]) for c in present if c != y[i]]
        if rivals:
            margins[i] = own[i] - max(rivals)
    grand = [sum(r[d] for r in x) / n_all for d in range(dim)]
    tr_total = sum(sum((r[d] - grand[d]) ** 2 for d in range(dim)) for r in x) / (n_all - 1)
    spread, pairwise, var_ratio, separation = ([math.nan] * num_classes for _ in range(4))
    for c in present:
        idx = members[c]
        separation[c] = min((1.0 - dot(full_mean[c], full_mean[k]) for k in present if k != c), default=math.nan)
        if len(idx) < 2:
            continue
        spread[c] = sum(1.0 - own[i] for i in idx) / len(idx)
        pairs = [(i, j) for i in idx for j in idx if i != j]
        a = sum(dot(unit(x[i]), x[j]) for i, j in pairs) / len(pairs)
        b = sum(dot(x[i], x[j]) for i, j in pairs) / len(pairs)
        pairwise[c] = 1.0 - min(max(a / math.sqrt(b), -1.0), 1.0) if b > 0 else 1.0
        centroid = [sum(x[i][d] for i in idx) / len(idx) for d in range(dim)]
        tr_c = sum(sum((x[i][d] - centroid[d]) ** 2 for d in range(dim)) for i in idx) / (len(idx) - 1)
        var_ratio[c] = tr_c / tr_total
    sep_pairs = [1.0 - dot(full_mean[a], full_mean[b]) for a in present for b in present if a < b]
    return {
        "own": own,
        "margins": margins,
        "spread": spread,
        "spread_pairwise": pairwise,
        "separation": separation,
        "pairs": sep_pairs,
        "var_ratio": var_ratio,
    }


def ref_ranks(values: list[float]) -> list[float]:
    """1 + number of smaller values + (number of equal others) / 2: the average rank of a block of ties."""
    return [1 + sum(w < v for w in values) + (sum(w == v for w in values) - 1) / 2 for v in values]


def ref_spearman(a: list[float], b: list[float]) -> float:
    ra, rb = ref_ranks(a), ref_ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((p - ma) * (q - mb) for p, q in zip(ra, rb))
    return cov / math.sqrt(sum((p - ma) ** 2 for p in ra) * sum((q - mb) ** 2 for q in rb))


def ref_group(count: int) -> str:
    return "many" if count > 100 else ("few" if count < 20 else "medium")


def ref_class_means(values: list[float], counts: list[int], prefix: str) -> dict[str, float]:
    out = {}
    defined = [v for v in values if not math.isnan(v)]
    if defined:
        out[f"{prefix}_mean"] = sum(defined) / len(defined)
    for name in NAMES:
        vals = [v for v, n in zip(values, counts) if ref_group(n) == name and not math.isnan(v)]
        if vals:
            out[f"{prefix}_{name}"] = sum(vals) / len(vals)
    return out


def ref_summary(values: list[float], suffix: str) -> dict[str, float]:
    v = np.array([m for m in values if not math.isnan(m)])
    if len(v) == 0:
        return {}
    out = {f"margin/mean{suffix}": float(v.mean()), f"margin/std{suffix}": float(v.std())}
    out.update({f"margin/q{q}{suffix}": float(np.quantile(v, q / 100)) for q in (10, 50, 90)})
    out[f"margin/frac_negative{suffix}"] = float(np.mean(v < 0))
    return out


def assert_close_nan(got: torch.Tensor, ref: list[float], tol: float = 1e-9) -> None:
    np.testing.assert_allclose(got.numpy(), np.array(ref), atol=tol, rtol=0, equal_nan=True)


# ---------------------------------------------------------------- class_geometry


@pytest.mark.parametrize("normalize", [True, False])
def test_class_geometry_matches_loop(normalize: bool) -> None:
    feats, y = make_data(EVAL_SIZES, dim=5, seed=0)
    geo = class_geometry(feats, y, len(EVAL_SIZES), normalize=normalize)
    ref = ref_geometry(feats, y, len(EVAL_SIZES), normalize)
    assert geo.n_eval.tolist() == EVAL_SIZES
    for field in ("own", "margins"):
        assert_close_nan(geo.own_cos if field == "own" else geo.sample_margins, ref[field])
    for field in ("spread", "spread_pairwise", "separation", "var_ratio"):
        assert_close_nan(getattr(geo, field), ref[field])
    np.testing.assert_allclose(geo.separation_pairs.numpy(), ref["pairs"], atol=1e-9)
    singles = [i for i, c in enumerate(y.tolist()) if EVAL_SIZES[c] == 1]
    assert geo.own_cos[singles].isnan().all() and geo.sample_margins[singles].isnan().all()
    assert geo.class_means[4].isnan().all() and math.isnan(geo.spread[4]) and math.isnan(geo.separation[4])


def test_on_the_sphere_pairwise_spread_is_a_function_of_the_unbiased_within_class_trace() -> None:
    feats, y = make_data(EVAL_SIZES, dim=6, seed=1)
    geo = class_geometry(feats, y, len(EVAL_SIZES))
    z = torch.nn.functional.normalize(feats.double(), dim=1)
    tr_total = float(z.var(dim=0, correction=1).sum())
    ok = ~geo.spread.isnan()
    expected = 1.0 - (1.0 - geo.var_ratio * tr_total).clamp_min(0.0).sqrt()
    torch.testing.assert_close(geo.spread_pairwise[ok], expected[ok])


def test_collapsed_orthogonal_classes_have_known_geometry() -> None:
    y = torch.tensor([0, 0, 1, 1, 1])
    feats = torch.tensor([[2.0, 0.0], [0.5, 0.0], [0.0, 1.0], [0.0, 3.0], [0.0, 0.1]])
    geo = class_geometry(feats, y, 2)
    torch.testing.assert_close(geo.spread, torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(geo.spread_pairwise, torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(geo.var_ratio, torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(geo.sample_margins, torch.ones(5, dtype=torch.float64))
    assert geo.separation.tolist() == pytest.approx([1.0, 1.0])


def test_leave_one_out_removes_the_self_inclusion_bias_of_the_issue() -> None:
    """Issue 11's case: at 3 examples per class the in-sample spread (each example in its own class mean) is far
    below the leave-one-out spread; with many examples per class the two agree. LOO over-estimates at n = 3 (its
    mean comes from 2 examples); the pairwise estimate stays near the large-sample value."""
    classes, dim = 60, 64
    g = torch.Generator().manual_seed(0)
    centres = torch.nn.functional.normalize(torch.randn(classes, dim, generator=g), dim=1)

    def sample(per_class: int) -> tuple[torch.Tensor, torch.Tensor, float]:
        y = torch.arange(classes).repeat_interleave(per_class)
        feats = centres[y] + 0.16 * torch.randn(len(y), dim, generator=g)
        z = torch.nn.functional.normalize(feats.double(), dim=1)
        sums = torch.zeros(classes, dim, dtype=torch.float64).index_add_(0, y, z)
        naive = float((1.0 - (z * torch.nn.functional.normalize(sums, dim=1)[y]).sum(1)).mean())
        return feats, y, naive

    small, y_small, naive_small = sample(3)
    geo_small = class_geometry(small, y_small, classes)
    loo_small = float(geo_small.spread.mean())
    ref = ref_geometry(small[:30], y_small[:30], 10, normalize=True)  # the loop on the first 10 classes
    assert_close_nan(geo_small.spread[:10], ref["spread"])
    large, y_large, naive_large = sample(200)
    geo_large = class_geometry(large, y_large, classes)
    loo_large, truth = float(geo_large.spread.mean()), float(geo_large.spread_pairwise.mean())

    assert loo_small > naive_small + 0.2  # ~0.55 vs ~0.24
    assert abs(loo_large - naive_large) < 0.01 and abs(loo_large - truth) < 0.01  # ~0.385
    assert loo_small > truth + 0.1  # LOO is pessimistic at n = 3 ...
    assert abs(float(geo_small.spread_pairwise.mean()) - truth) < 0.03  # ... the pairwise estimate is not
    assert abs(float(geo_small.var_ratio.mean()) - float(geo_large.var_ratio.mean())) < 0.03


# ---------------------------------------------------------------- Spearman


def test_spearman_with_ties_matches_a_hand_computed_value() -> None:
    x = torch.tensor([1.0, 2.0, 2.0, 3.0, 5.0])
    y = torch.tensor([2.0, 1.0, 4.0, 4.0, 6.0])
    # ranks x = [1, 2.5, 2.5, 4, 5], y = [2, 1, 3.5, 3.5, 5]; both have mean 3, so the deviations are
    # dx = [-2, -0.5, -0.5, 1, 2], dy = [-1, -2, 0.5, 0.5, 2]: sum dx dy = 2 + 1 - 0.25 + 0.5 + 4 = 7.25,
    # sum dx^2 = sum dy^2 = 9.5, rho = 7.25 / 9.5 = 29 / 38.
    assert average_ranks(x).tolist() == [1.0, 2.5, 2.5, 4.0, 5.0]
    assert average_ranks(y).tolist() == [2.0, 1.0, 3.5, 3.5, 5.0]
    assert spearman_correlation(x, y) == pytest.approx(29 / 38, abs=1e-12)
    assert spearman_correlation(x, y.log()) == pytest.approx(29 / 38, abs=1e-12)  # ranks ignore monotone maps
    assert spearman_correlation(x, -x) == pytest.approx(-1.0)
    assert math.isnan(spearman_correlation(x, torch.ones(5)))
    assert math.isnan(spearman_correlation(x[:1], y[:1]))
    g = torch.Generator().manual_seed(3)
    a, b = torch.randint(0, 4, (40,), generator=g).double(), torch.randint(0, 6, (40,), generator=g).double()
    assert average_ranks(a).tolist() == ref_ranks(a.tolist())
    assert spearman_correlation(a, b) == pytest.approx(ref_spearman(a.tolist(), b.tolist()), abs=1e-12)
    with pytest.raises(ValueError, match="nan"):
        average_ranks(torch.tensor([1.0, math.nan]))


# ---------------------------------------------------------------- embedding_statistics


def test_embedding_statistics_scalars_match_loop() -> None:
    feats, y = make_data(EVAL_SIZES, dim=5, seed=2)
    stats = embedding_statistics(feats, y, TRAIN_COUNTS)
    ref = ref_geometry(feats, y, len(EVAL_SIZES), normalize=True)
    counts = TRAIN_COUNTS.tolist()
    expected = {}
    for name in ("spread", "spread_pairwise", "var_ratio"):
        expected.update(ref_class_means(ref[name], counts, name))
    expected.update(ref_class_means(ref["separation"], counts, "separation"))  # separation_{g} ...
    expected["separation_min"] = min(ref["pairs"])
    expected["separation_mean"] = sum(ref["pairs"]) / len(ref["pairs"])  # ... but the mean is over pairs
    groups = [ref_group(counts[c]) for c in y.tolist()]
    expected.update(ref_summary(ref["margins"], ""))
    for name in NAMES:
        expected.update(ref_summary([m for m, g in zip(ref["margins"], groups) if g == name], f"_{name}"))
    for name in ("spread", "var_ratio"):
        ok = [c for c in range(len(counts)) if not math.isnan(ref[name][c])]
        expected[f"{name}_logsize_spearman"] = ref_spearman(
            [ref[name][c] for c in ok], [math.log(counts[c]) for c in ok]
        )
    assert sorted(stats.scalars) == sorted(expected)
    for key, value in expected.items():
        assert stats.scalars[key] == pytest.approx(value, abs=1e-9), key
    assert all(isinstance(v, float) and math.isfinite(v) for v in stats.scalars.values())


def test_embedding_statistics_per_class_rows_match_loop_and_are_json() -> None:
    feats, y = make_data(EVAL_SIZES, dim=5, seed=3)
    stats = embedding_statistics(feats, y, TRAIN_COUNTS)
    ref = ref_geometry(feats, y, len(EVAL_SIZES), normalize=True)
    assert [row["class"] for row in stats.per_class] == list(range(len(EVAL_SIZES)))
    for c, row in enumerate(stats.per_class):
        assert row["train_count"] == int(TRAIN_COUNTS[c]) and row["group"] == ref_group(int(TRAIN_COUNTS[c]))
        assert row["n_eval"] == EVAL_SIZES[c]
        margins = [m for m, k in zip(ref["margins"], y.tolist()) if k == c]
        expected = {
            "spread": ref["spread"][c],
            "spread_pairwise": ref["spread_pairwise"][c],
            "separation": ref["separation"][c],
            "var_ratio": ref["var_ratio"][c],
            "margin_mean": sum(margins) / len(margins) if margins else math.nan,
        }
        for key, value in expected.items():
            if math.isnan(value):
                assert row[key] is None, (c, key)
            else:
                assert row[key] == pytest.approx(value, abs=1e-9), (c, key)
    assert stats.per_class[1]["spread"] is None and stats.per_class[1]["separation"] is not None  # one example
    json.dumps({"scalars": stats.scalars, "per_class": stats.per_class}, allow_nan=False)


def test_variance_ratio_and_cosines_are_scale_free() -> None:
    feats, y = make_data(EVAL_SIZES, dim=4, seed=4)
    feats = feats.double()  # so that 7 * feats is exact up to float64 rounding
    for normalize in (False, True):
        base = embedding_statistics(feats, y, TRAIN_COUNTS, normalize=normalize)
        scaled = embedding_statistics(7.0 * feats, y, TRAIN_COUNTS, normalize=normalize)
        assert sorted(scaled.scalars) == sorted(base.scalars)
        for key, value in base.scalars.items():
            assert scaled.scalars[key] == pytest.approx(value, abs=1e-12), (normalize, key)
        assert [r["var_ratio"] for r in scaled.per_class] == pytest.approx([r["var_ratio"] for r in base.per_class])
    per_example = torch.rand(len(y), 1, generator=torch.Generator().manual_seed(5)) + 0.1
    raw = class_geometry(feats, y, len(EVAL_SIZES), normalize=False).var_ratio
    assert not torch.allclose(
        class_geometry(per_example * feats, y, len(EVAL_SIZES), normalize=False).var_ratio, raw, equal_nan=True
    )
    torch.testing.assert_close(
        class_geometry(per_example * feats, y, len(EVAL_SIZES)).var_ratio,
        class_geometry(feats, y, len(EVAL_SIZES)).var_ratio,
        equal_nan=True,
    )


def test_singleton_classes_and_missing_groups_are_omitted_not_nan() -> None:
    feats, y = make_data([1, 1, 1], dim=3, seed=6)
    stats = embedding_statistics(feats, y, torch.tensor([500, 300, 200]))
    assert set(stats.scalars) == {"separation_min", "separation_mean", "separation_many"}
    feats, y = make_data([3, 4], dim=3, seed=7)
    stats = embedding_statistics(feats, y, torch.tensor([500, 50]))
    assert "margin/mean_many" in stats.scalars and "spread_medium" in stats.scalars
    assert not any(k.endswith("_few") for k in stats.scalars)
    assert "spread_logsize_spearman" in stats.scalars  # two classes: rho is +-1
    one_class = embedding_statistics(feats[:3], y[:3], torch.tensor([500, 50]))
    assert not any(k.startswith(("margin/", "separation")) for k in one_class.scalars)
    assert "spread_logsize_spearman" not in one_class.scalars and "spread_mean" in one_class.scalars


def test_embedding_statistics_validates_inputs() -> None:
    feats, y = make_data([2, 3], dim=3, seed=8)
    counts = torch.tensor([10, 20])
    with pytest.raises(ValueError, match="num_classes"):
        embedding_statistics(feats, y, torch.tensor([10]))
    with pytest.raises(ValueError, match="quantiles"):
        embedding_statistics(feats, y, counts, quantiles=(1.5,))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        embedding_statistics(feats[:, 0], y, counts)
    with pytest.raises(ValueError, match="nan or inf"):
        embedding_statistics(feats.index_fill(0, torch.tensor([0]), math.inf), y, counts)
    with pytest.raises(ValueError, match="class_counts"):
        embedding_statistics(feats, y, counts[None])
