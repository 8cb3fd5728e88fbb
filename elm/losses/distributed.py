"""Batch-level terms under DDP: gather every rank's rows (with gradients) so a term sees the global batch.

A contrastive term computed on each rank's shard alone would change with the number of workers (fewer negatives,
and positives only within a shard). ``gather_rows`` all-gathers features with autograd (``torch.distributed.nn``:
the backward pass returns each rank the gradient of every rank's loss with respect to its own rows), so with the
normalisation in ``global_mean`` the DDP-averaged gradient equals the gradient of the global-batch loss.
Without an initialised process group (or with one rank) both are the identity.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def world() -> tuple[int, int]:
    """(rank, world size) of the default process group, (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_rows(x: Tensor, with_grad: bool) -> tuple[Tensor, slice]:
    """All ranks' rows of ``x`` concatenated in rank order, and the slice of this rank's rows in the result.

    Args:
        x: (B, ...) this rank's rows; every rank must pass the same B (``elm.data.loaders.shard`` pads to that).
        with_grad: gather with autograd (features) or without (labels).
    Returns:
        (world * B, ...) tensor and ``slice(rank * B, (rank + 1) * B)``.
    """
    rank, size = world()
    if size == 1:
        return x, slice(0, len(x))
    if with_grad:
        from torch.distributed.nn.functional import all_gather  # autograd-aware collective

        parts = list(all_gather(x))
    else:
        parts = [torch.empty_like(x) for _ in range(size)]
        dist.all_gather(parts, x.contiguous())
    return torch.cat(parts), slice(rank * len(x), (rank + 1) * len(x))


def global_mean(local_sum: Tensor, local_count: Tensor) -> Tensor:
    """This rank's share of a mean over the global batch: ``world * local_sum / global_count``.

    DDP averages gradients over ranks, so the factor ``world`` makes the averaged gradient that of
    ``sum_r local_sum_r / global_count``; the returned value averaged over ranks is the global mean.

    Args:
        local_sum: scalar sum of this rank's per-anchor losses.
        local_count: scalar number of this rank's contributing anchors.
    """
    _, size = world()
    count = local_count.detach().to(torch.float32)
    if size > 1:
        count = count.clone()
        dist.all_reduce(count)
    return size * local_sum / count.clamp(min=1)
