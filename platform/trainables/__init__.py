"""Tune trainables around ``elm.train.fit``: a Ray Train ``TorchTrainer`` per trial (``driver.train_driver_fn``,
Ray Train V2), or one-worker training inside the trial's own process (``in_trial.train_in_trial_fn``).

Import the submodule you need: importing this package imports none of them, so an in-trial trial process never
pays for ``ray.train.torch``.
"""
