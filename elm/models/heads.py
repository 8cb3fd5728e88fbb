"""Heads shared by every model: a 2-layer projection MLP and a cosine (normalised) classifier.

The projection head follows SimCLR (Chen et al. 2020, https://arxiv.org/abs/2002.05709): Linear-ReLU-Linear on
the embeddings; its output feeds contrastive terms, never the classifier. The cosine classifier follows
Gidaris & Komodakis 2018 (https://arxiv.org/abs/1804.09458) and LDAM-DRW's ``NormedLinear``
(Cao et al. 2019, https://arxiv.org/abs/1906.07413): logits = scale * cos(w_c, z).
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from elm.registry import Interval

# Config-schema types for the options every model factory shares.
ProjectionDim = Annotated[int, Interval(ge=1)] | None
CosineScale = Annotated[float, Interval(gt=0.0)]
# Default logit scale of the cosine classifier; a config field (``model.cosine_scale``), not a constant in code.
DEFAULT_COSINE_SCALE = 16.0


def cosine_logits(features: Tensor, weight: Tensor, scale: float) -> Tensor:
    """Scaled cosine similarity between features and class weights (Gidaris & Komodakis 2018, eq. 2).

    Args:
        features: (B, D) embeddings.
        weight: (C, D) class weight vectors.
        scale: multiplier s of the cosines.

    Returns:
        (B, C) logits ``s * <z / |z|, w_c / |w_c|>``.
    """
    return scale * F.normalize(features, dim=1) @ F.normalize(weight, dim=1).t()


class ProjectionHead(nn.Module):
    """Linear(D, D) - ReLU - Linear(D, P): maps (B, D) embeddings to (B, P) projections."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        if in_dim < 1 or out_dim < 1:
            raise ValueError(f"model.projection_dim={out_dim!r} (embedding dim {in_dim}) must be >= 1")
        self.net = nn.Sequential(nn.Linear(in_dim, in_dim), nn.ReLU(inplace=True), nn.Linear(in_dim, out_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class CosineClassifier(nn.Module):
    """Bias-free classifier on normalised features and weights: (B, D) -> (B, C) = scale * cos."""

    def __init__(self, in_dim: int, num_classes: int, scale: float = DEFAULT_COSINE_SCALE) -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError(f"model.cosine_scale={scale!r} must be > 0")
        self.scale = float(scale)
        self.weight = nn.Parameter(torch.empty(num_classes, in_dim))
        nn.init.kaiming_normal_(self.weight)  # only the direction matters

    def forward(self, x: Tensor) -> Tensor:
        return cosine_logits(x, self.weight, self.scale)

    def extra_repr(self) -> str:
        return f"in_dim={self.weight.shape[1]}, num_classes={self.weight.shape[0]}, scale={self.scale}"


def make_classifier(in_dim: int, num_classes: int, cosine: bool, scale: float) -> nn.Module:
    """The final layer: ``CosineClassifier`` if ``cosine`` else ``nn.Linear(in_dim, num_classes)``."""
    if num_classes < 1:
        raise ValueError(f"num_classes={num_classes!r} must be >= 1")
    return CosineClassifier(in_dim, num_classes, scale) if cosine else nn.Linear(in_dim, num_classes)
