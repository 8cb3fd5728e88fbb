"""platform.report: table and verdict maths against hand-computed values; one report from a tiny MLflow store."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from platform import report as rep
from platform.best import best_index
from platform.mlflow_schema import PER_CLASS_ARTIFACT, TAG_ROLE, TAG_TRIAL
from platform.report import papers as pa
from platform.report import per_class
from platform.report import tables as rt
from platform.report import verdict as rv

# ----------------------------------------------------------------------------------------------- pure maths


def test_mean_std_is_mean_and_sample_std_of_finite_values() -> None:
    s = rt.mean_std([0.5, 0.7, 0.9, float("nan")])
    assert s.n == 3
    assert s.mean == pytest.approx(0.7)
    assert s.std == pytest.approx(0.2)  # sqrt((0.2^2 + 0 + 0.2^2) / (3 - 1))


def test_mean_std_of_one_value_has_no_std_and_of_none_has_no_mean() -> None:
    one = rt.mean_std([0.4])
    assert (one.mean, one.n) == (0.4, 1) and math.isnan(one.std)
    none = rt.mean_std([])
    assert none.n == 0 and math.isnan(none.mean)


def test_aggregate_groups_by_variant_in_order_of_appearance() -> None:
    frame = pd.DataFrame(
        {
            "variant": ["la", "ce", "la", "ce"],
            "seed": [0, 0, 1, 1],
            "test/balanced_acc": [0.40, 0.30, 0.44, 0.34],
            "test/ece": [0.1, 0.2, 0.3, float("nan")],
        }
    )
    stats = rt.aggregate(frame, ["test/balanced_acc", "test/ece", "test/absent"])
    assert list(stats) == ["la", "ce"]
    assert stats["la"]["test/balanced_acc"].mean == pytest.approx(0.42)
    assert stats["la"]["test/balanced_acc"].std == pytest.approx(math.sqrt(2 * 0.02**2))  # ddof = 1
    assert stats["ce"]["test/ece"].n == 1 and math.isnan(stats["ce"]["test/ece"].std)
    assert "test/absent" not in stats["la"]


def test_format_stat() -> None:
    assert rt.format_stat(rt.Stat(0.4211, 0.0123, 3), percent=True) == "42.11 ± 1.23"
    assert rt.format_stat(rt.Stat(0.4211, math.nan, 1), percent=True) == "42.11"
    assert rt.format_stat(rt.Stat(1.23456, 0.5, 2)) == "1.235 ± 0.500"
    assert rt.format_stat(None) == rt.format_stat(rt.Stat(math.nan, math.nan, 0)) == "—"


def test_posthoc_taus_are_found_and_sorted_numerically() -> None:
    cols = [
        "test/posthoc_tau2/balanced_acc",
        "test/posthoc_tau0.5/balanced_acc",
        "test/posthoc_tau1/acc",
        "test/posthoc_tau1/balanced_acc",
        "val/posthoc_tau3/balanced_acc",
    ]
    assert rt.posthoc_taus(cols, "test/") == ["0.5", "1", "2"]


def test_pareto_front_maximises_both_keeps_ties_and_skips_nan() -> None:
    x = [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, float("nan"), 0.5]
    y = [5.0, 4.0, 1.0, 1.0, 2.0, 1.0, 9.0, 5.0]
    # (1,5), (2,4), (3,1) twice; (1,1), (2,2) and (0.5,5) are dominated; nan never on the front
    assert rt.pareto_front(x, y) == [0, 1, 2, 5]


def _stats(**by_variant: dict[str, tuple[float, float]]) -> dict[str, dict[str, rt.Stat]]:
    return {v: {f"test/{k}": rt.Stat(m, s, 3) for k, (m, s) in metrics.items()} for v, metrics in by_variant.items()}


ROLES = {"ce": "ce", "logit_only": "la", "embedding_only": "embedding_only", "elm": "elm"}


def test_verdict_states_each_comparison_with_difference_and_noise() -> None:
    stats = _stats(
        ce={"balanced_acc": (0.38, 0.005), "posthoc_tau1/balanced_acc": (0.42, 0.004)},
        logit_only={
            "balanced_acc": (0.43, 0.02),
            "embedding/spread_few": (0.30, 0.01),
            "logit_margin/class_mean_std_ratio": (1.0, 0.1),
        },
        elm={
            "balanced_acc": (0.425, 0.01),
            "embedding/spread_few": (0.20, 0.01),
            "logit_margin/class_mean_std_ratio": (0.95, 0.1),
        },
    )
    c = rv.verdict(stats, ROLES, "test/")
    assert [x.holds for x in c] == [True, True, False, True, True]
    assert [x.beyond_noise for x in c] == [True, False, False, True, False]
    assert [x.source for x in c] == [rv.LA_PAPER, rv.LA_PAPER, rv.ELM_PAPER, rv.ELM_PAPER, rv.HYPOTHESIS]
    assert c[0].difference == pytest.approx(0.04) and c[0].noise == pytest.approx(0.005)
    assert c[1].difference == pytest.approx(0.01) and c[1].noise == pytest.approx(0.02)
    assert c[2].difference == pytest.approx(-0.005)
    assert c[3].difference == pytest.approx(0.10)  # LA - ELM spread: positive means ELM is tighter
    assert "does NOT hold, within seed noise" in c[2].sentence()
    assert "-0.50 pts" in c[2].sentence() and "larger seed std 2.00 pts" in c[2].sentence()
    assert c[0].sentence().startswith("CE < post-hoc (tau=1 on CE): holds, beyond seed noise")


def test_verdict_uses_the_medium_group_when_the_data_has_no_few_class() -> None:
    stats = _stats(logit_only={"embedding/spread_medium": (0.30, 0.01)}, elm={"embedding/spread_medium": (0.25, 0.01)})
    spread = rv.verdict(stats, ROLES, "test/")[3]
    assert spread.claim == "ELM has lower Medium-group embedding spread than LA (embeddings)"
    assert spread.holds is True and spread.difference == pytest.approx(0.05)


def test_verdict_without_a_variant_or_with_one_seed_says_so() -> None:
    stats = {
        "ce": {
            "test/balanced_acc": rt.Stat(0.3, math.nan, 1),
            "test/posthoc_tau1/balanced_acc": rt.Stat(0.35, math.nan, 1),
        }
    }
    c = rv.verdict(stats, {"ce": "ce"}, "test/")
    assert c[0].holds is True and c[0].beyond_noise is None
    assert "seed noise unknown" in c[0].sentence()
    assert all(x.holds is None for x in c[1:])
    assert "not available" in c[2].sentence()


def test_compare_equal_means_satisfy_non_strict_only() -> None:
    a, b = ("a", rt.Stat(0.5, 0.1, 2)), ("b", rt.Stat(0.5, 0.1, 2))
    assert rv.compare("a <= b", a, b, strict=False).holds is True
    assert rv.compare("a < b", a, b, strict=True).holds is False


def test_paper_rows_put_table3_beside_ours() -> None:
    stats = _stats(
        ce={"balanced_acc": (0.40, 0.01), "posthoc_tau1/balanced_acc": (0.42, 0.01)},
        logit_only={"balanced_acc": (0.43, 0.01)},
        elm={"balanced_acc": (0.45, 0.01)},
    )
    header, rows = pa.paper_rows(stats, ROLES, "cifar100_lt", "test/")
    assert len(header) == 4
    assert rows == [
        ["ce (ce)", "40.00 ± 1.00", "38.36", "+1.64"],
        ["ce + post-hoc tau=1", "42.00 ± 1.00", "41.76", "+0.24"],
        ["logit_only (la)", "43.00 ± 1.00", "43.89", "-0.89"],
        ["elm (elm)", "45.00 ± 1.00", "", ""],
    ]
    _, other = pa.paper_rows(stats, ROLES, "synthetic_lt", "test/")
    assert all(r[2] == "" for r in other)


def test_per_class_mean_averages_seeds_and_orders_by_size() -> None:
    rows = pd.DataFrame(
        [
            {"variant": "ce", "seed": s, "class": c, "train_count": n, "group": g, "accuracy": a}
            for s, accs in ((0, (1.0, 0.2)), (1, (0.8, 0.4)))
            for (c, n, g), a in zip(((0, 100, "many"), (1, 10, "few")), accs)
        ]
    )
    out = per_class.per_class_mean(rows, "accuracy")
    assert out["class"].tolist() == [0, 1]
    assert out["accuracy"].tolist() == pytest.approx([0.9, 0.3])
    assert out["n"].tolist() == [2, 2]


def test_binned_by_size_means_within_log_bins() -> None:
    pc = pd.DataFrame(
        {
            "variant": ["v"] * 4,
            "class": range(4),
            "train_count": [1, 2, 100, 50],
            "spread": [0.4, 0.2, 0.1, 0.3],
            "n": [1] * 4,
        }
    )
    out = per_class.binned_by_size(pc, "spread", bins=2)  # edges 1, 10, 100
    assert out["classes"].tolist() == [2, 2]
    assert out["spread"].tolist() == pytest.approx([0.3, 0.2])
    assert out["train_count"].tolist() == pytest.approx([math.sqrt(2), math.sqrt(5000)])


def test_group_quantiles_skip_groups_a_variant_lacks() -> None:
    quantiles = (("q10", -1), ("q50", 0), ("q90", 1), ("mean", 0.1))
    stats = _stats(ce={f"logit_margin/{q}_few": (v, 0.0) for q, v in quantiles})
    assert per_class.group_quantiles(stats, "test/") == {"ce": {"few": {"q10": -1, "q50": 0, "q90": 1, "mean": 0.1}}}


def test_markdown_and_html_rendering_escape_cells(tmp_path: Path) -> None:
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "a.png").write_bytes(b"\x89PNG fake")
    blocks = [
        rep.Heading("T <1>", 1),
        rep.Para("use `x|y`"),
        rep.table(["a|b", "c"], [["1", "<2>"]]),
        rep.Image("plots/a.png", "alt"),
        rep.Image("plots/missing.png", "gone"),
    ]
    md = rep.to_markdown(blocks)
    assert "# T <1>" in md and "| a\\|b | c |" in md and "![alt](plots/a.png)" in md
    page = rep.to_html(blocks, "t", root=tmp_path)
    assert "<code>x|y</code>" in page and "&lt;2&gt;" in page
    assert 'src="data:image/png;base64,' in page and 'src="plots/missing.png"' in page


# ------------------------------------------------------------------- integration: a tiny MLflow store, no Ray

SEEDS = (0, 1)
# variant -> (loss, final balanced acc per seed); the first epoch of every run is higher, so a report of the
# best epoch would show 0.99
FINAL = {"ce": ("cross_entropy", (0.40, 0.44)), "elm": ("elm", (0.50, 0.56))}
BEST_EPOCH_VALUE = 0.99


def _per_class(offset: float) -> list[dict[str, object]]:
    counts = (200, 120, 50, 30, 15, 10)
    groups = ("many", "many", "medium", "medium", "few", "few")
    return [
        {
            "class": c,
            "train_count": n,
            "group": g,
            "n_eval": 10,
            "accuracy": 0.9 - 0.1 * c + offset,
            "logit_margin_mean": 1.0 - 0.2 * c,
            "logit_margin_std": 0.5,
            "logit_margin_frac_negative": 0.1,
            "spread": 0.1 + 0.02 * c + offset,
            "separation": 0.3,
            "embedding_margin_mean": 0.2,
        }
        for c, (n, g) in enumerate(zip(counts, groups))
    ]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An experiment folder like platform.tune writes: mlflow.db + mlartifacts/ + config.yaml; 4 finished runs
    and one failed run."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("exp")
    config = {
        "name": "tiny_ablation",
        "seed": 0,
        "data": {"name": "cifar100_lt"},
        "tune": {"metric": "test/balanced_acc", "mode": "max"},
    }
    (root / "config.yaml").write_text(json.dumps(config))  # JSON is YAML
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    exp = client.create_experiment("tiny_ablation", artifact_location=(root / "mlartifacts").as_uri())
    parent = client.create_run(exp, run_name="tiny_ablation", tags={TAG_ROLE: "parent"})
    client.log_text(parent.info.run_id, json.dumps(config), "config.yaml")
    trial = 0
    for variant, (loss, finals) in FINAL.items():
        for seed, final in zip(SEEDS, finals):
            run = client.create_run(
                exp,
                run_name=f"tiny_ablation-trial={trial}",
                tags={
                    TAG_ROLE: "trial",
                    TAG_TRIAL: str(trial),
                    "variant": variant,
                    "seed": str(seed),
                    "loss": loss,
                    "mlflow.parentRunId": parent.info.run_id,
                },
            )
            rid = run.info.run_id
            metrics = [
                Metric(k, v, 0, step)
                for step, value in ((1, BEST_EPOCH_VALUE), (2, final))
                for k, v in {
                    "test/balanced_acc": value,
                    "test/posthoc_tau1/balanced_acc": value + 0.01,
                    "test/acc_many": 0.8,
                    "test/acc_few": final - 0.2,
                    "test/embedding/spread_few": 0.3 - final / 2,
                    "test/logit_margin/class_mean_std": 1.0,
                    "test/logit_margin/q10_few": -1.0,
                    "test/logit_margin/q50_few": 0.5,
                    "test/logit_margin/q90_few": 2.0,
                    "test/logit_margin/mean_few": 0.6,
                }.items()
            ]
            client.log_batch(rid, metrics=metrics, params=[Param("data.name", "cifar100_lt")])
            client.log_dict(rid, _per_class(0.01 * seed), PER_CLASS_ARTIFACT)
            client.set_terminated(rid, "FINISHED")
            trial += 1
    failed = client.create_run(
        exp,
        run_name="tiny_ablation-trial=9",
        tags={TAG_ROLE: "trial", "variant": "elm", "seed": "2", "loss": "elm", "error": "NonFiniteLossError: nan"},
    )
    client.log_metric(failed.info.run_id, "test/balanced_acc", 0.0, step=1)
    client.set_terminated(failed.info.run_id, "FAILED")
    return root


def test_report_from_mlflow_store(store: Path, tmp_path: Path) -> None:
    assert rep.main([str(store), "--out", str(tmp_path)]) == 0
    md = (tmp_path / "report.md").read_text()
    page = (tmp_path / "report.html").read_text()
    # final epoch, not best: ce (0.40, 0.44) -> 42.00 ± 2.83; elm (0.50, 0.56) -> 53.00 ± 4.24
    assert "| ce | 2 | 42.00 ± 2.83 |" in md and "| elm | 2 | 53.00 ± 4.24 |" in md
    assert "99.00" not in md
    assert "| ce (ce) | 42.00 ± 2.83 | 38.36 | +3.64 |" in md  # CIFAR-100-LT, LA paper Table 3
    assert "| ce + post-hoc tau=1 | 43.00 ± 2.83 | 41.76 | +1.24 |" in md
    assert "final evaluated epoch 2" in md
    assert "## Verdict" in md and "CE < post-hoc (tau=1 on CE): holds, within seed noise" in md
    assert "LA loss <= ELM (balanced accuracy): not available" in md  # no logit-adjusted variant in this store
    assert "tiny_ablation-trial=9" in md and "FAILED" in md  # the failed run is listed, not averaged
    for name in ("accuracy_vs_class_size.png", "spread_vs_class_size.png", "logit_margins_by_group.png"):
        assert (tmp_path / "plots" / name).stat().st_size > 0
        assert f"(plots/{name})" in md
    assert page.count('src="data:image/png;base64,') == 3 and "42.00 ± 2.83" in page
    agg = pd.read_csv(tmp_path / "aggregate.csv")
    row = agg[(agg["variant"] == "elm") & (agg["metric"] == "test/balanced_acc")].iloc[0]
    assert (row["mean"], row["n"]) == (pytest.approx(0.53), 2)


def sweep_folder(root: Path, trials: dict[str, list[object]]) -> Path:
    """A finished CIFAR-10-LT ELM sweep as Ray leaves it without MLflow: config.yaml and trials.csv only."""
    exp = root / "sweep"
    exp.mkdir(parents=True)
    (exp / "config.yaml").write_text("name: sweep\nseed: 0\ndata: {name: cifar10_lt}\nloss: {name: elm}\n")
    pd.DataFrame(trials).to_csv(exp / "trials.csv", index=False)
    return exp


def test_report_from_trials_csv_of_a_sweep(tmp_path: Path) -> None:
    """No MLflow store: Ray's trials.csv; a search sweep gets its best trials and head-vs-tail Pareto front."""
    exp = sweep_folder(
        tmp_path,
        {
            "trial_id": ["a", "b", "c"],
            "epoch": [200, 200, 40],
            "test/balanced_acc": [0.70, 0.75, 0.60],
            "test/acc_many": [0.9, 0.8, 0.7],
            "test/acc_few": [0.4, 0.6, 0.5],
            "config/loss.tau": [0.5, 1.5, 1.0],
        },
    )
    assert rep.main([str(exp)]) == 0
    md = (exp / "report" / "report.md").read_text()
    assert "search sweep; 3 finished trials" in md and "final evaluated epochs [40, 200]" in md
    best = md.index("| b (best) | 200 | yes | 75.00 |")  # the metric in % like the other accuracies
    assert best < md.index("| a | 200 | yes | 70.00 |") < md.index("| c | 40 | no | 60.00 |")  # ranked by the metric
    front = md[md.index("Pareto front") :]
    assert "| a | 90.00 | 40.00 |" in front and "| b | 80.00 | 60.00 |" in front and "| c |" not in front
    assert "LA loss" not in md and "la 77.67" in md  # the paper's CIFAR-10-LT figures, no verdict for a sweep
    assert (exp / "report" / "plots" / "head_vs_tail_pareto.png").is_file()
    assert (exp / "report" / "report.html").is_file()


