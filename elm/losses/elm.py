"""ELM: embedding and logit margins for long-tail learning (Jitkrittum et al. 2022), https://arxiv.org/abs/2204.13208.

**This loss is the project's reconstruction from the paper's abstract**, the only part of the paper available
offline (it states: margins in logit space plus a regularised embedding distribution, connected to metric and
contrastive learning; tighter tail-class embeddings; better torso and tail accuracy than CE and logit
adjustment). No public code exists. The form implemented here is

    L = CE(f(x) + tau * log pi, y)  +  lam * L_emb(z, y; m),

- logit term: logit adjustment (Menon et al. 2021, eq. 10), which puts a margin tau * log(pi_y' / pi_y)
  between every pair of classes in logit space (``functional.adjusted_cross_entropy``), on the first augmented
  view of every image only, so that its data are exactly those of the LA loss alone;
- embedding term: ``functional.supcon_margin_loss``, a supervised contrastive loss on L2-normalised
  projection-head outputs whose positive-pair similarity must beat the negatives by a class-dependent margin m_y
  (``functional.embedding_margins``; by default m_y grows with -log pi_y, so tail classes, whose embeddings
  are otherwise the most diffuse, are pulled tightest). It reads every view (``train.views``, 2 by default for
  this loss): an image's other view is always a positive, so every anchor, tail classes' included, has one and
  feels its margin. Under DDP it sees the global batch (``elm.losses.distributed``).

Why this form: the logit term alone constrains only the classifier's output, not the geometry of the
features; ELM adds the same "rarer class, larger margin" principle in embedding space. The default
``denominator="negatives"`` makes each anchor-positive pair the embedding-space analogue of the eq. 11
pairwise margin loss (log(1 + sum_n exp((s_in - s_ip + m)/T))): the margin means "beat every negative by
m", the loss can reach zero, and positives of frequent classes (many per batch) do not compete with each
other. ``denominator="all"`` with zero margins recovers SupCon L_out (Khosla et al. 2020, eq. 2).

Which features: ``embedding="projections"`` (default) needs a projection head (``model.projection_dim``;
``elm.train.build_experiment`` refuses a model without one); ``"embeddings"`` uses the penultimate features. The
"logit term only" ablation is ``logit_adjusted``; the "embedding term only" one is ``embedding_margin``.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Mapping

import torch
from torch import Tensor, nn

from elm.losses.distributed import gather_rows, global_mean
from elm.losses.functional import (
    SUPCON_DENOMINATORS,
    adjusted_cross_entropy,
    class_log_prior,
    embedding_margins,
    supcon_margin_anchor_losses,
)
from elm.metrics.accuracy import GROUP_NAMES, group_of_classes
from elm.registry import LOSSES, Choice, Interval
from elm.types import ModelOutput

EMBEDDING_SOURCES = ("projections", "embeddings")


@LOSSES.register("elm")
class ElmLoss(nn.Module):
    """logit_adjusted CE on view 0 + lam * supcon_margin_loss(z, y, margins, temperature) on all views.

    ``terms(output, targets, views)`` returns both parts (unweighted) for logging; ``combine(terms)`` weights them,
    ``terms["logit"] + lam * terms["embedding"]``, and ``forward`` is ``combine(terms(...))``. A trainer that logs
    the terms must train on ``combine`` of them, never on their plain sum.
    """

    uses_embeddings: ClassVar[bool] = True
    log_prior: Tensor  # (C,) buffer
    margins: Tensor  # (C,) buffer

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
        # (C,) many=0, medium=1, few=2: for diagnostics only, so a plain tensor (not state), moved when used
        self.class_group = group_of_classes(class_counts)

    @property
    def uses_projections(self) -> bool:
        """True if the embedding term reads the projection head's output (the model must have one)."""
        return self.embedding == "projections"

    def features(self, output: ModelOutput) -> Tensor:
        """The (N, D) features the embedding term reads.

        Raises:
            ValueError: projections are asked for but the model has no projection head.
        """
        if self.embedding == "embeddings":
            return output.embeddings
        if output.projections is None:
            raise ValueError(
                "loss.embedding='projections' but the model has no projection head: set "
                "model.projection_dim (or loss.embedding: embeddings)"
            )
        return output.projections

    def terms(self, output: ModelOutput, targets: Tensor, views: int = 1) -> dict[str, Tensor]:
        """The unweighted scalar parts: ``{"logit": LA cross-entropy on view 0, "embedding": margin SupCon}``.

        Args:
            output: the model's output on all views, view-major: rows v*B .. (v+1)*B - 1 are view v.
            targets: (V*B,) labels, the batch's labels repeated per view.
            views: V.
        """
        first = len(targets) // views  # B
        z, mine = gather_rows(self.features(output), with_grad=True)  # global batch under DDP
        y, _ = gather_rows(targets, with_grad=False)
        anchor_loss, has_pos = supcon_margin_anchor_losses(
            z, y, self.margins, self.temperature, self.denominator, anchors=mine
        )
        return {
            "logit": adjusted_cross_entropy(output.logits[:first], targets[:first], self.log_prior, self.tau),
            "embedding": global_mean((anchor_loss * has_pos).sum(), has_pos.sum()),
        }

    def combine(self, parts: Mapping[str, Tensor]) -> Tensor:
        """The training loss from the parts of ``terms``: logit + lam * embedding."""
        return parts["logit"] + self.lam * parts["embedding"]

    def forward(self, output: ModelOutput, targets: Tensor, views: int = 1) -> Tensor:
        return self.combine(self.terms(output, targets, views))

    @torch.no_grad()
    def anchor_statistics(self, targets: Tensor) -> dict[str, Tensor]:
        """Counts for the per-epoch diagnostics of where the embedding term acts (sum them over steps).

        Args:
            targets: (V*B,) this rank's labels (all views); positives are looked for in the global batch.
        Returns:
            ``anchors_{g}`` (anchors of group g), ``with_positive_{g}`` (those with at least one positive) for
            g in many / medium / few, and ``margin_sum`` (sum of m_y over anchors with a positive): scalars.
        """
        y, mine = gather_rows(targets, with_grad=False)
        anchor_y = y[mine]
        same = anchor_y[:, None] == y[None, :]
        device = anchor_y.device
        own = torch.arange(len(anchor_y), device=device)
        same[own, torch.arange(mine.start, mine.stop, device=device)] = False  # an anchor is not its own positive
        has_pos = same.any(dim=1)
        group = self.class_group.to(anchor_y.device)[anchor_y]
        out = {"margin_sum": (self.margins[anchor_y] * has_pos).sum()}  # a product, not a mask: no host sync
        for g, name in enumerate(GROUP_NAMES):
            in_group = group == g
            out[f"anchors_{name}"] = in_group.sum()
            out[f"with_positive_{name}"] = (in_group & has_pos).sum()
        return out


def anchor_diagnostics(sums: Mapping[str, float]) -> dict[str, float]:
    """Epoch metrics from summed ``anchor_statistics``: ``emb_anchor_pos_frac_{g}`` (anchors of group g with a
    positive), ``emb_anchor_share_{g}`` (group g's share of the anchors that contribute) and
    ``emb_margin_applied_mean`` (mean margin over contributing anchors). Groups without anchors are omitted."""
    contributing = sum(sums.get(f"with_positive_{g}", 0.0) for g in GROUP_NAMES)
    out: dict[str, float] = {}
    for g in GROUP_NAMES:
        anchors, with_pos = sums.get(f"anchors_{g}", 0.0), sums.get(f"with_positive_{g}", 0.0)
        if anchors > 0:
            out[f"emb_anchor_pos_frac_{g}"] = with_pos / anchors
            out[f"emb_anchor_share_{g}"] = with_pos / contributing if contributing else 0.0
    if contributing:
        out["emb_margin_applied_mean"] = sums.get("margin_sum", 0.0) / contributing
    return out


# ELM's "embedding term only" ablation (Jitkrittum et al. 2022): plain CE on the logits + lam * the margin SupCon.
LOSSES.alias("embedding_margin", "elm", tau=0.0)
