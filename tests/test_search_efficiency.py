"""The search-efficiency benchmark's bookkeeping: budget in epochs, and each search's answer after every report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from benchmarks.search_efficiency import Report, anytime_best, epochs_to_reach, grid_search_block, read_reports


def test_anytime_best_uses_each_trials_latest_value_in_arrival_order() -> None:
    reports = [
        Report("a", (10.0, 0), 0.30),
        Report("b", (11.0, 0), None),  # evaluated later: counts as budget, not as an answer
        Report("a", (12.0, 1), 0.20),  # a's latest value replaces its 0.30
        Report("b", (12.0, 1), 0.25),
        Report("c", (9.0, 0), 0.10),  # arrived first despite its place in the list
    ]
    # Reference, by hand: c=.10 -> a=.30 -> b=None -> a=.20 -> b=.25
    assert anytime_best(reports) == [(1, 0.10), (2, 0.30), (3, 0.30), (4, 0.20), (5, 0.25)]
    assert anytime_best([Report("a", (1.0, 0), None)]) == [(1, None)]


def test_epochs_to_reach_is_the_first_budget_at_or_above_the_target() -> None:
    curve = [(1, None), (2, 0.2), (3, 0.31), (4, 0.29), (5, 0.4)]
    assert epochs_to_reach(curve, 0.3) == 3
    assert epochs_to_reach(curve, 0.4) == 5
    assert epochs_to_reach(curve, 0.5) is None


def test_grid_spans_the_elm_joint_box() -> None:
    space = json.loads(grid_search_block(3))
    box = yaml.safe_load((Path(__file__).parents[1] / "platform/search_spaces/elm_joint.yaml").read_text())
    assert (
        space["loss.tau"]["grid"]
        == [0.0, 1.0, 2.0]
        == [box["loss.tau"]["uniform"][0], 1.0, box["loss.tau"]["uniform"][1]]
    )
    assert space["loss.margin"]["grid"] == [0.0, 0.25, 0.5]
    assert space["loss.lam"]["grid"] == pytest.approx([0.01, 0.1, 1.0])
    assert box["loss.lam"]["loguniform"] == [0.01, 1.0]


def test_read_reports_takes_every_epoch_line_of_every_trial(tmp_path: Path) -> None:
    for trial, rows in {"t1": [(100, 1, 0.2), (101, 2, None)], "t2": [(100, 1, 0.5)]}.items():
        d = tmp_path / "ray" / "sweep" / trial
        d.mkdir(parents=True)
        lines = [
            json.dumps({"timestamp": ts, "training_iteration": it, **({} if v is None else {"val/balanced_acc": v})})
            for ts, it, v in rows
        ]
        (d / "result.json").write_text("\n".join(lines) + "\n")
    got = sorted(read_reports(tmp_path), key=lambda r: (r.trial, r.order))
    assert got == [Report("t1", (100.0, 0), 0.2), Report("t1", (101.0, 1), None), Report("t2", (100.0, 0), 0.5)]
