"""platform.report.papers: the papers' numbers beside ours, and the note when our runs are shorter than the papers'."""

from __future__ import annotations

from platform.report import papers as pa
from tests.platform.report_fixtures import ROLES, stats_of


def test_paper_rows_put_table3_beside_ours() -> None:
    stats = stats_of(
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
    stats = stats_of(ce={"balanced_acc": (0.40, 0.01)})
    header, rows = pa.paper_rows(stats, ROLES, "cifar10_lt", "test/", [2])
    assert "paper: 200 epochs; these runs: 2 epochs — not comparable" in header[2]
    assert header[3].endswith("not comparable") and rows[0][2] == "72.84"
    header, _ = pa.paper_rows(stats, ROLES, "cifar10_lt", "test/", [200])
    assert "not comparable" not in " ".join(header) and "200 epochs" in header[2]