def test_missing_experiment_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert rep.main([str(tmp_path / "nope")]) == 2
    assert "no such experiment folder" in capsys.readouterr().err


def test_report_names_the_sweep_trial_each_from_sweep_variant_came_from(store: Path, tmp_path: Path) -> None:
    sources = store / "variant_sources.yaml"  # the store is shared by this module's tests: remove it after
    sources.write_text(
        yaml.safe_dump(
            {
                "elm": {
                    "sweep": "experiments/search",
                    "trial_id": "abc12",
                    "metric": "test/balanced_acc",
                    "mode": "max",
                    "value": 0.4712,
                    "chosen_on_test_split": True,
                    "values": {"loss.tau": 1.25, "loss.lam": 0.2},
                }
            },
            sort_keys=False,
        )
    )
    try:
        assert rep.main([str(store), "--out", str(tmp_path)]) == 0
    finally:
        sources.unlink()
    md = (tmp_path / "report.md").read_text()
    assert "## Variant hyperparameters taken from sweeps" in md
    assert (
        "`elm`: loss.tau = 1.25, loss.lam = 0.2 from trial `abc12` of `experiments/search` "
        "(test/balanced_acc = 0.4712, its last reported value) — chosen on the test split, so this variant's "
        "test numbers are optimistic" in md
    )


