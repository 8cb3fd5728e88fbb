"""Plain softmax cross-entropy, the baseline every long-tail loss is compared with."""

from __future__ import annotations

from typing import Annotated, ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from elm.registry import LOSSES, Interval
from elm.types import ModelOutput


@LOSSES.register("cross_entropy")
class CrossEntropyLoss(nn.Module):
    """Mean cross-entropy on the logits, optionally with label smoothing (Szegedy et al. 2016)."""

    uses_embeddings: ClassVar[bool] = False

    def __init__(self, *, label_smoothing: Annotated[float, Interval(ge=0.0, lt=1.0)] = 0.0) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, output: ModelOutput, targets: Tensor) -> Tensor:
        return F.cross_entropy(output.logits.float(), targets, label_smoothing=self.label_smoothing)
