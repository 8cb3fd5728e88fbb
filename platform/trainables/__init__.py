"""Ray Train around ``elm.train.fit``: one ``TorchTrainer`` per Tune trial (Ray Train V2)."""
from platform.trainables.driver import resolve_trial_overrides, train_driver_fn
from platform.trainables.worker import train_fn_per_worker

__all__ = ["resolve_trial_overrides", "train_driver_fn", "train_fn_per_worker"]
