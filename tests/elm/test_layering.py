"""elm/ is a plain PyTorch library: no module under it may import ray, optuna or mlflow."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = {"ray", "optuna", "mlflow"}
ELM = Path(__file__).resolve().parents[2] / "elm"


def imported_roots(source: str) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_elm_never_imports_platform_libraries() -> None:
    files = sorted(ELM.rglob("*.py"))
    assert len(files) > 10
    offenders = {str(f.relative_to(ELM)): imported_roots(f.read_text()) & (FORBIDDEN | {"platform"}) for f in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_checker_catches_an_import() -> None:
    assert imported_roots("import ray.tune\nfrom mlflow import log_metric\n") >= {"ray", "mlflow"}
