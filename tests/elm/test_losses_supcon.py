"""The ELM embedding term (margin SupCon) and its margin schedules, against loops written out here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from elm.losses import embedding_margins, supcon_margin_loss

T = 0.2


def unit_rows(z: torch.Tensor) -> np.ndarray:
    z = z.double().numpy()
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def supcon_out_reference(z: torch.Tensor, y: torch.Tensor, temperature: float) -> float:
    """SupCon L_out (Khosla et al. 2020, eq. 2), one anchor and one positive at a time."""
    u, labels = unit_rows(z), y.tolist()
    anchor_losses = []
    for i in range(len(labels)):
        positives = [p for p in range(len(labels)) if p != i and labels[p] == labels[i]]
        if not positives:
            continue
        denom = sum(math.exp(u[i] @ u[a] / temperature) for a in range(len(labels)) if a != i)
        terms = [-math.log(math.exp(u[i] @ u[p] / temperature) / denom) for p in positives]
        anchor_losses.append(sum(terms) / len(terms))
    return sum(anchor_losses) / len(anchor_losses) if anchor_losses else 0.0


def margin_reference(z: torch.Tensor, y: torch.Tensor, margins: list[float], temperature: float, den: str) -> float:
    """The documented l_ip with margin on the positive, literally, for both denominators."""
    u, labels = unit_rows(z), y.tolist()
    anchor_losses = []
    for i in range(len(labels)):
        positives = [p for p in range(len(labels)) if p != i and labels[p] == labels[i]]
        if not positives:
            continue
        terms = []
        for p in positives:
            num = math.exp((u[i] @ u[p] - margins[labels[i]]) / temperature)
            if den == "negatives":
                others = [a for a in range(len(labels)) if labels[a] != labels[i]]
            else:
                others = [a for a in range(len(labels)) if a not in (i, p)]
            terms.append(-math.log(num / (num + sum(math.exp(u[i] @ u[a] / temperature) for a in others))))
        anchor_losses.append(sum(terms) / len(terms))
    return sum(anchor_losses) / len(anchor_losses) if anchor_losses else 0.0


@pytest.fixture
def emb() -> tuple[torch.Tensor, torch.Tensor]:
    """12 embeddings over 4 classes: class 3 has one sample, class 4 (of 5) is absent."""
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 0, 1, 3])
    return torch.randn(len(y), 6, generator=g), y


def test_zero_margin_all_denominator_is_supcon_out(emb: tuple[torch.Tensor, torch.Tensor]) -> None:
    z, y = emb
    got = supcon_margin_loss(z, y, torch.zeros(5), T, denominator="all")
    assert got.item() == pytest.approx(supcon_out_reference(z, y, T), rel=1e-5)


@pytest.mark.parametrize("den", ["negatives", "all"])
def test_margin_loss_matches_loop_reference(emb: tuple[torch.Tensor, torch.Tensor], den: str) -> None:
    z, y = emb
    margins = [0.0, 0.1, 0.3, 0.5, 0.7]
    got = supcon_margin_loss(z, y, torch.tensor(margins), T, denominator=den)
    assert got.item() == pytest.approx(margin_reference(z, y, margins, T, den), rel=1e-5)


@pytest.mark.parametrize("den", ["negatives", "all"])
def test_loss_grows_with_margin(emb: tuple[torch.Tensor, torch.Tensor], den: str) -> None:
    z, y = emb
    losses = [supcon_margin_loss(z, y, torch.full((5,), m), T, denominator=den).item() for m in (0.0, 0.1, 0.3)]
    assert losses[0] < losses[1] < losses[2]


def test_margin_of_a_class_moves_only_its_anchors(emb: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Class 3 (single sample: no positives) and class 4 (absent) margins change nothing."""
    z, y = emb
    base = supcon_margin_loss(z, y, torch.tensor([0.1, 0.1, 0.1, 0.0, 0.0]), T)
    moved = supcon_margin_loss(z, y, torch.tensor([0.1, 0.1, 0.1, 0.9, 0.9]), T)
    assert torch.equal(base, moved)
    assert supcon_margin_loss(z, y, torch.tensor([0.1, 0.1, 0.5, 0.0, 0.0]), T) > base


def test_embedding_scale_does_not_matter(emb: tuple[torch.Tensor, torch.Tensor]) -> None:
    z, y = emb
    margins = torch.full((5,), 0.2)
    torch.testing.assert_close(supcon_margin_loss(3.0 * z, y, margins, T), supcon_margin_loss(z, y, margins, T))


