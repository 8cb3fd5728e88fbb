"""Which evaluation metrics a run reports, known before it trains.

Group metrics exist only for groups that have classes (CIFAR-10-LT at rho 100 has no Few class, so there is no
``val/acc_few``), so the names depend on the training class counts. They are found by running the same metric
functions as ``elm.train.evaluate`` on a two-example-per-class batch: no name list to keep in step by hand
(``tests/platform/test_plan_checks.py`` checks them against a real evaluation).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from elm.metrics.classification import calibration_by_group, classification_metrics, posthoc_sweep
from elm.metrics.geometry import FEATURE_SPACES, embedding_statistics
from elm.metrics.margins import margin_statistics

TRAINING_METRICS = ("train/loss", "train/lr", "train/epoch_seconds", "train/images_per_sec")
LOSS_TERM_PREFIX = "train/loss_"  # losses with several terms (ELM) report train/loss_<term>


def evaluation_metric_names(split: str, class_counts: Tensor, posthoc_taus: Sequence[float]) -> set[str]:
    """The keys an evaluation on ``split`` of a model trained on ``class_counts`` reports: ``<split>/...``, and the
    geometry of the fixed training sample, ``train/emb_*/...`` (for models with a projection head).

    Args:
        split: ``"val"`` or ``"test"``.
        class_counts: (C,) training images per class.
        posthoc_taus: ``train.posthoc_taus``.
    """
    num_classes = int(class_counts.numel())
    g = torch.Generator().manual_seed(0)
    targets = torch.arange(num_classes).repeat(2)  # (2C,): every class twice, so every group is present
    logits = torch.randn(len(targets), num_classes, generator=g)
    embeddings = torch.randn(len(targets), 4, generator=g)
    names = {f"{split}/{k}" for k in classification_metrics(logits, targets, class_counts)}
    for tau, m in posthoc_sweep(logits, targets, class_counts, posthoc_taus).items():
        names |= {f"{split}/posthoc_tau{tau:g}/{k}" for k in m}
    names |= {f"{split}/{k}" for k in calibration_by_group(logits, targets, class_counts, posthoc_taus)}
    names |= {f"{split}/{k}" for k in margin_statistics(logits, None, targets, class_counts).scalars}
    geometry = embedding_statistics(embeddings, targets, class_counts).scalars
    names |= {f"{where}/{space}/{k}" for where in (split, "train") for space in FEATURE_SPACES for k in geometry}
    return names


def training_metric_names(loss: object, num_classes: int) -> set[str]:
    """The ``train/`` keys every epoch of ``elm.train.fit`` reports with this (built) loss: the loss, lr, speed and
    views, and for a multi-term loss its ``train/loss_<term>`` parts and ``train/emb_*`` anchor diagnostics (for the
    groups its class counts have). Found by calling the loss on a tiny synthetic two-view batch.
    """
    from elm.losses.base import MultiTermLoss
    from elm.losses.elm import anchor_diagnostics
    from elm.types import ModelOutput

    names = {*TRAINING_METRICS, "train/views"}
    if not isinstance(loss, MultiTermLoss):
        return names
    g = torch.Generator().manual_seed(0)
    targets = torch.arange(num_classes).repeat(2)  # (2C,): two views of one image per class
    out = ModelOutput(
        torch.randn(len(targets), num_classes, generator=g),
        torch.randn(len(targets), 4, generator=g),
        torch.randn(len(targets), 4, generator=g),
    )
    with torch.no_grad():
        names |= {f"{LOSS_TERM_PREFIX}{k}" for k in loss.terms(out, targets, views=2)}
        stats = {k: float(v) for k, v in loss.anchor_statistics(targets).items()}
    return names | {f"train/{k}" for k in anchor_diagnostics(stats)}


def is_training_metric(name: str) -> bool:
    """True for a name in the ``train/`` namespace of per-epoch training metrics (not the ``train/emb_proj/...``
    and ``train/emb_backbone/...`` geometry of the training sample, which evaluation reports)."""
    return name.startswith("train/") and not name.startswith(("train/emb_proj/", "train/emb_backbone/"))
