"""The one best-trial rule (platform.best) against a loop written here."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from platform.best import best_index, describe_no_best

ROWS = [  # trial, epoch reached, last evaluated value
    ("a", 10, 0.50),
    ("b", 10, 0.61),
    ("c", 4, 0.90),  # stopped early by ASHA: never competes
    ("d", 10, math.nan),  # diverged
    ("e", 10, 0.58),
]


def reference(rows: list[tuple[str, int, float]], epochs: int, mode: str) -> str | None:
    best, best_value = None, None
    for trial, reached, value in rows:
        if reached < epochs or math.isnan(value):
            continue
        if best_value is None or (value > best_value if mode == "max" else value < best_value):
            best, best_value = trial, value
    return best


@pytest.mark.parametrize("mode", ["max", "min"])
def test_best_is_among_the_trials_that_reached_the_last_epoch(mode: str) -> None:
    df = pd.DataFrame(ROWS, columns=["trial", "epoch", "m"])
    idx = best_index(df, "m", mode, epochs=10)
    assert df.loc[idx, "trial"] == reference(ROWS, 10, mode)


def test_no_best_when_no_trial_reached_the_end_or_the_metric_is_missing() -> None:
    df = pd.DataFrame(ROWS, columns=["trial", "epoch", "m"])
    assert best_index(df, "m", "max", epochs=11) is None
    assert "no trial reached the last epoch (11)" == describe_no_best(df, "m", 11)
    assert best_index(df, "other", "max", epochs=10) is None
    with pytest.raises(ValueError, match="mode"):
        best_index(df, "m", "up", epochs=10)


def test_ties_go_to_the_same_trial_whatever_the_row_order() -> None:
    rows = [("t2", 10, 0.7), ("t1", 10, 0.7), ("t3", 10, 0.5)]
    for order in (rows, rows[::-1]):
        df = pd.DataFrame(order, columns=["trial_id", "epoch", "m"])
        assert df.loc[best_index(df, "m", "max", epochs=10), "trial_id"] == "t1"
