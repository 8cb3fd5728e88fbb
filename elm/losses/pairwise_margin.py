"""The pairwise margin loss family of Menon et al. 2021 (eq. 11), https://arxiv.org/abs/2007.07314.

l(y, f) = alpha_y * log(1 + sum_{y' != y} exp(delta_{y y'}) * exp(f_y' - f_y)), here with
alpha_y proportional to pi_y^alpha_power and delta_{y y'} = tau * log(pi_y' / pi_y).

alpha is normalised so that sum_y pi_y alpha_y = 1: the expected weight of a training example is 1, so the
loss stays on the scale of cross-entropy (and the learning rate keeps its meaning) for every alpha_power.
A positive rescaling of alpha does not change the minimiser, so Fisher consistency is unaffected.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from torch import Tensor, nn

from elm.losses.functional import class_log_prior, pairwise_margin_loss, prior_power_weights, prior_ratio_margins
from elm.registry import LOSSES, Interval
from elm.types import ModelOutput


@LOSSES.register("pairwise_margin")
class PairwiseMarginLoss(nn.Module):
    """Plain batch mean of the eq. 11 loss; alpha_power = 0 is ``logit_adjusted`` with the same tau."""

    uses_embeddings: ClassVar[bool] = False
    alpha: Tensor  # (C,) buffer
    delta: Tensor  # (C, C) buffer

    def __init__(
        self,
        *,
        class_counts: Tensor,
        alpha_power: Annotated[float, Interval()] = 0.0,
        tau: Annotated[float, Interval(ge=0.0)] = 1.0,
    ) -> None:
        super().__init__()
        log_prior = class_log_prior(class_counts)
        self.register_buffer("alpha", prior_power_weights(log_prior, alpha_power))  # (C,)
        self.register_buffer("delta", prior_ratio_margins(log_prior, tau))  # (C, C)

    def forward(self, output: ModelOutput, targets: Tensor) -> Tensor:
        return pairwise_margin_loss(output.logits, targets, self.alpha, self.delta)
