"""Shared value types: what a model returns and what a dataset provides."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class ModelOutput(NamedTuple):
    """A model's forward result.

    Attributes:
        logits: (B, C) class scores.
        embeddings: (B, D) penultimate features (before any projection head).
        projections: (B, P) projection-head output if the model has one, else None.
    """

    logits: Tensor
    embeddings: Tensor
    projections: Tensor | None = None
