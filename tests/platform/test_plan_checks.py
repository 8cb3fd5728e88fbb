"""What issue 10 asks to be caught before Ray starts: a metric the trials never report, a missing evaluation split,
an unusable --out, --resume of nothing, and a resumed sweep that ignores the YAML's (relative) data root."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from elm.config import ConfigError, from_dict
from elm.metrics.reported import evaluation_metric_names
from elm.train import build_experiment, evaluate
from platform.plan import record_start
from platform.tune import main, make_plan
from tests.conftest import tiny_raw

SWEEP = {"search": {"spaces": ["elm_joint"]}}


def write(tmp_path: Path, raw: dict, name: str = "exp.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_the_metric_names_known_up_front_are_exactly_what_an_evaluation_reports() -> None:
    cfg = from_dict(tiny_raw())
    exp = build_experiment(cfg)
    metrics, _ = evaluate(exp.model, cfg, exp.data, "test", torch.device("cpu"))
    assert set(metrics) == evaluation_metric_names("test", exp.data.class_counts, cfg.train.posthoc_taus)


@pytest.mark.parametrize(
    "overrides, needle",
    [
        (
            {"train.eval_split": "val", "data.n_max": 64},
            r"tune.metric 'test/balanced_acc' is never reported: trials "
            r"evaluate on the 'val' split .* did you mean 'val/balanced_acc'",
        ),
        ({"tune.metric": "test/acc_many"}, r"tune.metric 'test/acc_many' is never reported for 'synthetic_lt'"),
        ({"tune.metric": "test/balanced_accuracy"}, "never reported"),
    ],
)
def test_a_metric_the_trials_never_report_is_refused(tmp_path: Path, overrides: dict, needle: str) -> None:
    # synthetic_lt with n_max 64: no class has more than 100 images, so there is no Many group
    with pytest.raises(ConfigError, match=needle):
        make_plan(write(tmp_path, tiny_raw(**SWEEP)), overrides, out=str(tmp_path / "o"))


def test_training_metrics_and_existing_groups_are_accepted(tmp_path: Path) -> None:
    for metric in ("test/acc_few", "test/posthoc_tau1/balanced_acc", "test/logit_margin/mean"):
        make_plan(write(tmp_path, tiny_raw(**SWEEP)), {"tune.metric": metric}, out=str(tmp_path / "o"))
    for metric in ("train/loss", "train/loss_embedding", "train/emb_anchor_pos_frac_few"):
        make_plan(
            write(tmp_path, tiny_raw(**SWEEP)), {"tune.metric": metric, "tune.mode": "min"}, out=str(tmp_path / "o")
        )


def test_val_split_without_validation_data_is_refused(tmp_path: Path) -> None:
    raw = tiny_raw(**SWEEP, tune={"metric": "val/balanced_acc"}, train={"eval_split": "val"})
    with pytest.raises(ConfigError, match="has no validation split"):
        make_plan(write(tmp_path, raw), {}, out=str(tmp_path / "o"))


def test_an_out_that_is_a_file_or_read_only_is_named(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match=r"--out .*afile/sub: .*afile is an existing file"):
        make_plan(write(tmp_path, tiny_raw(**SWEEP)), {}, out=str(tmp_path / "afile" / "sub"))
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    if not __import__("os").access(ro, __import__("os").W_OK):  # root ignores permissions
        with pytest.raises(ConfigError, match="is not writable"):
            make_plan(write(tmp_path, tiny_raw(**SWEEP)), {}, out=str(ro / "x"))


def test_planning_creates_no_folder(tmp_path: Path) -> None:
    make_plan(write(tmp_path, tiny_raw(**SWEEP)), {}, out=str(tmp_path / "new" / "deeper"))
    assert not (tmp_path / "new").exists()


def test_resume_without_a_started_sweep_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([write(tmp_path, tiny_raw(**SWEEP)), "--resume", "--out", str(tmp_path / "none")]) == 2
    assert "--resume: no sweep was started in" in capsys.readouterr().err


def test_resume_continues_with_the_saved_config_whatever_the_yaml_says_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    started = make_plan(write(tmp_path, tiny_raw(**SWEEP)), {"loss.tau": 0.5}, out=str(out))
    out.mkdir()
    record_start(started)
    # The README's form: the YAML now has a relative data root that does not exist from here; --resume must not
    # care (the saved config's data is what the sweep trains on).
    changed = tiny_raw(**SWEEP, data={"name": "cifar10_lt", "root": "data", "download": False})
    monkeypatch.chdir(tmp_path)
    plan = make_plan(write(tmp_path, changed, "exp.yaml"), {}, out=str(out), resume=True)

    def without_resources(d: dict) -> dict:
        return {k: v for k, v in d.items() if k != "resources"}

    assert without_resources(plan.cfg.to_dict()) == without_resources(started.cfg.to_dict())
    assert plan.cfg.loss.kwargs["tau"] == 0.5
    assert plan.sweep_id == started.sweep_id != ""
    assert plan.spec.resources.launcher == "in_trial"


@pytest.mark.parametrize(
    "overrides, needle",
    [
        ({"tune.metric": "train/loss_bogus", "tune.mode": "min"}, "never reported by loss 'elm'"),
        (
            {
                "tune.metric": "train/loss_logit",
                "tune.mode": "min",
                "loss": {"name": "cross_entropy"},
                "search": {"optim.lr": {"uniform": [0.01, 0.1]}},
            },
            "never reported by loss 'cross_entropy'",
        ),
        ({"tune.metric": "train/loss", "tune.mode": "max"}, "is a loss but tune.mode is 'max'"),
    ],
)
def test_training_metrics_must_be_reported_by_the_loss(tmp_path: Path, overrides: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        make_plan(write(tmp_path, tiny_raw(**SWEEP)), overrides, out=str(tmp_path / "o"))


def test_training_metric_names_known_up_front_are_what_fit_reports(one_torch_thread: None) -> None:
    from elm.metrics.reported import training_metric_names
    from elm.train import fit

    cfg = from_dict(tiny_raw(optim={"epochs": 1, "warmup_epochs": 0, "milestones": []}))
    exp = build_experiment(cfg)
    reports: list = []
    fit(cfg, reports.append, experiment=exp)
    reported = {
        k
        for k in reports[0].metrics
        if k.startswith("train/") and not k.startswith(("train/emb_proj/", "train/emb_backbone/"))
    }
    assert reported == training_metric_names(exp.loss, exp.data.num_classes)


def test_a_tracking_uri_that_cannot_work_is_refused_before_ray(tmp_path: Path) -> None:
    import socket
    import time

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cases = [
        ("foo://x", "unsupported scheme 'foo'"),
        (f"sqlite:///{tmp_path}/missing/mlflow.db", "does not exist"),
        (f"http://127.0.0.1:{port}", "no MLflow server answers there"),
    ]
    for uri, needle in cases:
        t0 = time.perf_counter()
        with pytest.raises(ConfigError, match=needle):
            make_plan(write(tmp_path, tiny_raw(**SWEEP)), {"tracking.uri": uri}, out=str(tmp_path / "o"))
        assert time.perf_counter() - t0 < 10
    make_plan(
        write(tmp_path, tiny_raw(**SWEEP)), {"tracking.uri": f"sqlite:///{tmp_path}/ok.db"}, out=str(tmp_path / "o")
    )