def test_sweep_without_a_few_group_puts_medium_on_the_tail_axis_and_drops_stopped_trials(tmp_path: Path) -> None:
    exp = sweep_folder(
        tmp_path,
        {
            "trial_id": ["a", "b", "c"],
            "epoch": [10, 10, 1],
            "val/balanced_acc": [0.30, 0.32, 0.20],
            "val/acc_many": [0.5, 0.4, 0.9],
            "val/acc_medium": [0.1, 0.2, 0.9],
            "config/loss.tau": [0.5, 1.5, 1.0],
        },
    )
    assert rep.main([str(exp), "--split", "val"]) == 0
    md = (exp / "report" / "report.md").read_text()
    front = md[md.index("Pareto front") :]
    assert "tail = the Medium group" in front and "| trial | Many (%) | Medium (%) |" in front
    assert "| a | 50.00 | 10.00 |" in front and "| b | 40.00 | 20.00 |" in front
    assert "| c |" not in front  # stopped after 1 of 10 epochs: would dominate both, but is not comparable


# ------------------------------------------------- the papers' epochs, one unit per table, the one best trial


def test_paper_epochs_note_says_when_runs_are_shorter_than_the_paper() -> None:
    assert pa.paper_epochs_note("cifar10_lt", [2]) == (
        "paper: 200 epochs; these runs: 2 epochs — not comparable",
        False,
    )
    assert pa.paper_epochs_note("cifar100_lt", [11, 40]) == (
        "paper: 200 epochs; these runs: 11-40 epochs — not comparable",
        False,
    )
    assert pa.paper_epochs_note("imagenet_lt", [90]) == ("paper: 90 epochs; these runs: 90 epochs", True)
    assert pa.paper_epochs_note("inaturalist2018", [30, 90])[1] is False  # the shortest shown trial decides
    assert pa.paper_epochs_note("cifar10_lt", [])[1] is False and "unknown" in pa.paper_epochs_note("cifar10_lt", [])[0]
    assert pa.paper_epochs_note("synthetic_lt", [2]) == ("", False)
    assert set(pa.PAPER_EPOCHS) == set(pa.PAPER_RESULTS)


