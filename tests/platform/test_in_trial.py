"""The in-trial trainable's device choice (its training path runs end to end in tests/platform/test_e2e.py)."""

from __future__ import annotations

import pytest
import torch

from platform.trainables.in_trial import trial_device


def test_no_gpu_assigned_means_cpu() -> None:
    assert trial_device(gpu_ids=[]) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only torch case")
def test_a_gpu_trial_on_a_cpu_only_torch_fails_instead_of_silently_using_the_cpu() -> None:
    with pytest.raises(RuntimeError, match=r"holds GPU\(s\) \['1'\] but torch.cuda.is_available\(\) is False"):
        trial_device(gpu_ids=["1"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_gpu_trial_uses_the_first_visible_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES", raising=False)
    assert trial_device(gpu_ids=["3"]) == torch.device("cuda", 0)
