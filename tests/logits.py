"""Synthetic logits for the post-hoc tests (``elm.metrics.posthoc_search``, ``platform.posthoc``)."""

from __future__ import annotations

import torch


def head_biased_logits(
    counts: torch.Tensor, n_per_class: int, seed: int, prior_weight: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy logits biased toward the head, like a model trained on ``counts``: ``n_per_class`` examples of each
    class, standard normal noise + 1.5 on the true class + ``prior_weight`` x log prior.

    Returns:
        (N, C) float32 logits and (N,) int64 labels, N = C x ``n_per_class``, sorted by class.
    """
    g = torch.Generator().manual_seed(seed)
    c = len(counts)
    y = torch.arange(c).repeat_interleave(n_per_class)
    f = torch.randn(len(y), c, generator=g) + 1.5 * torch.nn.functional.one_hot(y, c)
    return f + prior_weight * (counts.double() / counts.sum()).log().float(), y