def test_paper_rows_header_labels_a_short_run() -> None:
    stats = _stats(ce={"balanced_acc": (0.40, 0.01)})
    header, rows = pa.paper_rows(stats, ROLES, "cifar10_lt", "test/", [2])
    assert "paper: 200 epochs; these runs: 2 epochs — not comparable" in header[2]
    assert header[3].endswith("not comparable") and rows[0][2] == "72.84"
    header, _ = pa.paper_rows(stats, ROLES, "cifar10_lt", "test/", [200])
    assert "not comparable" not in " ".join(header) and "200 epochs" in header[2]


def test_ablation_report_says_its_paper_numbers_are_not_comparable(store: Path, tmp_path: Path) -> None:
    """The store's trials ran 2 epochs (a smoke run); the papers trained 200."""
    assert rep.main([str(store), "--out", str(tmp_path)]) == 0
    md = (tmp_path / "report.md").read_text()
    paper = md[md.index("## Balanced accuracy beside the papers") : md.index("## Accuracy")]
    assert paper.lower().count("paper: 200 epochs; these runs: 2 epochs — not comparable") == 2  # text, header
    assert "Paper: 200 epochs; these runs: 2 epochs — not comparable" in paper  # the paragraph, in bold
    assert "not comparable" in (tmp_path / "report.html").read_text()


