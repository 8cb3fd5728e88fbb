"""Tests for elm.metrics: every number against an independent numpy / explicit-loop reference built here."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from elm.metrics import (
    balanced_accuracy,
    classification_metrics,
    embedding_geometry,
    expected_calibration_error,
    group_accuracies,
    group_of_classes,
    logit_margins,
    margin_statistics,
    per_class_accuracy,
    posthoc_sweep,
    top1_accuracy,
)

NAMES = ("many", "medium", "few")
# 6 classes: two many (>100), two medium (20..100), two few (<20); class 3 is absent from the eval set.
TRAIN_COUNTS = torch.tensor([150, 101, 100, 20, 19, 5])
EVAL_COUNTS = [7, 5, 6, 0, 4, 3]


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits (N, 6), embeddings (N, 4), targets (N,)): noisy but better than chance, N = 25."""
    g = torch.Generator().manual_seed(0)
    y = torch.repeat_interleave(torch.arange(6), torch.tensor(EVAL_COUNTS))
    logits = torch.randn(len(y), 6, generator=g)
    logits[torch.arange(len(y)), y] += 1.0
    centres = torch.randn(6, 4, generator=g)
    emb = centres[y] + 0.8 * torch.randn(len(y), 4, generator=g)
    return logits, emb, y


# ---------------------------------------------------------------- independent references


def ref_group(count: int) -> str:
    return "many" if count > 100 else ("few" if count < 20 else "medium")


def ref_per_class_acc(pred: np.ndarray, y: np.ndarray, c: int) -> np.ndarray:
    acc = np.full(c, np.nan)
    for k in range(c):
        idx = [i for i in range(len(y)) if y[i] == k]
        if idx:
            acc[k] = sum(pred[i] == k for i in idx) / len(idx)
    return acc


def ref_group_means(values: np.ndarray, counts: np.ndarray, prefix: str) -> dict[str, float]:
    out = {}
    for name in NAMES:
        vals = [values[k] for k in range(len(counts)) if ref_group(counts[k]) == name and not np.isnan(values[k])]
        if vals:
            out[prefix + name] = float(np.mean(vals))
    return out


def ref_ece(probs: np.ndarray, y: np.ndarray, n_bins: int) -> float:
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (conf > lo) & (conf <= hi)
        if lo == 0.0:
            in_bin |= conf == 0.0
        if in_bin.any():
            ece += in_bin.mean() * abs((pred[in_bin] == y[in_bin]).mean() - conf[in_bin].mean())
    return ece


