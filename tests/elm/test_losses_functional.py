"""Pure loss maths in elm.losses.functional against references written out here with numpy loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from elm.losses import (
    class_log_prior,
    ldam_loss,
    ldam_margins,
    logit_adjusted_loss,
    pairwise_margin_loss,
    posthoc_adjust,
    prior_power_weights,
    prior_ratio_margins,
)

COUNTS = torch.tensor([500, 120, 40, 9, 3])


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    logits = 3.0 * torch.randn(16, len(COUNTS), generator=g, dtype=torch.float64).float()
    targets = torch.randint(len(COUNTS), (16,), generator=g)
    return logits, targets


def np_log_softmax_ce(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean over rows of -log(exp(l_y) / sum_k exp(l_k)), one row at a time."""
    losses = []
    for row, y in zip(logits, targets):
        losses.append(-(row[y] - math.log(sum(math.exp(v) for v in row))))
    return float(np.mean(losses))


def test_class_log_prior_is_log_of_normalised_counts() -> None:
    expected = np.log(COUNTS.numpy() / COUNTS.numpy().sum())
    np.testing.assert_allclose(class_log_prior(COUNTS).numpy(), expected, rtol=1e-6)
    assert class_log_prior(COUNTS).dtype == torch.float32


@pytest.mark.parametrize("bad", [torch.tensor([3, 0, 2]), torch.tensor([[1, 2]]), torch.tensor([], dtype=torch.long)])
def test_class_log_prior_rejects_empty_classes_and_bad_shapes(bad: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="class_counts"):
        class_log_prior(bad)