SMOKE_SWEEP_CONFIG = "name: sweep\nseed: 0\ndata: {name: cifar10_lt}\nloss: {name: elm}\noptim: {epochs: %d}\n"


def test_sweep_report_labels_a_smoke_run_and_not_a_full_one(tmp_path: Path) -> None:
    for epochs, comparable in ((11, False), (200, True)):
        exp = sweep_folder(
            tmp_path / str(epochs),
            {
                "trial_id": ["a", "b"],
                "epoch": [epochs, epochs],
                "test/balanced_acc": [0.3, 0.35],
                "config/loss.tau": [0.5, 1.5],
            },
        )
        (exp / "config.yaml").write_text(SMOKE_SWEEP_CONFIG % epochs)
        assert rep.main([str(exp)]) == 0
        md = (exp / "report" / "report.md").read_text()
        assert "la 77.67" in md and f"paper: 200 epochs; these runs: {epochs} epochs" in md
        assert ("not comparable" in md) is not comparable


def markdown_tables(md: str) -> list[list[str]]:
    """The header cells of every table in a markdown document."""
    return [
        [c.strip() for c in line.strip("|").split(" | ")]
        for line, nxt in zip(md.splitlines(), md.splitlines()[1:])
        if line.startswith("| ") and nxt.startswith("|---")
    ]


