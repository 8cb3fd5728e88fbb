"""Tune trainables around ``elm.train.fit``: a Ray Train ``TorchTrainer`` per trial (``train_driver_fn``,
Ray Train V2), or one-worker training inside the trial's own process (``train_in_trial_fn``)."""
from platform.trainables.driver import resolve_trial_overrides, train_driver_fn
from platform.trainables.in_trial import train_in_trial_fn
from platform.trainables.worker import train_fn_per_worker

__all__ = ["resolve_trial_overrides", "train_driver_fn", "train_fn_per_worker", "train_in_trial_fn"]