@pytest.mark.parametrize("den", ["negatives", "all"])
@pytest.mark.parametrize(
    "labels",
    [
        [0, 1, 2, 3, 4],  # all distinct: no positive pair at all
        [0, 0, 1, 2, 3],  # singletons next to one pair
        [2, 2, 2, 2, 2],  # one class: positives but no negatives
        [0, 0],  # two samples of one class: nothing else to contrast with
    ],
)
def test_gradients_are_finite_in_degenerate_batches(labels: list[int], den: str) -> None:
    g = torch.Generator().manual_seed(1)
    y = torch.tensor(labels)
    z = torch.randn(len(labels), 4, generator=g, requires_grad=True)
    loss = supcon_margin_loss(z, y, torch.full((5,), 0.5), T, denominator=den)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    assert loss.item() == pytest.approx(margin_reference(z.detach(), y, [0.5] * 5, T, den), abs=1e-6)
    if len(set(labels)) == len(labels):
        assert loss.item() == 0.0 and torch.count_nonzero(z.grad) == 0


def test_gradients_are_finite_for_low_temperature_and_large_margin() -> None:
    g = torch.Generator().manual_seed(2)
    y = torch.tensor([0, 0, 0, 1, 1, 2])
    z = torch.randn(6, 3, generator=g)
    z[1] = z[0] + 1e-4  # a near-duplicate positive dominates the denominator
    z.requires_grad_(True)
    loss = supcon_margin_loss(z, y, torch.full((3,), 2.0), 0.01, denominator="all")
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


@pytest.mark.parametrize("kwargs", [{"temperature": 0.0}, {"denominator": "positives"}])
def test_supcon_rejects_bad_arguments(emb: tuple[torch.Tensor, torch.Tensor], kwargs: dict[str, object]) -> None:
    z, y = emb
    args: dict[str, object] = {"temperature": T, "denominator": "all", **kwargs}
    with pytest.raises(ValueError, match=str(next(iter(kwargs)))):
        supcon_margin_loss(z, y, torch.zeros(5), **args)  # type: ignore[arg-type]


COUNTS = torch.tensor([400, 100, 25, 10, 2])


@pytest.mark.parametrize("schedule", ["log_prior", "inv_quarter", "uniform"])
def test_margins_never_shrink_for_rarer_classes(schedule: str) -> None:
    m = embedding_margins(COUNTS, schedule, 0.3).numpy()
    assert np.all(np.diff(m) >= 0)  # COUNTS is decreasing
    assert m.max() == pytest.approx(0.3)


def test_margin_schedules_match_formulas() -> None:
    n = COUNTS.double().numpy()
    lp = np.log(n / n.sum())
    log_prior = embedding_margins(COUNTS, "log_prior", 0.3).double().numpy()
    np.testing.assert_allclose(log_prior, 0.3 * (lp.max() - lp) / (lp.max() - lp.min()), rtol=1e-5, atol=1e-7)
    assert log_prior[0] == 0.0 and np.all(np.diff(log_prior) > 0)
    quarter = embedding_margins(COUNTS, "inv_quarter", 0.3).double().numpy()
    np.testing.assert_allclose(quarter, 0.3 * n**-0.25 / (n**-0.25).max(), rtol=1e-6)
    np.testing.assert_allclose(embedding_margins(COUNTS, "uniform", 0.3).numpy(), np.full(5, 0.3), rtol=1e-7)


@pytest.mark.parametrize("schedule", ["log_prior", "inv_quarter", "uniform", "none"])
def test_zero_scale_or_none_gives_zero_margins(schedule: str) -> None:
    assert torch.count_nonzero(embedding_margins(COUNTS, schedule, 0.0)) == 0
    assert torch.count_nonzero(embedding_margins(COUNTS, "none", 0.5)) == 0


def test_log_prior_margins_are_zero_for_balanced_counts() -> None:
    assert torch.count_nonzero(embedding_margins(torch.full((4,), 7), "log_prior", 0.5)) == 0


@pytest.mark.parametrize("schedule,scale,key", [("sqrt", 0.1, "margin_schedule"), ("uniform", -0.1, "margin")])
def test_embedding_margins_reject_bad_arguments(schedule: str, scale: float, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        embedding_margins(COUNTS, schedule, scale)
