"""Trials that fail for a deterministic reason fail once, alone, with their reason.

A bad sampled config (``ConfigError``), a ``ValueError`` from the data, or a diverged loss (``NonFiniteLossError``)
would fail the same way on every retry, so retrying them (``tune.max_failures``, Ray Train's ``FailureConfig``)
only wastes the cluster. Only crashes (a dead worker or node) are retried. How:

- the trial (in-trial, or rank 0 of a Ray Train run) writes ``failure.txt`` in its own folder
  (``<out>/train/<name>-trial=<id>/``), reports ``{FAILURE_KEY: reason}`` once and raises ``TrialFailedError``;
- ``NoRetryOnDeterministicFailure``, a driver-side Tune callback, sees that report and sets the trial's
  ``max_failures`` to 0, so Tune does not restart it;
- a trial started again anyway (``--resume`` of a sweep killed just then) finds ``failure.txt`` and fails at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ray import tune

from elm.train import NonFiniteLossError

DETERMINISTIC_ERRORS: tuple[type[BaseException], ...] = (ValueError, NonFiniteLossError)  # ConfigError is a ValueError
FAILURE_FILE = "failure.txt"
FAILURE_KEY = "error/deterministic"  # reported once by a trial that failed deterministically; its value is the reason


class TrialFailedError(RuntimeError):
    """A trial failed for a deterministic reason (the message is ``"<ErrorType>: <reason>"``)."""


def reason(error: BaseException) -> str:
    """``"<ErrorType>: <message>"`` on one line."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"


def record_failure(error: BaseException, failure_file: Path, report: Callable[[dict[str, Any]], Any]) -> str:
    """Write ``error``'s reason to ``failure_file``, report it once with ``report``; return the reason."""
    text = reason(error)
    failure_file.parent.mkdir(parents=True, exist_ok=True)
    failure_file.write_text(text + "\n")
    report({FAILURE_KEY: text})
    return text


def raise_if_failed_before(failure_file: Path) -> None:
    """Fail at once if this trial already failed deterministically (a restart would fail again).

    Raises:
        TrialFailedError: with the recorded reason.
    """
    if failure_file.is_file():
        raise TrialFailedError(failure_file.read_text().strip())


class NoRetryOnDeterministicFailure(tune.Callback):
    """Driver-side: a trial that reported ``FAILURE_KEY`` is not restarted by Tune (``max_failures`` set to 0)."""

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        if result.get(FAILURE_KEY):
            trial.max_failures = 0


class StopWhenNothingCanStart(tune.Callback, tune.Stopper):
    """On a joined cluster, end the sweep when trials have waited ``limit_s`` seconds while none ran.

    A trial larger than every node of a cluster (without an autoscaler that adds such nodes) stays PENDING for
    ever; Ray Tune only logs a warning. This callback watches the trials after every step and, as the experiment
    stopper, ends the sweep with a reason that ``platform.tune`` prints (the unstarted trials end as interrupted
    in ``summary.md``). The private local cluster needs none: ``platform.runtime.check_trial_fits`` refuses such
    trials before Ray starts.
    """

    def __init__(self, limit_s: float, clock: Callable[[], float] | None = None) -> None:
        import time

        self.limit_s = limit_s
        self.clock = clock or time.monotonic
        self.waiting_since: float | None = None
        self.reason: str | None = None

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        statuses = [t.status for t in trials]
        if "RUNNING" in statuses or "PENDING" not in statuses:
            self.waiting_since = None
            return
        now = self.clock()
        self.waiting_since = self.waiting_since if self.waiting_since is not None else now
        if now - self.waiting_since >= self.limit_s and self.reason is None:
            self.reason = (
                f"no trial could start for {self.limit_s:.0f} s (tune.max_pending_s): the cluster lacks "
                f"the resources one trial needs; lower resources.* or add nodes"
            )

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.reason is not None
