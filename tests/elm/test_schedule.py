"""The learning-rate schedule against the recipe written out by hand."""

from __future__ import annotations

import math

from elm.config import OptimConfig
from elm.schedule import lr_factor


def test_warmup_then_step_decay() -> None:
    cfg = OptimConfig(epochs=200, warmup_epochs=5, milestones=(160, 180), gamma=0.1)
    spe = 10
    assert lr_factor(0, spe, cfg) == 1 / 50
    assert lr_factor(49, spe, cfg) == 1.0
    assert lr_factor(50, spe, cfg) == 1.0
    assert math.isclose(lr_factor(160 * spe, spe, cfg), 0.1)
    assert math.isclose(lr_factor(180 * spe - 1, spe, cfg), 0.1)
    assert math.isclose(lr_factor(180 * spe, spe, cfg), 0.01)


def test_cosine_after_warmup() -> None:
    cfg = OptimConfig(epochs=10, warmup_epochs=0, schedule="cosine")
    assert lr_factor(0, 4, cfg) == 1.0
    assert math.isclose(lr_factor(20, 4, cfg), 0.5)
    assert lr_factor(39, 4, cfg) < 0.01
