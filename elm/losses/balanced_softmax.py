"""Balanced softmax (Ren et al. 2020, https://arxiv.org/abs/2007.10740): logit adjustment with tau = 1."""
from __future__ import annotations

from torch import Tensor

from elm.losses.logit_adjusted import LogitAdjustedLoss
from elm.registry import LOSSES


@LOSSES.register("balanced_softmax")
class BalancedSoftmaxLoss(LogitAdjustedLoss):
    """Mean CE(f(x) + log pi, y): ``logit_adjusted`` with tau fixed to 1 (Menon et al. 2021, eq. 10)."""

    def __init__(self, *, class_counts: Tensor) -> None:
        super().__init__(class_counts=class_counts, tau=1.0)
