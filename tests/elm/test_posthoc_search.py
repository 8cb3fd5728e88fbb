"""Post-hoc search on stored logits, checked against loops written here, and the stored-logits file."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from elm.metrics import calibration_by_group, correct_per_class, group_calibration_errors, reliability_bins
from elm.metrics.accuracy import GROUP_NAMES, group_of_classes
from elm.metrics.calibration import expected_calibration_error
from elm.metrics.posthoc_search import (
    adjusted_logits,
    choose,
    group_tau_grid,
    per_class_tau,
    prior_weighted_accuracy,
    shifted_prior,
    tau_curve,
)
from elm.metrics.stored_logits import load_stored_logits, save_stored_logits
from tests.logits import head_biased_logits

COUNTS = torch.tensor([500, 300, 150, 90, 60, 30, 15, 8])  # Many x3, Medium x3, Few x2
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small tensors: threads only add synchronisation


def _logits(n_per_class: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    return head_biased_logits(COUNTS, n_per_class, seed, prior_weight=0.8)


def _balanced_acc_loop(scores: torch.Tensor, y: torch.Tensor, weights: list[float] | None = None) -> float:
    """sum_y w_y * recall_y with a Python loop (uniform weights: balanced accuracy)."""
    pred = scores.argmax(dim=1).tolist()
    classes = sorted(set(y.tolist()))
    w = [1.0] * len(classes) if weights is None else [weights[c] for c in classes]
    total = 0.0
    for c, wc in zip(classes, w):
        idx = [i for i, t in enumerate(y.tolist()) if t == c]
        total += wc * sum(pred[i] == c for i in idx) / len(idx)
    return total / sum(w)


def test_correct_per_class_matches_a_loop_for_any_direction() -> None:
    f, y = _logits()
    direction = torch.randn(len(COUNTS), generator=torch.Generator().manual_seed(1)).double()
    taus = torch.tensor([-1.0, 0.0, 0.3, 1.0, 2.5])
    hits = correct_per_class(f, y, direction, taus)
    for t, tau in enumerate(taus.tolist()):
        pred = (f.double() - tau * direction).argmax(dim=1)
        for c in range(len(COUNTS)):
            assert hits[t, c] == int(((pred == c) & (y == c)).sum())


def test_group_tau_grid_matches_a_brute_force_loop() -> None:
    f, y = _logits()
    groups = group_of_classes(COUNTS)
    assert groups.tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    taus = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0])
    grid = group_tau_grid(f, y, COUNTS, groups, taus)
    assert grid.shape == (5, 5, 5)
    lp = (COUNTS.double() / COUNTS.sum()).log()
    best, best_taus = -1.0, None
    for tm, tmed, tf in itertools.product(taus.tolist(), repeat=3):
        tau_of_class = torch.tensor([tm] * 3 + [tmed] * 3 + [tf] * 2, dtype=torch.float64)
        acc = _balanced_acc_loop(f.double() - tau_of_class * lp, y)
        i, j, k = (taus.tolist().index(v) for v in (tm, tmed, tf))
        assert grid[i, j, k].item() == pytest.approx(acc, abs=1e-12)
        if acc > best:
            best, best_taus = acc, (i, j, k)
    chosen = choose(grid, grid)
    assert chosen.selected == pytest.approx(best)
    assert chosen.index == best_taus  # first maximum in row-major order, as the loop's strict '>' keeps


def test_group_tau_grid_with_all_taus_equal_is_the_global_tau_curve() -> None:
    f, y = _logits(seed=3)
    taus = torch.linspace(0, 2, 9)
    grid = group_tau_grid(f, y, COUNTS, group_of_classes(COUNTS), taus)
    diag = torch.stack([grid[i, i, i] for i in range(len(taus))])
    assert torch.allclose(diag, tau_curve(f, y, COUNTS, taus))


def test_per_class_tau_and_adjusted_logits() -> None:
    groups = group_of_classes(COUNTS)
    tau = per_class_tau(groups, [0.5, 1.0], present=[0, 2])
    assert tau.tolist() == [0.5] * 3 + [0.0] * 3 + [1.0] * 2
    f, _ = _logits()
    lp = (COUNTS.double() / COUNTS.sum()).log()
    assert torch.allclose(adjusted_logits(f, COUNTS, tau), f.double() - tau * lp)


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_shifted_prior_is_geometric_in_training_rank(direction: str) -> None:
    counts = torch.tensor([50, 500, 5, 200])  # ranks 2, 0, 3, 1
    p = shifted_prior(counts, 8.0, direction)  # type: ignore[arg-type]
    assert p.sum().item() == pytest.approx(1.0)
    ranks = [2, 0, 3, 1] if direction == "forward" else [1, 3, 0, 2]
    expected = torch.tensor([8.0 ** (-r / 3) for r in ranks], dtype=torch.float64)
    assert torch.allclose(p, expected / expected.sum())
    assert (p.max() / p.min()).item() == pytest.approx(8.0)
    uniform = shifted_prior(counts, 1.0, direction)  # type: ignore[arg-type]
    assert torch.allclose(uniform, torch.full((4,), 0.25, dtype=torch.float64))


def test_shifted_prior_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="k=0.5"):
        shifted_prior(COUNTS, 0.5, "forward")
    with pytest.raises(ValueError, match="direction"):
        shifted_prior(COUNTS, 2.0, "sideways")  # type: ignore[arg-type]


def test_target_prior_accuracy_is_the_reweighted_accuracy_of_a_loop() -> None:
    f, y = _logits(seed=5)
    prior = shifted_prior(COUNTS, 10.0, "backward")
    taus = torch.tensor([0.0, 1.0])
    got = tau_curve(f, y, COUNTS, taus, target_prior=prior)
    lp = (COUNTS.double() / COUNTS.sum()).log()
    for t, tau in enumerate(taus.tolist()):
        want = _balanced_acc_loop(f.double() - tau * lp + prior.log(), y, weights=prior.tolist())
        assert got[t].item() == pytest.approx(want, abs=1e-12)


def test_known_target_prior_helps_on_a_backward_shift() -> None:
    """With the tail as the test head, adding log pi_t beats balanced post-hoc adjustment (averaged over seeds)."""
    gains = []
    for seed in range(4):
        f, y = _logits(n_per_class=40, seed=seed)
        prior = shifted_prior(COUNTS, 50.0, "backward")
        taus = torch.tensor([1.0])
        with_prior = tau_curve(f, y, COUNTS, taus, target_prior=prior)
        hits = correct_per_class(f, y, (COUNTS.double() / COUNTS.sum()).log(), taus)
        without = prior_weighted_accuracy(hits, torch.bincount(y), prior)
        gains.append(float(with_prior - without))
    assert sum(gains) / len(gains) > 0


def test_choose_takes_the_first_maximum_and_reads_the_other_split_there() -> None:
    sel = torch.tensor([[0.1, 0.5], [0.5, 0.2]])
    rep = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    c = choose(sel, rep)
    assert (c.index, c.selected, c.reported) == ((0, 1), 0.5, 2.0)
    with pytest.raises(ValueError):
        choose(sel, rep[0])


def test_group_calibration_errors_are_ece_on_each_groups_examples() -> None:
    f, y = _logits()
    groups = group_of_classes(COUNTS)
    got = group_calibration_errors(f, y, groups, GROUP_NAMES)
    for g, name in enumerate(GROUP_NAMES):
        mask = groups[y] == g
        assert got[f"ece_{name}"] == pytest.approx(expected_calibration_error(f[mask], y[mask]))
    only_head = y < 3
    assert set(group_calibration_errors(f[only_head], y[only_head], groups, GROUP_NAMES)) == {"ece_many"}


def test_calibration_by_group_after_adjustment_uses_the_adjusted_softmax() -> None:
    f, y = _logits()
    out = calibration_by_group(f, y, COUNTS, [0.0, 1.0])
    assert out["posthoc_tau0/ece"] == pytest.approx(expected_calibration_error(f, y))
    assert out["posthoc_tau0/ece_few"] == pytest.approx(out["ece_few"])
    lp = (COUNTS.double() / COUNTS.sum()).log()
    assert out["posthoc_tau1/ece"] == pytest.approx(expected_calibration_error((f.double() - lp).float(), y))


def test_reliability_bins_agree_with_the_ece() -> None:
    f, y = _logits()
    conf, pred = f.softmax(dim=1).max(dim=1)
    mean_conf, acc, size = reliability_bins(conf, pred == y, 10)
    filled = size > 0
    ece = float((size[filled] * (acc[filled] - mean_conf[filled]).abs()).sum() / size.sum())
    assert ece == pytest.approx(expected_calibration_error(f, y, 10))
    assert math.isnan(float(acc[~filled][0])) if bool((~filled).any()) else True


def test_stored_logits_round_trip_in_float16(tmp_path: Path) -> None:
    f, y = _logits()
    path = save_stored_logits(tmp_path / "a" / "stored.npz", {"val": (f, y), "test": (f[:5], y[:5])}, COUNTS)
    back = load_stored_logits(path)
    assert back.class_counts.tolist() == COUNTS.tolist()
    assert set(back.splits) == {"val", "test"}
    logits, labels = back.splits["val"]
    assert logits.dtype == np.float32 and labels.tolist() == y.tolist()
    assert np.abs(logits - f.numpy()).max() < 1e-2  # float16: ~3 significant digits
    with np.load(path) as z:
        assert z["val_logits"].dtype == np.float16


def test_stored_logits_keep_float32_beyond_float16_range_and_check_shapes(tmp_path: Path) -> None:
    f, y = _logits()
    big = f * 1e5
    back = load_stored_logits(save_stored_logits(tmp_path / "s.npz", {"test": (big, y)}, COUNTS))
    assert np.isfinite(back.splits["test"][0]).all()
    with pytest.raises(ValueError, match="labels"):
        save_stored_logits(tmp_path / "t.npz", {"test": (f, y[:-1])}, COUNTS)
    with pytest.raises(ValueError, match="no split"):
        save_stored_logits(tmp_path / "t.npz", {}, COUNTS)