IDENTIFIERS = {"variant", "seeds", "seed", "trial", "epoch", "method"}


def table_units(header: list[str]) -> set[str]:
    """Units of a table's measured columns: the first '(...)' of each header; identifier and setting columns
    (``(setting)``, 'reached epoch N') carry none. A column with no unit counts as the unit '?'."""
    units = set()
    for h in header:
        if h in IDENTIFIERS or h.endswith("(setting)") or h.startswith("reached "):
            continue
        m = re.search(r"\(([^)]*)\)", h)
        units.add((m.group(1) if m else "?").replace("%-pts", "%"))  # a difference of percentages, in points
    return units


def test_every_report_table_uses_one_unit_named_in_its_header(store: Path, tmp_path: Path) -> None:
    assert rep.main([str(store), "--out", str(tmp_path / "ablation")]) == 0
    exp = sweep_folder(
        tmp_path,
        {
            "trial_id": ["a", "b", "c"],
            "epoch": [200, 200, 40],
            "test/balanced_acc": [0.70, 0.75, 0.60],
            "test/acc_many": [0.9, 0.8, 0.7],
            "test/acc_few": [0.4, 0.6, 0.5],
            "config/loss.tau": [0.5, 1.5, 1.0],
        },
    )
    assert rep.main([str(exp)]) == 0
    docs = [(tmp_path / "ablation" / "report.md").read_text(), (exp / "report" / "report.md").read_text()]
    tables = [h for md in docs for h in markdown_tables(md)]
    assert len(tables) >= 8
    for header in tables:
        assert len(table_units(header)) <= 1 and "?" not in table_units(header), header
    assert "0.7500" not in docs[1] and "75.00" in docs[1]  # the sweep metric in % beside Many/Few in %


