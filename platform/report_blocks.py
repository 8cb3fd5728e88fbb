"""The blocks a report is built of (headings, paragraphs, bullets, tables, images), rendered by
``platform.report.to_markdown`` / ``to_html``. In their own module so that the report's sections in other modules
(``report_posthoc``, ``report_optuna``) build the same classes when ``platform.report`` runs as ``__main__``.
"""
from __future__ import annotations

from dataclasses import dataclass
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
