"""The report of a finished sweep or ablation (``python -m platform.report DIR``, see ``platform.report.cli``) and
the end-of-sweep summary ``platform.tune`` writes (``platform.report.summary``).

One job per module:

- ``source``: find the experiment folder, its saved config (through ``platform.spec``) and store;
- ``runs``: load the trials from MLflow or ``trials.csv`` into a ``RunSet``;
- ``document``: the blocks of a report and their markdown / HTML rendering;
- ``build``: the whole document, from ``ablation``, ``sweep``, ``posthoc_section`` and ``optuna_section``;
- ``tables``, ``papers``, ``verdict``, ``cells``: the arithmetic, the papers' figures, the claims, the cells;
- ``plots`` (across trials), ``class_plots`` (one evaluation's per-class table), ``figures`` (saving them);
- ``summary``: ``trials.csv`` and ``summary.md`` at the end of a sweep;
- ``cli`` / ``__main__``: the command line.

The names below are re-exported lazily (importing ``platform.report.summary`` or ``class_plots`` does not import the
whole report).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "main": "cli",
    "Source": "source",
    "resolve": "source",
    "load": "source",
    "tuned_metrics": "source",
    "RunSet": "runs",
    "load_mlflow": "runs",
    "load_trials_csv": "runs",
    "artifact_file": "runs",
    "build_report": "build",
    "Block": "document",
    "Heading": "document",
    "Para": "document",
    "Bullets": "document",
    "Table": "document",
    "Image": "document",
    "table": "document",
    "to_markdown": "document",
    "to_html": "document",
    "write_report": "document",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
