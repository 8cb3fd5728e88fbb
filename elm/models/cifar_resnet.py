"""CIFAR ResNet-(6n+2) exactly as in LDAM-DRW's ``models/resnet_cifar.py`` (He et al. 2016, section 4.2).

He et al., "Deep Residual Learning for Image Recognition", https://arxiv.org/abs/1512.03385, and
https://github.com/kaidic/LDAM-DRW/blob/master/models/resnet_cifar.py (after Yerlan Idelbayev's implementation).
A 3x3 stem with 16 channels, three stages of n basic blocks with 16/32/64 channels (stride 2 at the start of
stages 2 and 3), option-A (parameter-free) shortcuts, global average pooling to a 64-d embedding, and
kaiming-normal initialisation of every conv and linear weight. ResNet-32 (n=5) with 10 classes has 464,154
parameters.
"""

from __future__ import annotations

from typing import Annotated

import torch.nn.functional as F
from torch import Tensor, nn

from elm.models.base import EmbeddingClassifier
from elm.models.heads import DEFAULT_COSINE_SCALE, CosineScale, ProjectionDim
from elm.registry import MODELS, Interval

STAGE_WIDTHS = (16, 32, 64)
STAGE_STRIDES = (1, 2, 2)
KERNEL = 3
LAYERS_PER_BLOCK = 2
FIXED_LAYERS = 2  # the stem conv and the classifier


def option_a_shortcut(x: Tensor, out_channels: int) -> Tensor:
    """Parameter-free shortcut (He et al. 2016, option A): stride-2 subsampling, then zero-pad the channels.

    Args:
        x: (B, C_in, H, W).
        out_channels: C_out >= C_in; the extra channels are split evenly before and after.

    Returns:
        (B, C_out, ceil(H/2), ceil(W/2)).
    """
    pad = out_channels - x.shape[1]
    return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, pad // 2, pad - pad // 2))


class OptionAShortcut(nn.Module):
    """``option_a_shortcut`` as a module (no parameters)."""

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        return option_a_shortcut(x, self.out_channels)


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus shortcut, then ReLU."""

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, KERNEL, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, KERNEL, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        needs_projection = stride != 1 or in_channels != channels
        self.shortcut: nn.Module = OptionAShortcut(channels) if needs_projection else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNetBackbone(nn.Module):
    """(B, in_channels, H, W) -> (B, 64) globally average-pooled features."""

    def __init__(self, blocks_per_stage: int, in_channels: int) -> None:
        super().__init__()
        width = STAGE_WIDTHS[0]
        self.conv1 = nn.Conv2d(in_channels, width, KERNEL, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        stages = []
        for channels, stride in zip(STAGE_WIDTHS, STAGE_STRIDES):
            strides = [stride] + [1] * (blocks_per_stage - 1)
            blocks = []
            for s in strides:
                blocks.append(BasicBlock(width, channels, s))
                width = channels
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.out_dim = width

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))  # (B, 64, H/4, W/4)
        return out.mean(dim=(2, 3))  # (B, 64)


def _kaiming_init(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(module.weight)


@MODELS.register("cifar_resnet")
def cifar_resnet(
    *,
    depth: Annotated[int, Interval(ge=8)],
    num_classes: int,
    in_channels: int,
    projection_dim: ProjectionDim = None,
    cosine_classifier: bool = False,
    cosine_scale: CosineScale = DEFAULT_COSINE_SCALE,
) -> EmbeddingClassifier:
    """A CIFAR ResNet of ``depth = 6n + 2`` layers (20, 32, 44, 56, 110, ...); embeddings are the 64-d pooled
    features. ``resnet20`` / ``resnet32`` / ``resnet56`` are this factory with the depth fixed.

    Args:
        depth: 6n + 2 layers, n >= 1 blocks per stage.
        num_classes: C (from the data).
        in_channels: image channels (from the data).
        projection_dim: output size P of a Linear-ReLU-Linear projection head, or None for no head.
        cosine_classifier: use scaled-cosine logits instead of a linear layer.
        cosine_scale: the scale s of the cosine logits.
    Raises:
        ValueError: if ``depth`` is not of the form 6n + 2 with n >= 1.
    """
    blocks, rest = divmod(depth - FIXED_LAYERS, LAYERS_PER_BLOCK * len(STAGE_WIDTHS))
    if rest != 0 or blocks < 1:
        raise ValueError(f"model.depth={depth!r} must be 6n+2 with n >= 1 (e.g. 20, 32, 56)")
    backbone = CifarResNetBackbone(blocks, in_channels)
    model = EmbeddingClassifier(
        backbone, backbone.out_dim, num_classes, projection_dim, cosine_classifier, cosine_scale
    )
    model.apply(_kaiming_init)
    return model


# The LDAM-DRW / LA paper depths (He et al. 2016, Table 6), as presets of the one factory above.
MODELS.alias("resnet20", "cifar_resnet", depth=20)
MODELS.alias("resnet32", "cifar_resnet", depth=32)
MODELS.alias("resnet56", "cifar_resnet", depth=56)
