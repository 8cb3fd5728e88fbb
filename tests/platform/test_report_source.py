"""platform.report.source: the saved config is read back through the typed spec (tune, tracking), tolerantly."""

from __future__ import annotations

from pathlib import Path

import pytest

from platform import report as rep
from platform.report.source import default_metric, resolve, tune_spec, tuned_metrics


def test_the_metric_and_mode_come_from_the_spec_and_its_defaults() -> None:
    assert tuned_metrics({"metric": "val/balanced_acc"}, "test/balanced_acc") == ["val/balanced_acc"]
    assert tuned_metrics({"metric": ["val/acc_many", "val/acc_few"]}, "x") == ["val/acc_many", "val/acc_few"]
    assert tuned_metrics({"metric": ["val/acc"]}, "x") == ["val/acc"]  # a one-item list is one metric
    assert tuned_metrics({}, default_metric("val")) == ["val/balanced_acc"]
    assert default_metric("test") == "test/balanced_acc"  # TuneSpec's default
    assert tune_spec(None).modes == ("max",) and tune_spec({"mode": ["min", "max"]}).modes == ("min", "max")


def test_an_old_or_invalid_key_does_not_lose_the_others() -> None:
    """A report reads old folders: keys it does not need are ignored, an invalid one falls back to the default."""
    spec = tune_spec({"metric": "val/acc", "mode": 3, "retired_key": 1})  # mode: not a string
    assert spec.metrics == ("val/acc",) and spec.modes == ("max",)


def test_tracking_block_names_the_store_and_experiment(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("name: exp\ntracking: {uri: 'sqlite:///elsewhere.db', experiment: shared}\n")
    src = resolve(str(tmp_path), None, None)
    assert (src.tracking_uri, src.experiment, src.name) == ("sqlite:///elsewhere.db", "shared", "exp")
    bare = tmp_path / "bare"
    bare.mkdir()
    src = resolve(str(bare), None, None)  # no config: the folder's name, no store
    assert (src.tracking_uri, src.experiment, src.config) == (None, "bare", {})


def test_missing_experiment_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert rep.main([str(tmp_path / "nope")]) == 2
    assert "no such experiment folder" in capsys.readouterr().err
