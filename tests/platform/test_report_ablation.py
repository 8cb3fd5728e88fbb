"""The report of an ablation, from a tiny MLflow store written without Ray (report_fixtures.write_ablation_store):
final-epoch tables, the papers' numbers, the verdict, plots, variants taken from sweeps, one unit per table."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from platform import report as rep
from tests.platform.report_fixtures import SEARCH_TRIALS, sweep_folder, write_ablation_store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """report_fixtures.write_ablation_store's folder, shared by this module's tests."""
    return write_ablation_store(tmp_path_factory.mktemp("exp"))


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


def test_ablation_report_says_its_paper_numbers_are_not_comparable(store: Path, tmp_path: Path) -> None:
    """The store's trials ran 2 epochs (a smoke run); the papers trained 200."""
    assert rep.main([str(store), "--out", str(tmp_path)]) == 0
    md = (tmp_path / "report.md").read_text()
    paper = md[md.index("## Balanced accuracy beside the papers") : md.index("## Accuracy")]
    assert paper.lower().count("paper: 200 epochs; these runs: 2 epochs — not comparable") == 2  # text, header
    assert "Paper: 200 epochs; these runs: 2 epochs — not comparable" in paper  # the paragraph, in bold
    assert "not comparable" in (tmp_path / "report.html").read_text()


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
    exp = sweep_folder(tmp_path, SEARCH_TRIALS)
    assert rep.main([str(exp)]) == 0
    docs = [(tmp_path / "ablation" / "report.md").read_text(), (exp / "report" / "report.md").read_text()]
    tables = [h for md in docs for h in markdown_tables(md)]
    assert len(tables) >= 8
    for header in tables:
        assert len(table_units(header)) <= 1 and "?" not in table_units(header), header
    assert "0.7500" not in docs[1] and "75.00" in docs[1]  # the sweep metric in % beside Many/Few in %