def ref_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def ref_logit_margins(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.zeros(len(y))
    for i in range(len(y)):
        out[i] = logits[i, y[i]] - max(logits[i, c] for c in range(logits.shape[1]) if c != y[i])
    return out


def ref_geometry(emb: np.ndarray, y: np.ndarray, c: int) -> dict:
    z = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    present = [k for k in range(c) if (y == k).any()]
    mu = {}
    for k in present:
        m = z[y == k].mean(axis=0)
        mu[k] = m / np.linalg.norm(m)
    spread = np.full(c, np.nan)
    for k in present:
        spread[k] = np.mean([1.0 - z[i] @ mu[k] for i in range(len(y)) if y[i] == k])
    separation = np.full(c, np.nan)
    for k in present:
        separation[k] = min(1.0 - mu[k] @ mu[j] for j in present if j != k)
    pairs = [1.0 - mu[a] @ mu[b] for a in present for b in present if a < b]
    margins = np.array([z[i] @ mu[y[i]] - max(z[i] @ mu[k] for k in present if k != y[i]) for i in range(len(y))])
    return {"mu": mu, "spread": spread, "separation": separation, "pairs": pairs, "margins": margins}


def ref_summary(values: np.ndarray, prefix: str, suffix: str) -> dict[str, float]:
    if len(values) == 0:
        return {}
    return {
        f"{prefix}/mean{suffix}": float(np.mean(values)),
        f"{prefix}/std{suffix}": float(np.std(values)),
        f"{prefix}/q10{suffix}": float(np.quantile(values, 0.1)),
        f"{prefix}/q50{suffix}": float(np.quantile(values, 0.5)),
        f"{prefix}/q90{suffix}": float(np.quantile(values, 0.9)),
        f"{prefix}/frac_negative{suffix}": float(np.mean(values < 0)),
    }


def assert_dicts_close(got: dict[str, float], ref: dict[str, float], tol: float = 1e-5) -> None:
    assert sorted(got) == sorted(ref)
    for k in ref:
        assert got[k] == pytest.approx(ref[k], abs=tol), k


# ---------------------------------------------------------------- accuracy


def test_accuracies_match_loops(batch) -> None:
    logits, _, y = batch
    pred = logits.argmax(1).numpy()
    ref = ref_per_class_acc(pred, y.numpy(), 6)
    got = per_class_accuracy(logits, y, 6).numpy()
    np.testing.assert_allclose(got, ref, equal_nan=True)
    assert math.isnan(got[3])
    assert top1_accuracy(logits, y) == pytest.approx(np.mean(pred == y.numpy()))
    assert top1_accuracy(logits.argmax(1), y) == top1_accuracy(logits, y)
    assert balanced_accuracy(logits, y) == pytest.approx(np.nanmean(ref))


def test_group_of_classes_thresholds_follow_oltr() -> None:
    groups = group_of_classes(TRAIN_COUNTS)
    assert [NAMES[g] for g in groups.tolist()] == [ref_group(int(n)) for n in TRAIN_COUNTS]
    assert [NAMES[g] for g in groups.tolist()] == ["many", "many", "medium", "medium", "few", "few"]
    custom = group_of_classes(torch.tensor([10, 5, 4, 1]), many_threshold=5, few_threshold=4)
    assert custom.tolist() == [0, 1, 1, 2]
    with pytest.raises(ValueError, match="few_threshold"):
        group_of_classes(TRAIN_COUNTS, many_threshold=10, few_threshold=20)


def test_group_accuracies_average_classes_and_omit_empty_groups() -> None:
    acc = torch.tensor([0.5, 1.0, 0.25, math.nan, 0.0, 0.75], dtype=torch.float64)
    got = group_accuracies(acc, TRAIN_COUNTS)
    assert_dicts_close(got, ref_group_means(acc.numpy(), TRAIN_COUNTS.numpy(), "acc_"))
    assert got["acc_medium"] == pytest.approx(0.25)  # class 3 is absent, not zero
    no_few = group_accuracies(torch.tensor([0.5, 0.2]), torch.tensor([500, 50]))
    assert set(no_few) == {"acc_many", "acc_medium"}


# ---------------------------------------------------------------- calibration


@pytest.mark.parametrize("n_bins", [1, 10, 15])
def test_ece_matches_numpy_loop(n_bins: int) -> None:
    g = torch.Generator().manual_seed(1)
    logits = 3 * torch.randn(500, 7, generator=g, dtype=torch.float64)
    y = torch.randint(0, 7, (500,), generator=g)
    ref = ref_ece(ref_softmax(logits.numpy()), y.numpy(), n_bins)
    assert expected_calibration_error(logits, y, n_bins) == pytest.approx(ref, abs=1e-6)
    probs = logits.softmax(1)
    assert expected_calibration_error(probs, y, n_bins, inputs="probs") == pytest.approx(ref, abs=1e-6)


def test_ece_of_confident_correct_predictions_is_zero_and_bad_inputs_raise() -> None:
    probs = torch.eye(4)
    assert expected_calibration_error(probs, torch.arange(4), inputs="probs") == 0.0
    assert expected_calibration_error(probs, torch.tensor([1, 0, 3, 2]), inputs="probs") == 1.0
    with pytest.raises(ValueError, match="inputs"):
        expected_calibration_error(probs, torch.arange(4), inputs="odds")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error(probs, torch.arange(4), n_bins=0)


# ---------------------------------------------------------------- margins


def test_logit_margins_match_loop(batch) -> None:
    logits, _, y = batch
    ref = ref_logit_margins(logits.numpy(), y.numpy())
    np.testing.assert_allclose(logit_margins(logits, y).numpy(), ref, atol=1e-6)
    assert torch.equal(logit_margins(logits, y) > 0, logits.argmax(1) == y)


def test_embedding_geometry_matches_numpy(batch) -> None:
    _, emb, y = batch
    geo = embedding_geometry(emb, y, 6)
    ref = ref_geometry(emb.numpy().astype(np.float64), y.numpy(), 6)
    for k, mu in ref["mu"].items():
        np.testing.assert_allclose(geo.class_means[k].numpy(), mu, atol=1e-5)
    assert torch.isnan(geo.class_means[3]).all()
    np.testing.assert_allclose(geo.spread.numpy(), ref["spread"], atol=1e-5, equal_nan=True)
    np.testing.assert_allclose(geo.separation.numpy(), ref["separation"], atol=1e-5, equal_nan=True)
    assert geo.separation_min == pytest.approx(min(ref["pairs"]), abs=1e-5)
    assert geo.separation_mean == pytest.approx(np.mean(ref["pairs"]), abs=1e-5)
    np.testing.assert_allclose(geo.sample_margins.numpy(), ref["margins"], atol=1e-5)


def test_embedding_geometry_is_scale_invariant_and_tight_for_collapsed_classes() -> None:
    y = torch.tensor([0, 0, 1, 1])
    emb = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 0.5]])
    geo = embedding_geometry(emb, y, 2)
    torch.testing.assert_close(geo.spread, torch.zeros(2, dtype=torch.float64))
    assert geo.separation_min == pytest.approx(1.0)  # orthogonal means
    torch.testing.assert_close(geo.sample_margins, torch.ones(4))


