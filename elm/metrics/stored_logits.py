"""A trial's final logits, labels and training class counts in one compressed ``.npz``, for post-hoc analysis
without retraining (``platform.posthoc``).

Layout of the file (``np.savez_compressed``): ``class_counts`` (C,) int64 training images per class, and for each
evaluated split ``s`` (``val``, ``test``) ``s_logits`` (N_s, C) float16 (float32 if some |logit| exceeds float16's
range) and ``s_labels`` (N_s,) int64. float16 keeps about 3 significant digits: argmax and softmax move by less
than the noise between seeds. CIFAR-10 test logits (10,000 x 10) take about 0.2 MB.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from torch import Tensor

STORED_LOGITS_FILE = "stored_logits.npz"
FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504: beyond it float16 holds inf


@dataclass(frozen=True)
class StoredLogits:
    """What one trial stored.

    Attributes:
        class_counts: (C,) int64 training images per class (they define the prior and the Many/Medium/Few groups).
        splits: split name -> (logits (N, C) float32, labels (N,) int64).
    """

    class_counts: np.ndarray
    splits: Mapping[str, tuple[np.ndarray, np.ndarray]]


def save_stored_logits(path: str | Path, splits: Mapping[str, tuple[Tensor, Tensor]], class_counts: Tensor) -> Path:
    """Write ``splits`` and ``class_counts`` to ``path`` (compressed; logits as float16 when they fit).

    Args:
        path: the ``.npz`` file to write (its folder is created).
        splits: split name -> (logits (N, C), labels (N,)).
        class_counts: (C,) training images per class.
    Raises:
        ValueError: no split, a split name with ``_``, or shapes that disagree.
    """
    if not splits:
        raise ValueError("nothing to store: no split")
    counts = torch.as_tensor(class_counts).detach().cpu().long()
    arrays: dict[str, np.ndarray] = {"class_counts": counts.numpy()}
    for name, (logits, labels) in splits.items():
        if "_" in name:
            raise ValueError(f"split name {name!r} must not contain '_'")
        if logits.ndim != 2 or labels.shape != logits.shape[:1] or logits.shape[1] != len(counts):
            raise ValueError(
                f"split {name!r}: need logits (N, {len(counts)}) and labels (N,); got "
                f"{tuple(logits.shape)}, {tuple(labels.shape)}"
            )
        f = logits.detach().cpu().float().numpy()
        fits = f.size == 0 or float(np.abs(f).max()) < FLOAT16_MAX
        arrays[f"{name}_logits"] = f.astype(np.float16 if fits else np.float32)
        arrays[f"{name}_labels"] = labels.detach().cpu().long().numpy()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as fh:  # a file handle: np.savez would append .npz to a name without it
        np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]  # numpy stubs type **kwds as allow_pickle
    return out


def load_stored_logits(path: str | Path) -> StoredLogits:
    """Read a file written by ``save_stored_logits``; logits come back as float32.

    Raises:
        ValueError: the file is not an ``.npz`` archive, or has no ``class_counts`` or a split without its labels.
    """
    try:
        archive = np.load(Path(path))
    except (ValueError, EOFError, zipfile.BadZipFile) as e:  # not an npz (numpy refuses pickles), empty, truncated
        raise ValueError(f"{path}: not a stored-logits file ({' '.join(str(e).split())[:120]})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):  # a bare .npy array
        raise ValueError(f"{path}: not a stored-logits file (a single array, not an .npz archive)")
    with archive as z:
        if "class_counts" not in z.files:
            raise ValueError(f"{path}: no class_counts; not a stored-logits file")
        splits = {}
        for key in z.files:
            if key.endswith("_logits"):
                name = key[: -len("_logits")]
                if f"{name}_labels" not in z.files:
                    raise ValueError(f"{path}: split {name!r} has logits but no labels")
                splits[name] = (z[key].astype(np.float32), z[f"{name}_labels"].astype(np.int64))
        return StoredLogits(class_counts=z["class_counts"].astype(np.int64), splits=splits)
