"""How a file-backed split's DataLoader runs: worker processes, pinned memory, prefetch.

Kept apart from ``elm.data.file_loader`` (which imports PIL and torchvision) so that configs and the in-memory
path never import them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FileLoaderOptions:
    """``torch.utils.data.DataLoader`` settings for ``FileSplit`` batches.

    Attributes:
        workers: worker processes that decode and augment (0: in the calling process).
        pin_memory: return batches in page-locked memory, so the copy to a GPU can be non-blocking.
        persistent_workers: keep the workers alive between epochs (workers > 0 only).
        prefetch_factor: batches each worker prepares ahead (workers > 0 only).
    """

    workers: int = 0
    pin_memory: bool = False
    persistent_workers: bool = False
    prefetch_factor: int = 2

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ValueError(f"workers={self.workers} must be >= 0")
        if self.prefetch_factor < 1:
            raise ValueError(f"prefetch_factor={self.prefetch_factor} must be >= 1")
