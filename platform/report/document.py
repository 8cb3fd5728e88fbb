"""The report's document model: blocks (headings, paragraphs, bullets, tables, images) and their rendering to
GitHub markdown and to one self-contained HTML page.

Every section of a report (``platform.report.ablation``, ``sweep``, ``posthoc_section``, ``optuna_section``,
``platform.confirm``) builds these classes; ``platform.report.cli`` renders them.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Image:
    path: str  # relative to the report folder
    alt: str


Block = Heading | Para | Bullets | Table | Image


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    return Table(tuple(header), tuple(tuple(r) for r in rows))


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The lines of a GitHub markdown table (no blank line after it); pipes in cells escaped."""
    cell = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    return [
        "| " + " | ".join(cell(h) for h in header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *["| " + " | ".join(cell(c) for c in r) + " |" for r in rows],
    ]


def to_markdown(blocks: Sequence[Block]) -> str:
    """Render blocks as GitHub markdown (pipes in cells escaped)."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Para):
            out += [b.text, ""]
        elif isinstance(b, Bullets):
            out += [f"- {item}" for item in b.items] + [""]
        elif isinstance(b, Table):
            out += markdown_table(b.header, b.rows) + [""]
        elif isinstance(b, Image):
            out += [f"![{b.alt}]({b.path})", ""]
    return "\n".join(out)


def _inline_html(text: str) -> str:
    escaped = html.escape(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
    "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
    "td:first-child,th:first-child{text-align:left}img{max-width:100%}code{background:#f3f3f3}"
)


def to_html(blocks: Sequence[Block], title: str, root: Path | None = None) -> str:
    """Render blocks as one HTML page; images are embedded as base64 PNG when ``root`` (the folder image paths are
    relative to) holds them, else linked."""
    body: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{_inline_html(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            body.append(f"<p>{_inline_html(b.text)}</p>")
        elif isinstance(b, Bullets):
            body.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{_inline_html(h)}</th>" for h in b.header)
            rows = "".join("<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in r) + "</tr>" for r in b.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(b, Image):
            src = html.escape(b.path)
            if root is not None and (root / b.path).is_file():
                src = "data:image/png;base64," + base64.b64encode((root / b.path).read_bytes()).decode("ascii")
            body.append(
                f'<figure><img src="{src}" alt="{html.escape(b.alt)}"><figcaption>'
                f"{html.escape(b.alt)}</figcaption></figure>"
            )
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_report(blocks: Sequence[Block], out: Path, title: str) -> tuple[Path, Path]:
    """Write ``out/report.md`` and ``out/report.html`` (images under ``out`` embedded); returns both paths."""
    md, page = out / "report.md", out / "report.html"
    md.write_text(to_markdown(blocks))
    page.write_text(to_html(blocks, title, root=out))
    return md, page
