"""Which floating-point precision a run trains in, chosen from the config and the hardware, and its autocast.

``train.bf16: auto`` (the default) trains in bf16 autocast only where the device computes bf16 natively: a CUDA
device that reports bf16 support, or a CPU with AVX-512 BF16 or AMX (Linux ``/proc/cpuinfo`` flags
``avx512_bf16`` / ``amx_bf16``). Elsewhere it trains in fp32: on a CPU without them (e.g. AVX-512 VNNI only) bf16
autocast is emulated and was measured 2.5x slower than fp32 (issue 13). ``bf16: true`` / ``false`` force it on
or off, exactly as before ``auto`` existed. ``train.fp16: true`` trains in fp16 autocast with a ``GradScaler``
(Micikevicius et al. 2018, https://arxiv.org/abs/1710.03740), for GPUs without bf16.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

Precision = Literal["fp32", "bf16", "fp16"]
AUTO = "auto"
# /proc/cpuinfo flags of x86 instructions that compute bf16 dot products natively.
NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = Path("/proc/cpuinfo")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision a run uses and why (one line for the log)."""

    precision: Precision
    reason: str

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The autocast dtype, or None for fp32 (no autocast)."""
        return _DTYPES.get(self.precision)


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The CPU feature flags of the first processor listed in ``cpuinfo`` (empty where there is no such file)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


@functools.lru_cache(maxsize=None)
def _cached_cpu_flags() -> frozenset[str]:
    return cpu_flags()


def native_bf16(device: torch.device, flags: frozenset[str] | None = None) -> tuple[bool, str]:
    """Whether ``device`` computes bf16 natively, and the evidence in words.

    Args:
        device: the training device.
        flags: CPU flags to judge (tests pass them); read from ``/proc/cpuinfo`` when None.
    """
    if device.type == "cuda":
        ok = bool(torch.cuda.is_bf16_supported(including_emulation=False))
        name = torch.cuda.get_device_name(device)
        return ok, f"CUDA device {name} {'supports' if ok else 'lacks'} bf16"
    if device.type == "cpu":
        found = sorted(set(NATIVE_BF16_CPU_FLAGS) & (_cached_cpu_flags() if flags is None else flags))
        if found:
            return True, f"CPU has {'/'.join(found)}"
        return False, f"CPU lacks {' and '.join(NATIVE_BF16_CPU_FLAGS)} (bf16 would be emulated)"
    return False, f"device type {device.type!r} is not judged for bf16"


def choose_precision(
    bf16: bool | str, fp16: bool, device: torch.device, native: tuple[bool, str] | None = None
) -> PrecisionChoice:
    """The precision of ``train.bf16`` / ``train.fp16`` on ``device`` (pure given ``native``).

    Args:
        bf16: True, False or ``"auto"``.
        fp16: train in fp16 with a GradScaler (overrides ``bf16: auto``).
        device: the training device.
        native: ``native_bf16(device)``'s answer; computed when None (tests pass it to mock the hardware).
    Raises:
        ValueError: ``bf16`` is neither a bool nor ``"auto"``, or ``bf16: true`` together with ``fp16: true``.
    """
    if not isinstance(bf16, bool) and bf16 != AUTO:
        raise ValueError(f"train.bf16={bf16!r} must be true, false or 'auto'")
    if fp16 and bf16 is True:
        raise ValueError("train.fp16 and train.bf16 are both true: choose one")
    if fp16:
        return PrecisionChoice("fp16", "train.fp16 is true (fp16 autocast + GradScaler)")
    if isinstance(bf16, bool):
        return PrecisionChoice("bf16" if bf16 else "fp32", f"train.bf16 is {str(bf16).lower()}")
    ok, why = native if native is not None else native_bf16(device)
    return PrecisionChoice("bf16" if ok else "fp32", f"train.bf16 is auto and the {why}")


def autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager[Any]:
    """``torch.autocast`` on ``device`` in ``precision`` (disabled for fp32)."""
    dtype = _DTYPES.get(precision)
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)
