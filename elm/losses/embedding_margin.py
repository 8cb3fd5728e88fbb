"""ELM's "embedding term only" ablation: CE + lam * margin SupCon (Jitkrittum et al. 2022), see ``elm.py``."""
from __future__ import annotations

from typing import Annotated

from torch import Tensor

from elm.losses.elm import ElmLoss
from elm.losses.functional import SUPCON_DENOMINATORS
from elm.registry import LOSSES, Choice, Interval


@LOSSES.register("embedding_margin")
class EmbeddingMarginLoss(ElmLoss):
    """``elm`` with tau fixed to 0: plain cross-entropy on the logits plus lam * supcon_margin_loss."""

    def __init__(
        self,
        *,
        class_counts: Tensor,
        lam: Annotated[float, Interval(ge=0.0)] = 0.1,
        margin: Annotated[float, Interval(ge=0.0)] = 0.1,
        margin_schedule: Annotated[str, Choice("log_prior", "inv_quarter", "uniform")] = "log_prior",
        temperature: Annotated[float, Interval(gt=0.0)] = 0.1,
        embedding: Annotated[str, Choice("projections", "embeddings")] = "projections",
        denominator: Annotated[str, Choice(*SUPCON_DENOMINATORS)] = "negatives",
    ) -> None:
        super().__init__(
            class_counts=class_counts,
            tau=0.0,
            lam=lam,
            margin=margin,
            margin_schedule=margin_schedule,
            temperature=temperature,
            embedding=embedding,
            denominator=denominator,
        )