def test_margin_statistics_scalars_match_numpy(batch) -> None:
    logits, emb, y = batch
    stats = margin_statistics(logits, emb, y, TRAIN_COUNTS)
    yn, counts = y.numpy(), TRAIN_COUNTS.numpy()
    lm = ref_logit_margins(logits.numpy().astype(np.float64), yn)
    geo = ref_geometry(emb.numpy().astype(np.float64), yn, 6)
    sample_group = np.array([ref_group(counts[k]) for k in yn])
    ref = ref_summary(lm, "logit_margin", "")
    ref.update(ref_summary(geo["margins"], "embedding_margin", ""))
    for name in NAMES:
        ref.update(ref_summary(lm[sample_group == name], "logit_margin", f"_{name}"))
        ref.update(ref_summary(geo["margins"][sample_group == name], "embedding_margin", f"_{name}"))
    class_means = [lm[yn == k].mean() for k in range(6) if (yn == k).any()]
    ref["logit_margin/class_mean_std"] = float(np.std(class_means))
    ref["embedding/spread_mean"] = float(np.nanmean(geo["spread"]))
    ref.update(ref_group_means(geo["spread"], counts, "embedding/spread_"))
    ref["embedding/separation_min"] = min(geo["pairs"])
    ref["embedding/separation_mean"] = float(np.mean(geo["pairs"]))
    ref.update(ref_group_means(geo["separation"], counts, "embedding/separation_"))
    assert_dicts_close(stats.scalars, ref)
    assert all(isinstance(v, float) and math.isfinite(v) for v in stats.scalars.values())


def test_margin_statistics_per_class_matches_numpy_and_is_json(batch) -> None:
    logits, emb, y = batch
    stats = margin_statistics(logits, emb, y, TRAIN_COUNTS)
    yn = y.numpy()
    lm = ref_logit_margins(logits.numpy().astype(np.float64), yn)
    geo = ref_geometry(emb.numpy().astype(np.float64), yn, 6)
    acc = ref_per_class_acc(logits.argmax(1).numpy(), yn, 6)
    assert [row["class"] for row in stats.per_class] == list(range(6))
    for k, row in enumerate(stats.per_class):
        assert row["train_count"] == int(TRAIN_COUNTS[k]) and row["group"] == ref_group(int(TRAIN_COUNTS[k]))
        assert row["n_eval"] == EVAL_COUNTS[k]
        if EVAL_COUNTS[k] == 0:
            assert all(row[key] is None for key in ("accuracy", "logit_margin_mean", "spread", "separation"))
            continue
        m = lm[yn == k]
        expected = {
            "accuracy": acc[k],
            "logit_margin_mean": m.mean(),
            "logit_margin_std": m.std(),
            "logit_margin_frac_negative": (m < 0).mean(),
            "spread": geo["spread"][k],
            "separation": geo["separation"][k],
            "embedding_margin_mean": geo["margins"][yn == k].mean(),
        }
        for key, value in expected.items():
            assert row[key] == pytest.approx(value, abs=1e-5), (k, key)
    json.dumps({"scalars": stats.scalars, "per_class": stats.per_class}, allow_nan=False)


def test_margin_statistics_without_embeddings_has_only_the_logit_keys(batch) -> None:
    logits, emb, y = batch
    full = margin_statistics(logits, emb, y, TRAIN_COUNTS)
    logit_only = margin_statistics(logits, None, y, TRAIN_COUNTS)
    assert logit_only.scalars == {k: v for k, v in full.scalars.items() if k.startswith("logit_margin/")}
    embedding_columns = {"spread", "separation", "embedding_margin_mean"}
    assert logit_only.per_class == [
        {k: v for k, v in row.items() if k not in embedding_columns} for row in full.per_class
    ]