def test_logit_adjusted_with_tau_zero_is_cross_entropy(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    logits, targets = batch
    assert torch.equal(logit_adjusted_loss(logits, targets, COUNTS, 0.0), F.cross_entropy(logits, targets))


@pytest.mark.parametrize("tau", [0.5, 1.0, 1.7])
def test_logit_adjusted_matches_loop_reference(batch: tuple[torch.Tensor, torch.Tensor], tau: float) -> None:
    logits, targets = batch
    pi = COUNTS.numpy() / COUNTS.numpy().sum()
    expected = np_log_softmax_ce(logits.double().numpy() + tau * np.log(pi), targets.numpy())
    assert logit_adjusted_loss(logits, targets, COUNTS, tau).item() == pytest.approx(expected, rel=1e-5)


def test_logit_adjusted_rejects_mismatched_class_count(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    logits, targets = batch
    with pytest.raises(ValueError, match="class_counts"):
        logit_adjusted_loss(logits, targets, COUNTS[:3], 1.0)


def test_posthoc_adjust_subtracts_scaled_log_prior(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    logits, _ = batch
    pi = COUNTS.numpy() / COUNTS.numpy().sum()
    expected = logits.double().numpy() - 0.8 * np.log(pi)[None, :]
    np.testing.assert_allclose(posthoc_adjust(logits, COUNTS, 0.8).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_posthoc_adjust_turns_bayes_posterior_into_balanced_bayes_rule() -> None:
    """Three 1-D unit-variance Gaussians at -2, 0, 2 with priors 0.8, 0.15, 0.05."""
    priors = np.array([0.8, 0.15, 0.05])
    means = np.array([-2.0, 0.0, 2.0])
    rng = np.random.default_rng(0)
    y = rng.choice(3, size=60_000, p=priors)
    x = rng.normal(means[y], 1.0)
    log_lik = -0.5 * (x[:, None] - means[None, :]) ** 2  # log p(x|y) up to a shared constant
    posterior_logits = torch.from_numpy(log_lik + np.log(priors)).float()
    counts = torch.tensor([800, 150, 50])  # proportional to the priors
    adjusted = posthoc_adjust(posterior_logits, counts, tau=1.0).argmax(1).numpy()
    np.testing.assert_array_equal(adjusted, log_lik.argmax(1))

    def balanced_error(pred: np.ndarray) -> float:
        return float(np.mean([np.mean(pred[y == k] != k) for k in range(3)]))

    unadjusted = posterior_logits.argmax(1).numpy()
    assert balanced_error(adjusted) < balanced_error(unadjusted) - 0.03
    # Balanced Bayes rule thresholds at -1 and 1: per-class errors 1-Phi(1), 2(1-Phi(1)), 1-Phi(1).
    tail = 0.5 * math.erfc(1.0 / math.sqrt(2.0))
    assert balanced_error(adjusted) == pytest.approx(4.0 * tail / 3.0, abs=0.01)


def np_pairwise(logits: np.ndarray, targets: np.ndarray, alpha: np.ndarray, delta: np.ndarray) -> float:
    """Menon et al. eq. 11 written literally, averaged over examples."""
    losses = []
    for f, y in zip(logits, targets):
        s = sum(math.exp(delta[y, k]) * math.exp(f[k] - f[y]) for k in range(len(f)) if k != y)
        losses.append(alpha[y] * math.log1p(s))
    return float(np.mean(losses))


def test_pairwise_margin_matches_eq11_loop(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    logits, targets = batch
    g = torch.Generator().manual_seed(1)
    alpha = torch.rand(len(COUNTS), generator=g) + 0.5
    delta = torch.randn(len(COUNTS), len(COUNTS), generator=g)
    expected = np_pairwise(logits.double().numpy(), targets.numpy(), alpha.double().numpy(), delta.double().numpy())
    assert pairwise_margin_loss(logits, targets, alpha, delta).item() == pytest.approx(expected, rel=1e-5)


def test_pairwise_margin_with_unit_alpha_and_zero_delta_is_cross_entropy(
    batch: tuple[torch.Tensor, torch.Tensor],
) -> None:
    logits, targets = batch
    c = len(COUNTS)
    got = pairwise_margin_loss(logits, targets, torch.ones(c), torch.zeros(c, c))
    torch.testing.assert_close(got, F.cross_entropy(logits, targets))


@pytest.mark.parametrize("tau", [0.0, 1.0, 2.0])
def test_pairwise_margin_with_prior_ratio_delta_is_logit_adjusted(
    batch: tuple[torch.Tensor, torch.Tensor], tau: float
) -> None:
    logits, targets = batch
    pi = COUNTS.double() / COUNTS.sum()
    delta = tau * (pi.log()[None, :] - pi.log()[:, None])  # delta[y, y'] = tau log(pi_y' / pi_y)
    got = pairwise_margin_loss(logits, targets, torch.ones(len(COUNTS)), delta.float())
    torch.testing.assert_close(got, logit_adjusted_loss(logits, targets, COUNTS, tau))


def test_pairwise_margin_is_stable_for_huge_logits() -> None:
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 3e3]], requires_grad=True)
    targets = torch.tensor([1, 0])
    loss = pairwise_margin_loss(logits, targets, torch.ones(3), torch.zeros(3, 3))
    loss.backward()
    assert loss.item() == pytest.approx(2e4, rel=1e-6)  # each example costs f_max - f_y = 2e4
    assert torch.isfinite(logits.grad).all()


def test_prior_helpers_match_their_formulas() -> None:
    log_prior = class_log_prior(COUNTS)
    pi = COUNTS.double().numpy() / COUNTS.sum().item()
    for power in (-1.0, -0.5, 0.0, 0.7):
        alpha = prior_power_weights(log_prior, power).double().numpy()
        np.testing.assert_allclose(alpha / alpha[0], (pi / pi[0]) ** power, rtol=1e-5)
        assert float((pi * alpha).sum()) == pytest.approx(1.0, rel=1e-6)
    delta = prior_ratio_margins(log_prior, 0.5).double().numpy()
    for y in range(len(pi)):
        for k in range(len(pi)):
            assert delta[y, k] == pytest.approx(0.5 * math.log(pi[k] / pi[y]), abs=1e-5)


def test_ldam_margins_follow_inverse_quarter_power() -> None:
    m = ldam_margins(COUNTS, 0.5).double().numpy()
    n = COUNTS.double().numpy()
    assert m.max() == pytest.approx(0.5)
    assert m[-1] == pytest.approx(0.5)  # the rarest class gets the largest margin
    np.testing.assert_allclose(m / m[0], (n / n[0]) ** -0.25, rtol=1e-6)
    assert np.all(np.diff(m) > 0)  # counts decrease along COUNTS


def test_ldam_loss_matches_loop_and_pairwise_form(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    logits, targets = batch
    margins, s = ldam_margins(COUNTS, 0.5), 30.0
    shifted = logits.double().numpy().copy()
    for i, y in enumerate(targets.tolist()):
        shifted[i, y] -= margins[y].item()
    expected = np_log_softmax_ce(s * shifted, targets.numpy())
    got = ldam_loss(logits, targets, margins, s)
    assert got.item() == pytest.approx(expected, rel=1e-4)
    c = len(COUNTS)
    delta = (s * margins)[:, None].expand(c, c)  # delta[y, y'] = s * Delta_y
    torch.testing.assert_close(got, pairwise_margin_loss(s * logits, targets, torch.ones(c), delta))
