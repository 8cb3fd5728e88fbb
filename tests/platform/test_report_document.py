"""platform.report.document: the blocks of a report rendered to markdown and to one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

from platform import report as rep


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
