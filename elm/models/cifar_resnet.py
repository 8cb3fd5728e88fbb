"""CIFAR ResNet-(6n+2) exactly as in LDAM-DRW's ``models/resnet_cifar.py`` (He et al. 2016, section 4.2).

He et al., "Deep Residual Learning for Image Recognition", https://arxiv.org/abs/1512.03385, and
https://github.com/kaidic/LDAM-DRW/blob/master/models/resnet_cifar.py (after Yerlan Idelbayev's implementation).
A 3x3 stem with 16 channels, three stages of n basic blocks with 16/32/64 channels (stride 2 at the start of
stages 2 and 3), option-A (parameter-free) shortcuts, global average pooling to a 64-d embedding, and
kaiming-normal initialisation of every conv and linear weight. ResNet-32 (n=5) with 10 classes has 464,154
parameters.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from elm.models.base import EmbeddingClassifier

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


def cifar_resnet(
    *,
    depth: int,
    num_classes: int,
    in_channels: int,
    projection_dim: int | None,
    cosine_classifier: bool,
    cosine_scale: float,
) -> EmbeddingClassifier:
    """Build a CIFAR ResNet of ``depth = 6n + 2`` layers (20, 32, 44, 56, 110, ...).

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
