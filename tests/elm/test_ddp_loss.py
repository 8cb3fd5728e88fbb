"""The ELM loss under DDP equals the single-process loss on the same global batch (issue 11, item 3).

Two gloo processes on the CPU each hold half of a global batch of 2 views x 12 images. Each rank's loss uses
the all-gathered features (``elm.losses.distributed``); the mean of the ranks' losses and the DDP-averaged
gradients must equal the loss and gradients of one process on the whole batch within 1e-5. Slow (spawns
processes, ~5 s).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from elm.losses.elm import ElmLoss
from tests.elm.test_losses_modules import TinyNet

pytestmark = pytest.mark.slow
COUNTS = torch.tensor([300, 60, 8, 3])
IMAGES, VIEWS, WORLD = 12, 2, 2


def make_net() -> nn.Module:
    """The same seeded linear body, head and projection head on every rank (and in the single process)."""
    return TinyNet(d_in=6, d_emb=5, d_proj=3, num_classes=len(COUNTS))


def global_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """(VIEWS, IMAGES, 6) inputs and (IMAGES,) labels."""
    g = torch.Generator().manual_seed(1)
    y = torch.tensor([0, 0, 0, 1, 1, 2, 3, 0, 1, 2, 0, 0])
    return torch.randn(VIEWS, IMAGES, 6, generator=g), y


def rows(x: torch.Tensor, y: torch.Tensor, images: slice) -> tuple[torch.Tensor, torch.Tensor]:
    """View-major rows of the images ``images``: [view 0 of them; view 1 of them]."""
    return x[:, images].reshape(-1, x.shape[-1]), y[images].repeat(VIEWS)


def loss_fn() -> ElmLoss:
    return ElmLoss(class_counts=COUNTS, tau=1.0, lam=0.7, margin=0.2, temperature=0.3)


def worker(rank: int, port: int, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    model = nn.parallel.DistributedDataParallel(make_net())
    x, y = global_batch()
    per_rank = IMAGES // WORLD
    xs, ys = rows(x, y, slice(rank * per_rank, (rank + 1) * per_rank))
    loss = loss_fn()(model(xs), ys, VIEWS)
    loss.backward()
    mean_loss = loss.detach().clone()
    dist.all_reduce(mean_loss)
    torch.save(
        {"loss": mean_loss / WORLD, "grads": {n: p.grad for n, p in model.module.named_parameters()}},
        Path(out_dir) / f"rank{rank}.pt",
    )
    # Both ranks leave together: a rank that tears gloo down while the other still talks to it aborts (seen once
    # in CI as "terminate called without an active exception", SIGABRT).
    dist.barrier()
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ddp_loss_and_gradients_equal_the_single_process_ones(tmp_path: Path) -> None:
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    mp.spawn(worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    model = make_net()
    x, y = global_batch()
    xs, ys = rows(x, y, slice(0, IMAGES))
    loss = loss_fn()(model(xs), ys, VIEWS)
    loss.backward()
    for rank in range(WORLD):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        torch.testing.assert_close(got["loss"], loss.detach(), rtol=1e-5, atol=1e-5)
        for name, p in model.named_parameters():
            torch.testing.assert_close(got["grads"][name], p.grad, rtol=1e-5, atol=1e-5, msg=name)
