"""elm.precision: the precision follows the config, and `auto` follows the hardware (detection mocked here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from elm.config import ConfigError, from_dict, set_keys
from elm.precision import autocast, choose_precision, cpu_flags, native_bf16
from tests.conftest import tiny_raw

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    "flags, expected",
    [
        ({"avx512f", "avx512_vnni"}, "fp32"),  # the 2-core Xeon of issue 13: bf16 would be emulated
        ({"avx512f", "avx512_bf16"}, "bf16"),  # AMD Zen 4
        ({"amx_bf16", "amx_tile"}, "bf16"),  # Intel Sapphire Rapids
        (set(), "fp32"),  # no /proc/cpuinfo (e.g. macOS)
    ],
)
def test_auto_on_the_cpu_follows_its_flags(flags: set[str], expected: str) -> None:
    choice = choose_precision("auto", False, CPU, native_bf16(CPU, frozenset(flags)))
    assert choice.precision == expected
    assert "auto" in choice.reason


@pytest.mark.parametrize("supported, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_on_cuda_follows_the_device(monkeypatch: pytest.MonkeyPatch, supported: bool, expected: str) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: supported)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU")
    choice = choose_precision("auto", False, torch.device("cuda", 0))
    assert choice.precision == expected and "Fake GPU" in choice.reason


@pytest.mark.parametrize(
    "bf16, fp16, native, expected",
    [
        (True, False, False, "bf16"),  # an explicit true means bf16 as before `auto`, whatever the hardware
        (False, False, True, "fp32"),  # an explicit false means fp32
        ("auto", True, True, "fp16"),  # fp16 asked for: it wins over auto
        (False, True, True, "fp16"),
    ],
)
def test_explicit_settings_ignore_the_hardware(bf16: object, fp16: bool, native: bool, expected: str) -> None:
    assert choose_precision(bf16, fp16, CPU, (native, "mocked")).precision == expected  # type: ignore[arg-type]


def test_bf16_and_fp16_together_are_refused() -> None:
    with pytest.raises(ValueError, match="train.fp16 and train.bf16"):
        choose_precision(True, True, CPU, (True, "mocked"))
    with pytest.raises(ConfigError, match="train.fp16 and train.bf16"):
        from_dict(set_keys(tiny_raw(), {"train.bf16": True, "train.fp16": True}))


@pytest.mark.parametrize("value", [True, False, "auto"])
def test_saved_configs_keep_their_meaning(value: object) -> None:
    """A config.yaml saved before `auto` existed (bf16: true/false) loads to the same value, round-trips, and
    means what it meant."""
    cfg = from_dict(set_keys(tiny_raw(), {"train.bf16": value}))
    assert cfg.train.bf16 is value or cfg.train.bf16 == value
    assert from_dict(cfg.to_dict()) == cfg


def test_default_is_auto_and_other_values_name_the_key() -> None:
    raw = tiny_raw()
    del raw["train"]["bf16"]
    assert from_dict(raw).train.bf16 == "auto"
    for bad in ("yes", 1, None):
        with pytest.raises(ConfigError, match="train.bf16"):
            from_dict(set_keys(tiny_raw(), {"train.bf16": bad}))


def test_cpu_flags_read_the_first_processor(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert cpu_flags(info) == {"fpu", "avx512f", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.parametrize(
    "precision, dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16), ("fp32", torch.float32)]
)
def test_autocast_computes_in_the_chosen_dtype(precision: str, dtype: torch.dtype) -> None:
    a = torch.randn(4, 4)
    with autocast(CPU, precision):  # type: ignore[arg-type]
        assert (a @ a).dtype == dtype


def test_a_running_sweeps_saved_config_keeps_bf16_on_any_hardware() -> None:
    """ablations/cifar10_paper.yaml (bf16: true) is what a long sweep resumes from: bf16 even where it is not
    native, exactly as before `auto` existed."""
    from elm.config import load_config
    from tests.conftest import REPO_ROOT

    cfg = load_config(REPO_ROOT / "ablations" / "cifar10_paper.yaml")
    assert cfg.train.bf16 is True and cfg.train.fp16 is False
    for native in (True, False):
        assert choose_precision(cfg.train.bf16, cfg.train.fp16, CPU, (native, "mocked")).precision == "bf16"
