"""A one-hidden-layer MLP for tests and smoke runs: flatten -> Linear -> ReLU (embeddings) -> classifier."""

from __future__ import annotations

from typing import Annotated

from torch import nn

from elm.models.base import EmbeddingClassifier
from elm.models.heads import DEFAULT_COSINE_SCALE, CosineScale, ProjectionDim
from elm.registry import MODELS, Interval


@MODELS.register("tiny_mlp")
def tiny_mlp(
    *,
    num_classes: int,
    in_channels: int,
    image_size: int,
    hidden: Annotated[int, Interval(ge=1)] = 32,
    projection_dim: ProjectionDim = None,
    cosine_classifier: bool = False,
    cosine_scale: CosineScale = DEFAULT_COSINE_SCALE,
) -> EmbeddingClassifier:
    """(B, C, H, W) -> flatten -> Linear(C*H*W, hidden) -> ReLU = (B, hidden) embeddings -> (B, num_classes).

    Args:
        num_classes: number of classes (from the data).
        in_channels: image channels (from the data).
        image_size: side of the square input (from the data).
        hidden: embedding size D.
        projection_dim: output size P of a Linear-ReLU-Linear projection head, or None for no head.
        cosine_classifier: use scaled-cosine logits instead of a linear layer.
        cosine_scale: the scale s of the cosine logits.
    """
    if hidden < 1:
        raise ValueError(f"model.hidden={hidden!r} must be >= 1")
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size**2, hidden), nn.ReLU())
    return EmbeddingClassifier(backbone, hidden, num_classes, projection_dim, cosine_classifier, cosine_scale)
