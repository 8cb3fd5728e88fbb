"""Learning-rate schedules as pure functions of training progress.

The CIFAR recipe of Menon et al. (2021) and Cao et al. (2019): linear warm-up over ``warmup_epochs`` then x``gamma``
at each milestone epoch; or a cosine decay after warm-up (the ImageNet-LT / iNaturalist recipe).
"""

from __future__ import annotations

import math

from elm.config import OptimConfig


def lr_factor(step: int, steps_per_epoch: int, cfg: OptimConfig) -> float:
    """Multiplier of ``cfg.lr`` at optimiser step ``step`` (0-based).

    Warm-up rises linearly from ``1/(warmup_epochs*steps_per_epoch)`` to 1 over the first ``warmup_epochs``;
    ``step`` decays by ``gamma`` per milestone reached (``epoch >= m``); ``cosine`` follows
    ``0.5 * (1 + cos(pi * p))`` with p the post-warm-up progress in [0, 1); ``constant`` stays at 1.
    """
    warmup_steps = cfg.warmup_epochs * steps_per_epoch
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    epoch = step // steps_per_epoch
    if cfg.schedule == "step":
        return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    if cfg.schedule == "cosine":
        total = max(1, cfg.epochs * steps_per_epoch - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * (step - warmup_steps) / total))
    return 1.0
