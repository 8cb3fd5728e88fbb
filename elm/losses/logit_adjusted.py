"""Logit-adjusted cross-entropy (Menon et al. 2021, eq. 10), https://arxiv.org/abs/2007.07314."""

from __future__ import annotations

from typing import Annotated, ClassVar

from torch import Tensor, nn

from elm.losses.functional import adjusted_cross_entropy, class_log_prior
from elm.registry import LOSSES, Interval
from elm.types import ModelOutput


@LOSSES.register("logit_adjusted")
class LogitAdjustedLoss(nn.Module):
    """Mean CE(f(x) + tau * log pi, y); tau = 0 is plain cross-entropy, tau = 1 is balanced softmax.

    The log prior is a buffer, so it follows ``.to(device)`` and is computed (and validated) once.
    """

    uses_embeddings: ClassVar[bool] = False
    log_prior: Tensor  # (C,) buffer

    def __init__(self, *, class_counts: Tensor, tau: Annotated[float, Interval(ge=0.0)] = 1.0) -> None:
        super().__init__()
        self.tau = tau
        self.register_buffer("log_prior", class_log_prior(class_counts))  # (C,)

    def forward(self, output: ModelOutput, targets: Tensor) -> Tensor:
        return adjusted_cross_entropy(output.logits, targets, self.log_prior, self.tau)


# Balanced softmax (Ren et al. 2020, https://arxiv.org/abs/2007.10740) is the logit-adjusted loss with tau = 1
# (Menon et al. 2021, eq. 10).
LOSSES.alias("balanced_softmax", "logit_adjusted", tau=1.0)