def test_sweep_best_trial_is_platform_best_not_the_highest_value(tmp_path: Path) -> None:
    """Trial c has the highest value, but ASHA stopped it at epoch 40 of 200: best_index picks b."""
    trials = {
        "trial_id": ["a", "b", "c"],
        "run_id": ["ra", "rb", "rc"],
        "epoch": [200, 200, 40],
        "test/balanced_acc": [0.70, 0.75, 0.90],
        "test/acc_many": [0.9, 0.8, 0.95],
        "test/acc_few": [0.4, 0.6, 0.85],
        "config/loss.tau": [0.5, 1.5, 1.0],
    }
    exp = sweep_folder(tmp_path, trials)
    (exp / "config.yaml").write_text(SMOKE_SWEEP_CONFIG % 200)
    assert rep.main([str(exp)]) == 0
    md = (exp / "report" / "report.md").read_text()
    expected = pd.DataFrame(trials).loc[best_index(pd.DataFrame(trials), "test/balanced_acc", "max", 200)]
    assert expected["trial_id"] == "b"
    assert "Best trial: `b`, test/balanced_acc = 75.00 % at epoch 200" in md
    assert (
        md.index("| b (best) | 200 | yes | 75.00 |")
        < md.index("| a | 200 | yes | 70.00 |")
        < md.index("| c | 40 | no | 90.00 |")
    )
    assert "| c (best)" not in md and "| c |" not in md[md.index("Pareto front") :]


def test_sweep_best_trial_follows_the_mode_and_the_config_epochs(tmp_path: Path) -> None:
    trials = {"trial_id": ["a", "b", "c"], "epoch": [10, 10, 10], "test/ece": [0.2, 0.1, 0.05]}
    exp = sweep_folder(tmp_path / "min", trials)
    (exp / "config.yaml").write_text(SMOKE_SWEEP_CONFIG % 10 + "tune: {metric: test/ece, mode: min}\n")
    assert rep.main([str(exp)]) == 0
    md = (exp / "report" / "report.md").read_text()
    assert "Best trial: `c`, test/ece = 0.0500 at epoch 10" in md and "| c (best) | 10 | yes | 0.0500 |" in md
    # the config says 20 epochs and no trial got there: no best trial, and the report says why
    exp = sweep_folder(tmp_path / "short", {**trials, "test/balanced_acc": [0.3, 0.4, 0.5]})
    (exp / "config.yaml").write_text(SMOKE_SWEEP_CONFIG % 20)
    assert rep.main([str(exp)]) == 0
    md = (exp / "report" / "report.md").read_text()
    assert "No best trial: no trial reached the last epoch (20)." in md and "(best)" not in md
    assert "| c | 10 | no | 50.00 |" in md


