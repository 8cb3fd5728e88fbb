"""ELM: embedding and logit margins for long-tail learning (Jitkrittum et al. 2022), https://arxiv.org/abs/2204.13208.

No public code exists, so this is the form this project implements:

    L = CE(f(x) + tau * log pi, y)  +  lam * L_emb(z, y; m),

- logit term: logit adjustment (Menon et al. 2021, eq. 10), which puts a margin tau * log(pi_y' / pi_y)
  between every pair of classes in logit space (``functional.logit_adjusted_loss``);
- embedding term: ``functional.supcon_margin_loss``, a supervised contrastive loss on L2-normalised
  embeddings whose positive-pair similarity must beat the negatives by a class-dependent margin m_y
  (``functional.embedding_margins``; by default m_y grows with -log pi_y, so tail classes, whose embeddings
  are otherwise the most diffuse, are pulled tightest).

Why this form: the logit term alone constrains only the classifier's output, not the geometry of the
features; ELM adds the same "rarer class, larger margin" principle in embedding space. The default
``denominator="negatives"`` makes each anchor-positive pair the embedding-space analogue of the eq. 11
pairwise margin loss (log(1 + sum_n exp((s_in - s_ip + m)/T))): the margin means "beat every negative by
m", the loss can reach zero, and positives of frequent classes (many per batch) do not compete with each
other. ``denominator="all"`` with zero margins recovers SupCon L_out (Khosla et al. 2020, eq. 2).

Which features: ``embedding="projections"`` uses ``output.projections`` when the model has a projection
head and falls back to ``output.embeddings`` when it is None; ``"embeddings"`` always uses the penultimate
features. The "logit term only" ablation is ``logit_adjusted``; the "embedding term only" one is
``embedding_margin``.
"""
from __future__ import annotations

from typing import Annotated, ClassVar

from torch import Tensor, nn

from elm.losses.functional import (
    SUPCON_DENOMINATORS,
    adjusted_cross_entropy,
    class_log_prior,
    embedding_margins,
    supcon_margin_loss,
)
from elm.registry import LOSSES, Choice, Interval
from elm.types import ModelOutput

EMBEDDING_SOURCES = ("projections", "embeddings")


@LOSSES.register("elm")
class ElmLoss(nn.Module):
    """logit_adjusted_loss(f, y, counts, tau) + lam * supcon_margin_loss(z, y, margins, temperature).

    ``terms(output, targets)`` returns both parts (unweighted) for logging; ``combine(terms)`` weights them,
    ``terms["logit"] + lam * terms["embedding"]``, and ``forward`` is ``combine(terms(...))``. A trainer that logs
    the terms must train on ``combine`` of them, never on their plain sum.
    """

    uses_embeddings: ClassVar[bool] = True

    def __init__(
        self,
        *,
        class_counts: Tensor,
        tau: Annotated[float, Interval(ge=0.0)] = 1.0,
        lam: Annotated[float, Interval(ge=0.0)] = 0.1,
        margin: Annotated[float, Interval(ge=0.0)] = 0.1,
        margin_schedule: Annotated[str, Choice("log_prior", "inv_quarter", "uniform")] = "log_prior",
        temperature: Annotated[float, Interval(gt=0.0)] = 0.1,
        embedding: Annotated[str, Choice(*EMBEDDING_SOURCES)] = "projections",
        denominator: Annotated[str, Choice(*SUPCON_DENOMINATORS)] = "negatives",
    ) -> None:
        super().__init__()
        if embedding not in EMBEDDING_SOURCES:
            raise ValueError(f"embedding={embedding!r} is not allowed; choose one of {list(EMBEDDING_SOURCES)}")
        if denominator not in SUPCON_DENOMINATORS:
            raise ValueError(f"denominator={denominator!r} is not allowed; choose one of {list(SUPCON_DENOMINATORS)}")
        if temperature <= 0:
            raise ValueError(f"temperature={temperature!r} must be > 0")
        self.tau = tau
        self.lam = lam
        self.temperature = temperature
        self.embedding = embedding
        self.denominator = denominator
        self.register_buffer("log_prior", class_log_prior(class_counts))  # (C,)
        self.register_buffer("margins", embedding_margins(class_counts, margin_schedule, margin))  # (C,)

    def features(self, output: ModelOutput) -> Tensor:
        """The (B, D) features the embedding term reads: projections if requested and present, else embeddings."""
        if self.embedding == "projections" and output.projections is not None:
            return output.projections
        return output.embeddings

    def terms(self, output: ModelOutput, targets: Tensor) -> dict[str, Tensor]:
        """The unweighted scalar parts: ``{"logit": LA cross-entropy, "embedding": margin SupCon}``."""
        return {
            "logit": adjusted_cross_entropy(output.logits, targets, self.log_prior, self.tau),
            "embedding": supcon_margin_loss(
                self.features(output), targets, self.margins, self.temperature, self.denominator
            ),
        }

    def combine(self, parts: dict[str, Tensor]) -> Tensor:
        """The training loss from the parts of ``terms``: logit + lam * embedding."""
        return parts["logit"] + self.lam * parts["embedding"]

    def forward(self, output: ModelOutput, targets: Tensor) -> Tensor:
        return self.combine(self.terms(output, targets))
