"""Every registered loss: registry contract, finiteness, bf16 autocast, and the module-level invariants."""

from __future__ import annotations

import inspect
import typing

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import elm.losses  # noqa: F401  (registers the losses)
from elm.losses import logit_adjusted_loss, supcon_margin_loss
from elm.losses.functional import embedding_margins
from elm.registry import LOSSES
from elm.types import ModelOutput

COUNTS = torch.tensor([60, 30, 12, 5, 2])


class TinyNet(nn.Module):
    """Linear features -> linear logits and a linear projection head."""

    def __init__(self, d_in: int = 8, d_emb: int = 6, d_proj: int = 4, num_classes: int = len(COUNTS)) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.body = nn.Linear(d_in, d_emb)
        self.head = nn.Linear(d_emb, num_classes)
        self.proj = nn.Linear(d_emb, d_proj)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))

    def forward(self, x: torch.Tensor) -> ModelOutput:
        h = self.body(x)
        return ModelOutput(self.head(h), h, self.proj(h))


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """10 examples: class 3 once, class 4 absent."""
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([0, 0, 0, 1, 1, 2, 2, 0, 1, 3])
    return torch.randn(len(y), 8, generator=g), y


def leaf_output(seed: int = 0, batch_size: int = 10) -> ModelOutput:
    g = torch.Generator().manual_seed(seed)
    return ModelOutput(
        torch.randn(batch_size, len(COUNTS), generator=g, requires_grad=True),
        torch.randn(batch_size, 6, generator=g, requires_grad=True),
        torch.randn(batch_size, 4, generator=g, requires_grad=True),
    )


def build(name: str, **kwargs: object) -> nn.Module:
    return LOSSES.build(name, kwargs, class_counts=COUNTS)


@pytest.mark.parametrize("name", [n for n in LOSSES.names() if LOSSES.preset(n) is None])
def test_registry_contract(name: str) -> None:
    factory = LOSSES.get(name)
    assert factory.__module__ == f"elm.losses.{name}"  # key == file name
    params = [p for n, p in inspect.signature(factory.__init__).parameters.items() if n != "self"]
    assert all(p.kind is p.KEYWORD_ONLY for p in params)
    assert isinstance(factory.uses_embeddings, bool)
    assert "uses_embeddings" in typing.get_type_hints(factory)  # declared as ClassVar[bool]
    LOSSES.check(name, {}, supplied=("class_counts",))


@pytest.mark.parametrize(
    "name, base, key, value",
    [("embedding_margin", "elm", "tau", 0.0), ("balanced_softmax", "logit_adjusted", "tau", 1.0)],
)
def test_alias_is_its_base_with_one_key_fixed(name: str, base: str, key: str, value: float) -> None:
    preset = LOSSES.preset(name)
    assert preset is not None and preset.base == base and dict(preset.fixed) == {key: value}
    base_params = set(inspect.signature(LOSSES.get(base).__init__).parameters) - {"self"}
    assert set(inspect.signature(LOSSES.get(name)).parameters) == base_params - {key}
    with pytest.raises(ValueError, match=f"loss.{key} is fixed to {value!r} by '{name}'"):
        LOSSES.check(name, {key: 0.5}, supplied=("class_counts",))
    torch.manual_seed(0)
    out, y = leaf_output(), torch.tensor([0, 1, 2, 3, 4, 0, 1, 2, 0, 1])
    assert torch.equal(build(name)(out, y), build(base, **{key: value})(out, y))
    assert type(build(name)) is LOSSES.get(base)


