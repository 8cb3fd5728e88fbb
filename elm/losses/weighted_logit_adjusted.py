"""Weighted logit-adjusted loss: the pairwise loss (Menon et al. 2021, eq. 11) with alpha_y = pi_y^(tau - 1).

Menon et al. show the eq. 11 family is consistent for the balanced error when alpha_y = d_y / pi_y and
delta_{y y'} = log(d_y' / d_y) for any positive d; d_y = pi_y^tau gives alpha_y = pi_y^(tau - 1) and
delta_{y y'} = tau * log(pi_y' / pi_y). https://arxiv.org/abs/2007.07314
"""

from __future__ import annotations

from typing import Annotated

from torch import Tensor

from elm.losses.pairwise_margin import PairwiseMarginLoss
from elm.registry import LOSSES, Interval


@LOSSES.register("weighted_logit_adjusted")
class WeightedLogitAdjustedLoss(PairwiseMarginLoss):
    """``pairwise_margin`` with alpha_power = tau - 1 (alpha normalised as there: sum_y pi_y alpha_y = 1)."""

    def __init__(self, *, class_counts: Tensor, tau: Annotated[float, Interval(ge=0.0)] = 1.0) -> None:
        super().__init__(class_counts=class_counts, alpha_power=tau - 1.0, tau=tau)
