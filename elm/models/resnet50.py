"""ResNet-50 (He et al. 2016, https://arxiv.org/abs/1512.03385) from torchvision, randomly initialised.

The ImageNet-LT / iNaturalist backbone of Kang et al. 2020 (https://arxiv.org/abs/1910.09217). torchvision's
``fc`` is replaced by the shared heads; embeddings are the 2048-d globally average-pooled features.
"""

from __future__ import annotations

import torchvision
from torch import nn

from elm.models.base import EmbeddingClassifier
from elm.models.heads import DEFAULT_COSINE_SCALE, CosineScale, ProjectionDim
from elm.registry import MODELS

RGB_CHANNELS = 3


@MODELS.register("resnet50")
def resnet50(
    *,
    num_classes: int,
    in_channels: int,
    projection_dim: ProjectionDim = None,
    cosine_classifier: bool = False,
    cosine_scale: CosineScale = DEFAULT_COSINE_SCALE,
) -> EmbeddingClassifier:
    """torchvision ResNet-50 (``weights=None``) with the shared classifier and projection heads.

    Args:
        num_classes: C (from the data).
        in_channels: image channels (from the data); the stem conv is rebuilt when it is not 3.
        projection_dim: output size P of a Linear-ReLU-Linear projection head, or None for no head.
        cosine_classifier: use scaled-cosine logits instead of a linear layer.
        cosine_scale: the scale s of the cosine logits.
    """
    backbone = torchvision.models.resnet50(weights=None)
    if in_channels != RGB_CHANNELS:
        stem = backbone.conv1
        backbone.conv1 = nn.Conv2d(
            in_channels, stem.out_channels, stem.kernel_size, stem.stride, stem.padding, bias=False
        )
        nn.init.kaiming_normal_(backbone.conv1.weight, mode="fan_out", nonlinearity="relu")  # as torchvision
    embedding_dim = backbone.fc.in_features  # 2048
    backbone.fc = nn.Identity()  # forward now ends at the pooled, flattened features
    return EmbeddingClassifier(backbone, embedding_dim, num_classes, projection_dim, cosine_classifier, cosine_scale)