@pytest.mark.parametrize("name", LOSSES.names())
def test_loss_is_finite_and_differentiable(name: str, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    out = leaf_output()
    loss = build(name)(out, batch[1])
    assert loss.ndim == 0 and loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert out.logits.grad is not None and torch.isfinite(out.logits.grad).all()
    assert out.logits.grad.abs().sum() > 0
    for t in (out.embeddings, out.projections):
        assert t.grad is None or torch.isfinite(t.grad).all()
    reads_features = out.embeddings.grad is not None or out.projections.grad is not None
    assert reads_features == build(name).uses_embeddings


@pytest.mark.parametrize("name", LOSSES.names())
def test_loss_under_bf16_autocast(name: str, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = batch
    net, loss_fn = TinyNet(), build(name)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x)
        assert out.logits.dtype == torch.bfloat16
        loss = loss_fn(out, y)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
    upcast = ModelOutput(*(t.detach().float() for t in out))  # same values, no autocast
    torch.testing.assert_close(loss.detach(), loss_fn(upcast, y), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", [n for n in LOSSES.names() if n != "cross_entropy"])
def test_priors_are_buffers_that_follow_the_module(name: str, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    loss = build(name)
    expected = loss(leaf_output(), batch[1])
    buffers = dict(loss.named_buffers())
    assert buffers and set(buffers) <= set(loss.state_dict())
    loss.to(torch.float64)
    assert all(b.dtype == torch.float64 for b in loss.buffers())
    torch.testing.assert_close(loss(leaf_output(), batch[1]), expected)  # still computed in float32


def test_config_is_validated_before_building() -> None:
    with pytest.raises(ValueError, match="loss.temperature"):
        LOSSES.check("elm", {"temperature": 0.0})
    with pytest.raises(ValueError, match="loss.margin_schedule"):
        LOSSES.check("elm", {"margin_schedule": "sqrt"})
    with pytest.raises(ValueError, match="loss.tau"):
        LOSSES.check("embedding_margin", {"tau": 1.0})
    with pytest.raises(ValueError, match="loss.class_counts"):
        LOSSES.build("logit_adjusted", {"class_counts": [1, 2]}, class_counts=COUNTS)


def test_cross_entropy_with_label_smoothing(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    out, y = leaf_output(), batch[1]
    expected = F.cross_entropy(out.logits, y, label_smoothing=0.1)
    torch.testing.assert_close(build("cross_entropy", label_smoothing=0.1)(out, y), expected)


def test_logit_adjusted_module_matches_functional(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    out, y = leaf_output(), batch[1]
    assert torch.equal(build("logit_adjusted", tau=0.0)(out, y), F.cross_entropy(out.logits, y))
    expected = logit_adjusted_loss(out.logits, y, COUNTS, 0.6)
    torch.testing.assert_close(build("logit_adjusted", tau=0.6)(out, y), expected)


def test_balanced_softmax_is_logit_adjusted_with_unit_tau(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    out, y = leaf_output(), batch[1]
    assert torch.equal(build("balanced_softmax")(out, y), build("logit_adjusted", tau=1.0)(out, y))
    log_pi = (COUNTS / COUNTS.sum()).log()
    torch.testing.assert_close(build("balanced_softmax")(out, y), F.cross_entropy(out.logits + log_pi, y))


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 1.5])
def test_pairwise_margin_with_zero_power_is_logit_adjusted(
    batch: tuple[torch.Tensor, torch.Tensor], tau: float
) -> None:
    out, y = leaf_output(), batch[1]
    got = build("pairwise_margin", alpha_power=0.0, tau=tau)(out, y)
    torch.testing.assert_close(got, build("logit_adjusted", tau=tau)(out, y))


@pytest.mark.parametrize("tau", [0.0, 0.5, 2.0])
def test_weighted_logit_adjusted_reference(batch: tuple[torch.Tensor, torch.Tensor], tau: float) -> None:
    out, y = leaf_output(), batch[1]
    got = build("weighted_logit_adjusted", tau=tau)(out, y)
    torch.testing.assert_close(got, build("pairwise_margin", alpha_power=tau - 1.0, tau=tau)(out, y))
    pi = COUNTS.double() / COUNTS.sum()
    alpha = pi ** (tau - 1.0) / (pi**tau).sum()  # normalised: sum_y pi_y alpha_y = 1
    per_example = [
        alpha[t] * F.cross_entropy(out.logits[i : i + 1].double() + tau * pi.log(), y[i : i + 1])
        for i, t in enumerate(y.tolist())
    ]
    torch.testing.assert_close(got.double(), torch.stack(per_example).mean(), rtol=1e-5, atol=1e-6)


def test_ldam_subtracts_margin_from_target_logit_then_scales(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    out, y = leaf_output(), batch[1]
    n = COUNTS.double()
    margins = 0.4 * n**-0.25 / (n**-0.25).max()
    shifted = out.logits.detach().double().clone()
    shifted[torch.arange(len(y)), y] -= margins[y]
    expected = F.cross_entropy(7.0 * shifted, y)
    got = build("ldam", max_margin=0.4, scale=7.0)(out, y)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-6)


def test_elm_with_zero_weight_is_logit_adjusted(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    out, y = leaf_output(), batch[1]
    assert torch.equal(build("elm", lam=0.0, tau=0.7)(out, y), build("logit_adjusted", tau=0.7)(out, y))


@pytest.mark.parametrize("denominator", ["negatives", "all"])
def test_elm_is_logit_term_plus_weighted_embedding_term(
    batch: tuple[torch.Tensor, torch.Tensor], denominator: str
) -> None:
    out, y = leaf_output(), batch[1]
    loss = build("elm", tau=0.8, lam=0.3, margin=0.2, temperature=0.5, denominator=denominator)
    parts = loss.terms(out, y)
    assert set(parts) == {"logit", "embedding"}
    margins = embedding_margins(COUNTS, "log_prior", 0.2)
    torch.testing.assert_close(parts["logit"], logit_adjusted_loss(out.logits, y, COUNTS, 0.8))
    torch.testing.assert_close(parts["embedding"], supcon_margin_loss(out.projections, y, margins, 0.5, denominator))
    torch.testing.assert_close(loss(out, y), parts["logit"] + 0.3 * parts["embedding"])


def test_elm_feature_choice_and_no_silent_fallback(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    out, y = leaf_output(), batch[1]
    margins = embedding_margins(COUNTS, "uniform", 0.1)
    on_emb = supcon_margin_loss(out.embeddings, y, margins, 0.1)
    on_proj = supcon_margin_loss(out.projections, y, margins, 0.1)
    assert not torch.equal(on_emb, on_proj)
    from_proj = build("elm", margin_schedule="uniform").terms(out, y)["embedding"]
    from_emb = build("elm", margin_schedule="uniform", embedding="embeddings").terms(out, y)["embedding"]
    assert torch.equal(from_proj, on_proj) and torch.equal(from_emb, on_emb)
    with pytest.raises(ValueError, match="no projection head"):  # never silently the backbone features
        build("elm", margin_schedule="uniform").terms(out._replace(projections=None), y)


def test_embedding_margin_is_cross_entropy_plus_embedding_term(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    out, y = leaf_output(), batch[1]
    margins = embedding_margins(COUNTS, "inv_quarter", 0.2)
    expected = F.cross_entropy(out.logits, y) + 0.5 * supcon_margin_loss(out.projections, y, margins, 0.1)
    got = build("embedding_margin", lam=0.5, margin=0.2, margin_schedule="inv_quarter")(out, y)
    torch.testing.assert_close(got, expected)
    assert torch.equal(got, build("elm", tau=0.0, lam=0.5, margin=0.2, margin_schedule="inv_quarter")(out, y))


def test_elm_without_positive_pairs_reduces_to_logit_term() -> None:
    out, y = leaf_output(batch_size=5), torch.arange(5)
    loss = build("elm", lam=1.0)
    total = loss(out, y)
    total.backward()
    assert torch.equal(total, loss.terms(out, y)["logit"])
    assert torch.count_nonzero(out.projections.grad) == 0
