"""LDAM: label-distribution-aware margin loss (Cao et al. 2019), https://arxiv.org/abs/1906.07413.

Cao et al. pair it with a cosine classifier (normalised features and weights) and ``scale`` s = 30; with an
ordinary linear head s multiplies unnormalised logits, so lower it (or use a cosine head). Deferred
re-weighting (DRW) is a training schedule, not part of this loss.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from torch import Tensor, nn

from elm.losses.functional import ldam_loss, ldam_margins
from elm.registry import LOSSES, Interval
from elm.types import ModelOutput


@LOSSES.register("ldam")
class LdamLoss(nn.Module):
    """Mean CE(s * (f(x) - Delta_y e_y), y) with Delta_y = max_margin * n_y^(-1/4) / max_y' n_y'^(-1/4)."""

    uses_embeddings: ClassVar[bool] = False
    margins: Tensor  # (C,) buffer

    def __init__(
        self,
        *,
        class_counts: Tensor,
        max_margin: Annotated[float, Interval(ge=0.0)] = 0.5,
        scale: Annotated[float, Interval(gt=0.0)] = 30.0,
    ) -> None:
        super().__init__()
        self.scale = scale
        self.register_buffer("margins", ldam_margins(class_counts, max_margin))  # (C,)

    def forward(self, output: ModelOutput, targets: Tensor) -> Tensor:
        return ldam_loss(output.logits, targets, self.margins, self.scale)
