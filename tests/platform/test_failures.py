"""Deterministic trial failures: recorded once, never retried, failing again at once if restarted anyway."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from elm.config import ConfigError
from elm.train import NonFiniteLossError
from platform.failures import (
    DETERMINISTIC_ERRORS,
    FAILURE_KEY,
    NoRetryOnDeterministicFailure,
    TrialFailedError,
    raise_if_failed_before,
    record_failure,
)


@dataclass
class FakeTrial:
    max_failures: int = 2


def test_a_reported_deterministic_failure_turns_retries_off_for_that_trial_only() -> None:
    cb, bad, ok = NoRetryOnDeterministicFailure(), FakeTrial(), FakeTrial()
    cb.on_trial_result(0, [bad, ok], ok, {"train/loss": 1.0})
    cb.on_trial_result(0, [bad, ok], bad, {FAILURE_KEY: "NonFiniteLossError: loss is nan"})
    assert (bad.max_failures, ok.max_failures) == (0, 2)


def test_record_then_restart_fails_at_once_with_the_reason(tmp_path: Path) -> None:
    reports: list[dict] = []
    f = tmp_path / "trial" / "failure.txt"
    raise_if_failed_before(f)  # nothing recorded: no error
    text = record_failure(NonFiniteLossError("loss is nan\nat epoch 3"), f, reports.append)
    assert text == "NonFiniteLossError: loss is nan at epoch 3" and reports == [{FAILURE_KEY: text}]
    with pytest.raises(TrialFailedError, match="NonFiniteLossError: loss is nan at epoch 3"):
        raise_if_failed_before(f)


def test_config_data_and_divergence_errors_are_deterministic_crashes_are_not() -> None:
    for e in (ConfigError("x"), ValueError("x"), NonFiniteLossError("x")):
        assert isinstance(e, DETERMINISTIC_ERRORS)
    for e in (RuntimeError("worker died"), OSError("disk"), MemoryError()):
        assert not isinstance(e, DETERMINISTIC_ERRORS)


@dataclass
class Status:
    status: str


def test_a_sweep_whose_trials_cannot_start_on_a_joined_cluster_is_stopped_after_the_limit() -> None:
    from platform.failures import StopWhenNothingCanStart

    now = [0.0]
    guard = StopWhenNothingCanStart(600, clock=lambda: now[0])
    pending = [Status("PENDING"), Status("PENDING")]
    guard.on_step_end(0, pending)
    now[0] = 599.0
    guard.on_step_end(1, pending)
    assert not guard.stop_all()
    now[0] = 650.0
    guard.on_step_end(2, [Status("RUNNING"), Status("PENDING")])  # a trial runs: the clock restarts
    now[0] = 1200.0
    guard.on_step_end(3, pending)
    assert not guard.stop_all()
    now[0] = 1800.0
    guard.on_step_end(4, [Status("TERMINATED"), Status("PENDING")])
    assert guard.stop_all() and "no trial could start for 600 s" in str(guard.reason)
    assert guard("t", {}) is False  # never stops a single trial
