"""make_plan edits the raw mapping, then validates once; it and --smoke find a dataset's folders and size knobs
through the markers of its factory's signature (``Folder()``, ``Size(role)``), not through their names: a dataset
registered here names them unusually."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
import yaml

from elm.config import from_dict
from elm.data import load_data
from elm.registry import DATASETS, Folder, Size
from platform.smoke import SMOKE_IMAGE_SIZE, SMOKE_VAL_PER_CLASS, smoke
from platform.tune import make_plan
from tests.conftest import tiny_raw


def probe_data(
    *,
    pictures: Annotated[str, Folder()] = "pics",
    label_lists: Annotated[str, Folder()] | None = None,
    tag: str = "not/a/folder",
    holdout: Annotated[int, Size("val_per_class")] = 0,
    side: Annotated[int, Size("image_size")] = 8,
    val_per_class: int = 100,  # the usual name, but unmarked: --smoke leaves it alone
) -> Any:
    """A synthetic dataset with unusually named folder and size arguments (the folders are never read)."""
    return load_data("synthetic_lt", {"val_per_class": holdout, "image_size": max(4, side)})


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(DATASETS._entries, "probe_data", probe_data)
    return "probe_data"


def test_folder_marked_arguments_become_absolute_whatever_their_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, probe: str
) -> None:
    monkeypatch.chdir(tmp_path)
    raw = tiny_raw(
        data={"name": probe, "pictures": "../imgs", "label_lists": "lists", "tag": "rel/x"},
        search={"spaces": ["elm_joint"]},
        tune={"searcher": "optuna", "num_samples": 2},
    )
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(raw))
    plan = make_plan("exp.yaml", {"data.label_lists": "other"}, out=str(tmp_path / "out"), check_data=False)
    assert plan.cfg.data.kwargs == {
        "pictures": str((tmp_path / "../imgs").resolve()),
        "label_lists": str(tmp_path / "other"),
        "tag": "rel/x",
    }


def test_smoke_shrinks_the_size_marked_arguments_whatever_their_names(probe: str) -> None:
    full = from_dict(tiny_raw(data={"name": probe, "holdout": 50, "side": 224, "val_per_class": 100}))
    assert smoke(full).data.kwargs == {"holdout": SMOKE_VAL_PER_CLASS, "side": SMOKE_IMAGE_SIZE, "val_per_class": 100}


def test_every_edit_applies_to_the_raw_mapping_and_the_result_is_validated_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import platform.plan as plan_module

    calls: list[dict] = []
    real = plan_module.from_dict
    monkeypatch.setattr(plan_module, "from_dict", lambda raw: calls.append(raw) or real(raw))
    raw = tiny_raw(
        search={"spaces": ["elm_joint"]},
        tune={"searcher": "optuna", "num_samples": 8},
        optim={"epochs": 30, "warmup_epochs": 0, "milestones": []},
    )
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(raw))
    plan = make_plan(
        str(tmp_path / "exp.yaml"), {"optim.epochs": 5}, smoke_run=True, out=str(tmp_path / "o"), check_data=False
    )
    assert len(calls) == 1
    assert plan.cfg.optim.epochs == 5 and plan.spec.tune.num_samples == 2  # --set wins over --smoke, which shrank