def test_margin_statistics_omits_empty_groups_and_validates() -> None:
    g = torch.Generator().manual_seed(2)
    y = torch.tensor([0, 0, 1, 1, 1])
    logits, emb = torch.randn(5, 2, generator=g), torch.randn(5, 3, generator=g)
    stats = margin_statistics(logits, emb, y, torch.tensor([500, 300]))
    assert "logit_margin/mean_many" in stats.scalars and not any(k.endswith("_few") for k in stats.scalars)
    with pytest.raises(ValueError, match="class_counts"):
        margin_statistics(torch.randn(5, 2), torch.randn(5, 3), y, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="quantiles"):
        margin_statistics(torch.randn(5, 2), torch.randn(5, 3), y, torch.tensor([1, 2]), quantiles=(1.5,))


# ---------------------------------------------------------------- evaluate


def test_classification_metrics_match_numpy(batch) -> None:
    logits, _, y = batch
    got = classification_metrics(logits, y, TRAIN_COUNTS)
    pred, yn = logits.argmax(1).numpy(), y.numpy()
    acc = ref_per_class_acc(pred, yn, 6)
    ref = {"acc": float(np.mean(pred == yn)), "balanced_acc": float(np.nanmean(acc))}
    ref.update(ref_group_means(acc, TRAIN_COUNTS.numpy(), "acc_"))
    ref["ece"] = ref_ece(ref_softmax(logits.numpy().astype(np.float64)), yn, 15)
    assert_dicts_close(got, ref)


def brute_force_sweep(logits: np.ndarray, y: np.ndarray, counts: np.ndarray, taus: list[float]) -> dict:
    log_prior = np.log(counts / counts.sum())
    out = {}
    for tau in taus:
        pred = np.argmax(logits - tau * log_prior[None, :], axis=1)
        acc = ref_per_class_acc(pred, y, len(counts))
        row = {"acc": float(np.mean(pred == y)), "balanced_acc": float(np.nanmean(acc))}
        row.update(ref_group_means(acc, counts, "acc_"))
        out[tau] = row
    return out


def test_posthoc_sweep_matches_brute_force_argmax() -> None:
    g = torch.Generator().manual_seed(3)
    counts = torch.tensor([300, 150, 150, 60, 40, 20, 12, 5])  # ties in the prior on purpose
    y = torch.randint(0, 8, (400,), generator=g)
    logits = torch.randn(400, 8, generator=g) + 0.5 * torch.log(counts.double() / counts.sum()).float()
    taus = [-1.0, 0.0, 0.3, 0.5, 1.0, 1.7, 3.0]
    got = posthoc_sweep(logits, y, counts, taus)
    ref = brute_force_sweep(logits.numpy().astype(np.float64), y.numpy(), counts.numpy(), taus)
    assert list(got) == taus
    for tau in taus:
        assert_dicts_close(got[tau], ref[tau], tol=1e-12)
    untuned = classification_metrics(logits, y, counts)
    assert got[0.0]["balanced_acc"] == pytest.approx(untuned["balanced_acc"])


def test_posthoc_sweep_1000_taus_on_10000_by_100_matches_brute_force() -> None:
    g = torch.Generator().manual_seed(4)
    num_classes = 100
    counts = (500 * 0.01 ** (torch.arange(num_classes) / (num_classes - 1))).round().long()  # imbalance 100
    y = torch.randint(0, num_classes, (10_000,), generator=g)
    logits = torch.randn(10_000, num_classes, generator=g)
    taus = torch.linspace(0.0, 2.0, 1000).tolist()
    out = posthoc_sweep(logits, y, counts, taus)  # its speed is measured in benchmarks/, not here
    assert len(out) == 1000
    sample = brute_force_sweep(logits.numpy().astype(np.float64), y.numpy(), counts.numpy(), [taus[500]])
    assert_dicts_close(out[taus[500]], sample[taus[500]], tol=1e-12)


def test_posthoc_sweep_rejects_zero_counts() -> None:
    with pytest.raises(ValueError, match="class_counts"):
        posthoc_sweep(torch.randn(3, 2), torch.tensor([0, 1, 1]), torch.tensor([5, 0]), [1.0])