def test_geometry_is_read_from_the_projection_space_when_runs_report_it() -> None:
    """Runs since elm.metrics.geometry report {split}/emb_proj/... (pairwise spread); older ones embedding/..."""
    stats = _stats(
        logit_only={"emb_proj/spread_pairwise_medium": (0.30, 0.01), "embedding/spread_medium": (0.1, 0.0)},
        elm={"emb_proj/spread_pairwise_medium": (0.25, 0.01), "embedding/spread_medium": (0.2, 0.0)},
    )
    spread = rv.verdict(stats, ROLES, "test/")[3]
    assert spread.claim == "ELM has lower Medium-group embedding spread than LA (projections)"
    assert spread.holds is True and spread.difference == pytest.approx(0.05)  # the projections, not embedding/
    cols = rt.geometry_columns(["test/emb_backbone/spread_pairwise_few", "test/acc"], "test/")
    assert [c.key for c in cols] == [
        "emb_backbone/spread_pairwise_many",
        "emb_backbone/spread_pairwise_medium",
        "emb_backbone/spread_pairwise_few",
        "emb_backbone/separation_min",
    ]
    assert all(c.label.endswith("(1 - cos)") for c in cols)
    assert rt.geometry_columns(["test/acc"], "test/")[0].key == "embedding/spread_many"


def test_verdict_separates_paper_claims_from_hypotheses_and_compares_tail_accuracy_and_backbone_geometry() -> None:
    stats = _stats(
        logit_only={
            "balanced_acc": (0.43, 0.01),
            "acc_medium": (0.50, 0.01),
            "acc_few": (0.20, 0.02),
            "emb_backbone/spread_pairwise_few": (0.40, 0.01),
            "emb_proj/spread_pairwise_few": (0.9, 0.01),
        },
        elm={
            "balanced_acc": (0.44, 0.01),
            "acc_medium": (0.52, 0.01),
            "acc_few": (0.19, 0.02),
            "emb_backbone/spread_pairwise_few": (0.35, 0.01),
            "emb_proj/spread_pairwise_few": (0.2, 0.01),
        },
    )
    c = {x.claim: x for x in rv.verdict(stats, ROLES, "test/")}
    assert (
        c["LA loss < ELM on Medium classes"].holds is True
        and c["LA loss < ELM on Medium classes"].source == rv.ELM_PAPER
    )
    assert c["LA loss < ELM on Few classes"].holds is False
    spread = c["ELM has lower Few-group embedding spread than LA (backbone)"]  # never the untrained LA head
    assert spread.difference == pytest.approx(0.05)


def test_class_mean_std_ratio_is_scale_free() -> None:
    trials = pd.DataFrame({"test/logit_margin/class_mean_std": [2.0, 20.0], "test/logit_margin/std": [4.0, 40.0]})
    assert rv.with_derived(trials, "test/")["test/logit_margin/class_mean_std_ratio"].tolist() == [0.5, 0.5]


def test_geometry_tables_hold_one_unit_each_for_both_spaces_and_the_training_sample() -> None:
    stats = {
        "elm": {
            k: rt.Stat(0.3, 0.01, 3)
            for k in (
                "test/emb_proj/spread_pairwise_many",
                "train/emb_proj/spread_pairwise_few",
                "test/emb_backbone/var_ratio_few",
                "train/emb_backbone/spread_logsize_spearman",
            )
        }
    }
    tables = rt.geometry_tables(stats, "test/")
    titles = [t for t, _, _ in tables]
    assert titles[0].startswith("Spread in the projections") and "1 - cos" in titles[0]
    assert any(t.startswith("Within-class variance ratio in the backbone") for t in titles)
    assert titles[-1].startswith("Spearman correlation")
    first = tables[0]
    assert first[1] == ["variant", "seeds", "test Many", "train Few"] and first[2] == [
        ["elm", "3", "0.300 ± 0.010", "0.300 ± 0.010"]
    ]
