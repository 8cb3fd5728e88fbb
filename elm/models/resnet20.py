"""ResNet-20 for CIFAR (He et al. 2016, https://arxiv.org/abs/1512.03385), as in LDAM-DRW; see `cifar_resnet`."""
from __future__ import annotations

from elm.models.base import EmbeddingClassifier
from elm.models.cifar_resnet import cifar_resnet
from elm.models.heads import DEFAULT_COSINE_SCALE, CosineScale, ProjectionDim
from elm.registry import MODELS

DEPTH = 20


@MODELS.register("resnet20")
def resnet20(
    *,
    num_classes: int,
    in_channels: int,
    projection_dim: ProjectionDim = None,
    cosine_classifier: bool = False,
    cosine_scale: CosineScale = DEFAULT_COSINE_SCALE,
) -> EmbeddingClassifier:
    """CIFAR ResNet-20; embeddings are the 64-d pooled features.

    Args:
        num_classes: C (from the data).
        in_channels: image channels (from the data).
        projection_dim: output size P of a Linear-ReLU-Linear projection head, or None for no head.
        cosine_classifier: use scaled-cosine logits instead of a linear layer.
        cosine_scale: the scale s of the cosine logits.
    """
    return cifar_resnet(
        depth=DEPTH,
        num_classes=num_classes,
        in_channels=in_channels,
        projection_dim=projection_dim,
        cosine_classifier=cosine_classifier,
        cosine_scale=cosine_scale,
    )
