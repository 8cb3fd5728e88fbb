"""Table cells of a report: numbers as text, one convention for missing values ("—")."""

from __future__ import annotations

from typing import Any

import pandas as pd


def fmt_metric(v: Any) -> str:
    """A metric that is not a percentage, 4 decimals."""
    return "—" if v is None or pd.isna(v) else f"{float(v):.4f}"


def pct(v: Any) -> str:
    """A fraction in %, 2 decimals."""
    return "—" if v is None or pd.isna(v) else f"{100 * float(v):.2f}"


def fmt_int(v: Any) -> str:
    return "—" if v is None or pd.isna(v) else str(int(v))


def fmt_value(v: Any) -> str:
    """A setting: floats to 4 significant digits, anything else as it is."""
    return f"{v:.4g}" if isinstance(v, float) else str(v)
