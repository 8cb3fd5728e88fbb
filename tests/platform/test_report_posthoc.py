"""The report's calibration-by-group table and its link to platform.posthoc's output."""

from __future__ import annotations

from pathlib import Path

from platform.posthoc import reliability_file
from platform.report import to_markdown
from platform.report.document import Image
from platform.report.posthoc_section import calibration_blocks, posthoc_blocks
from platform.report.tables import Stat


def test_calibration_table_shows_ece_by_group_before_and_after_tau_one() -> None:
    stats = {
        "ce": {
            "test/ece": Stat(0.30, 0.01, 2),
            "test/ece_many": Stat(0.2, 0.0, 2),
            "test/ece_medium": Stat(0.6, 0.1, 2),
            "test/posthoc_tau1/ece": Stat(0.05, 0.01, 2),
            "test/posthoc_tau1/ece_many": Stat(0.04, 0.01, 2),
        }
    }
    metrics = [
        "test/ece",
        "test/ece_many",
        "test/ece_medium",
        "test/posthoc_tau1/balanced_acc",
        "test/posthoc_tau1/ece",
        "test/posthoc_tau1/ece_many",
        "test/posthoc_tau2/balanced_acc",
        "test/posthoc_tau2/ece",
    ]
    text = to_markdown(calibration_blocks(stats, metrics, "test/"))
    assert "| variant | seeds | ECE (%) | ECE Many (%) | ECE Medium (%) | tau=1 ECE (%) | tau=1 ECE Many (%) |" in text
    assert "| ce | 2 | 30.00 ± 1.00 | 20.00 ± 0.00 | 60.00 ± 10.00 | 5.00 ± 1.00 | 4.00 ± 1.00 |" in text
    assert "Few" not in text.split("\n| ce")[0].split("| variant")[1]  # an empty group has no column
    assert calibration_blocks(stats, ["test/ece"], "test/") == []  # runs from before per-group ECE


def test_posthoc_section_links_the_analysis_and_copies_each_variants_reliability_diagram(tmp_path: Path) -> None:
    exp, out = tmp_path / "exp", tmp_path / "exp" / "report"
    missing = to_markdown(posthoc_blocks(exp, out, ["ce"]))
    assert f"python -m platform.posthoc {exp}" in missing
    (exp / "posthoc" / "plots").mkdir(parents=True)
    (exp / "posthoc" / "posthoc.md").write_text("# x\n")
    (exp / "posthoc" / "plots" / reliability_file("ce")).write_bytes(b"png")
    blocks = posthoc_blocks(exp, out, ["ce", "la"])
    assert [b.path for b in blocks if isinstance(b, Image)] == [f"plots/{reliability_file('ce')}"]
    assert (out / "plots" / reliability_file("ce")).read_bytes() == b"png"
    assert "](../posthoc/posthoc.md)" in to_markdown(blocks)


def test_a_search_with_many_trials_embeds_the_first_few_diagrams_only(tmp_path: Path) -> None:
    from platform.report.posthoc_section import MAX_RELIABILITY

    exp = tmp_path / "exp"
    (exp / "posthoc" / "plots").mkdir(parents=True)
    (exp / "posthoc" / "posthoc.md").write_text("# x\n")
    groups = [f"trial t{i}" for i in range(MAX_RELIABILITY + 3)]
    for g in groups:
        (exp / "posthoc" / "plots" / reliability_file(g)).write_bytes(b"png")
    blocks = posthoc_blocks(exp, exp / "report", groups)
    assert len([b for b in blocks if isinstance(b, Image)]) == MAX_RELIABILITY
    assert "3 more reliability diagrams" in to_markdown(blocks)


def test_the_link_does_not_claim_validation_when_the_analysis_chose_on_test(tmp_path: Path) -> None:
    """An experiment without a validation split (e.g. a --smoke run): posthoc chose on test itself."""
    exp = tmp_path / "exp"
    (exp / "posthoc").mkdir(parents=True)
    (exp / "posthoc" / "posthoc.md").write_text("# x\n")
    (exp / "posthoc" / "posthoc.csv").write_text("trial,method,selected_on\na,none,test (oracle)\n")
    text = to_markdown(posthoc_blocks(exp, exp / "report", ["ce"]))
    assert "chosen on validation" not in text
    assert "chosen on test itself" in text and "upper bounds" in text
    (exp / "posthoc" / "posthoc.csv").write_text("trial,method,selected_on\na,none,val\n")
    assert "chosen on validation and read on test" in to_markdown(posthoc_blocks(exp, exp / "report", ["ce"]))


def test_calibration_text_names_the_split_the_table_is_read_on() -> None:
    stats = {"ce": {"val/ece": Stat(0.30, 0.01, 2), "val/ece_many": Stat(0.2, 0.0, 2)}}
    text = to_markdown(calibration_blocks(stats, ["val/ece", "val/ece_many"], "val/"))
    assert "over the val images" in text and "test images" not in text
