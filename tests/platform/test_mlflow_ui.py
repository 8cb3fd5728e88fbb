"""The MLflow UI over an ablation's store in a real headless browser: runs listed, grouped by variant, margins shown.

The store is written without Ray: the platform's own ``MlflowTracker`` (built by ``make_tracker`` from
``ablations/smoke_ablation.yaml``) is driven with fake trials, 4 variants x 2 seeds x 2 epochs. Then ``mlflow server``
serves it on 127.0.0.1 and Debian's chromium (through chromedriver and Selenium) reads it back.

    make test-browser                       # installs chromium + chromium-driver if missing, then pytest -m browser
    ELM_SCREENSHOT_DIR=/tmp/shots pytest -m browser tests/platform/test_mlflow_ui.py   # keep the screenshots

Screenshots go to each test's tmp dir, and also to ``$ELM_SCREENSHOT_DIR`` when it is set. All traffic stays on
127.0.0.1: the browser resolves no other host, and MLflow's telemetry is off.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest
from mlflow.tracking import MlflowClient
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from platform.tune import make_plan, make_tracker
from tests.conftest import REPO_ROOT
from tests.platform.servers import mlflow_server
from tests.platform.test_tracking import FakeTrial

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ABLATION = REPO_ROOT / "ablations" / "smoke_ablation.yaml"
SWEEP = "smoke_ablation"
VARIANTS = ("ce", "logit_only", "embedding_only", "elm")
SEEDS = (0, 1)
EPOCHS = (1, 2)
MARGIN_METRICS = ("test/logit_margin/mean", "test/embedding/spread_few")
SERVER_START_S = 150.0  # a cold `mlflow server` takes 10-40 s on a 2-core box, and over 90 s when it is overloaded
UI_WAIT_S = 60.0  # explicit waits on the React app
SCREENSHOT_ENV = "ELM_SCREENSHOT_DIR"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # nothing leaves 127.0.0.1
    "--window-size=1600,1000",
)


@dataclass(frozen=True)
class Store:
    uri: str
    experiment_id: str
    variant_of: dict[str, str]  # run name -> variant
    run_ids: dict[str, str]  # run name -> MLflow run id


def margin_mean(variant: str, seed: int, epoch: int) -> float:
    """A made-up test/logit_margin/mean that prints exactly (a sum of powers of two)."""
    return VARIANTS.index(variant) * 0.25 + seed * 0.125 + epoch * 0.03125


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """The MLflow store of a finished smoke ablation, written by the platform's tracker without Ray."""
    out = tmp_path_factory.mktemp("ablation")
    plan = make_plan(str(ABLATION), {}, out=str(out), check_data=False)
    assert tuple(plan.variants) == VARIANTS and tuple(plan.spec.ablation.seeds) == SEEDS
    tracker = make_tracker(plan)
    tracker.setup()
    trials: list[FakeTrial] = []
    for variant in VARIANTS:
        for seed in SEEDS:
            trial = FakeTrial(f"5e1f0_{len(trials):05d}", {"variant": variant, "seed": seed})
            trials.append(trial)
            tracker.on_trial_start(0, trials, trial)
            for epoch in EPOCHS:
                result = {
                    "epoch": epoch,
                    "training_iteration": epoch,
                    "train/loss": 2.0 / epoch,
                    "test/balanced_acc": 0.25 + 0.0625 * epoch + 0.03125 * VARIANTS.index(variant),
                    "test/logit_margin/mean": margin_mean(variant, seed, epoch),
                    "test/embedding/spread_few": 0.5 - 0.0625 * epoch,
                }
                tracker.on_trial_result(0, trials, trial, result)
            tracker.on_trial_complete(0, trials, trial)
            trial.status = "TERMINATED"
    tracker.on_experiment_end(trials)

    client = MlflowClient(tracker.tracking_uri)
    exp_id = client.get_experiment_by_name(tracker.experiment).experiment_id
    runs = client.search_runs([exp_id], filter_string="tags.`elm.role` = 'trial'")
    assert len(runs) == len(VARIANTS) * len(SEEDS)
    return Store(
        uri=tracker.tracking_uri,
        experiment_id=exp_id,
        variant_of={r.info.run_name: r.data.tags["variant"] for r in runs},
        run_ids={r.info.run_name: r.info.run_id for r in runs},
    )


@pytest.fixture(scope="module")
def mlflow_ui(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlflow server`` over the store on 127.0.0.1:<free port>, once /health answers 200; yields its base URL and
    always stops it (its own process group: the server and the uvicorn worker it forks, nothing else)."""
    workdir = tmp_path_factory.mktemp("mlflow_server")
    with mlflow_server(workdir, store.uri, start_s=SERVER_START_S, only_200=True) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            pytest.fail(f"{path} is missing: run `bash scripts/install_browser.sh` (apt: chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium_profile')}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@contextlib.contextmanager
def screenshot(driver: WebDriver, tmp_path: Path, name: str) -> Iterator[None]:
    """Save ``<name>.png`` on the way out, whether the block passed or failed (a failure's picture helps most)."""
    try:
        yield
    finally:
        path = tmp_path / f"{name}.png"
        if driver.save_screenshot(str(path)) and os.environ.get(SCREENSHOT_ENV):
            dest = Path(os.environ[SCREENSHOT_ENV])
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, dest / path.name)


def wait_until(driver: WebDriver, what: str, condition: Callable[[WebDriver], object]) -> object:
    """WebDriverWait with a message that says what never showed up, and the page text at that point."""
    try:
        return WebDriverWait(driver, UI_WAIT_S, poll_frequency=0.5, ignored_exceptions=(WebDriverException,)).until(
            condition
        )
    except TimeoutException:
        body = driver.find_element(By.TAG_NAME, "body").text
        pytest.fail(
            f"timed out after {UI_WAIT_S:.0f} s waiting for {what} at {driver.current_url}; page text:\n{body[:3000]}"
        )


def close_assistant_panel(driver: WebDriver) -> None:
    """The MLflow Assistant side panel opens on a fresh profile; close it so the screenshots show the table."""
    close = "button[data-component-id='mlflow.assistant.chat_panel.close']"
    for button in driver.find_elements(By.CSS_SELECTOR, close):
        if button.is_displayed():
            button.click()


RUN_NAME_CELLS = "[role='gridcell'][col-id='attributes.`Run Name`']"
GROUP_PREFIX = "Group: "


def run_name_column(driver: WebDriver) -> list[str]:
    """The Run Name column of the runs table, top to bottom: run names, and ``Group: <value>`` for group headers."""
    cells = []
    for cell in driver.find_elements(By.CSS_SELECTOR, RUN_NAME_CELLS):
        row = cell.find_element(By.XPATH, "./ancestor::*[@row-index][1]")
        header = cell.find_elements(By.XPATH, f".//*[starts-with(normalize-space(text()), '{GROUP_PREFIX}')]")
        text = (header[0] if header else cell).get_attribute("textContent") or ""
        cells.append((int(row.get_attribute("row-index")), text.strip()))
    return [text for _, text in sorted(cells)]


def groups_in(column: list[str], run_names: set[str]) -> dict[str, str]:
    """run name -> the group header it sits under, for those of ``run_names`` that sit under one."""
    out, group = {}, None
    for text in column:
        if text.startswith(GROUP_PREFIX):
            group = text.removeprefix(GROUP_PREFIX)
        elif text in run_names and group is not None:
            out[text] = group
    return out


def test_runs_are_listed_and_grouped_by_variant(
    store: Store, mlflow_ui: str, browser: WebDriver, tmp_path: Path
) -> None:
    names = set(store.variant_of)
    with screenshot(browser, tmp_path, "runs_grouped_by_variant"):
        browser.get(f"{mlflow_ui}/#/experiments/{store.experiment_id}/runs")
        wait_until(browser, "the runs table", lambda d: d.find_elements(By.CSS_SELECTOR, RUN_NAME_CELLS))
        close_assistant_panel(browser)

        # Group by the `variant` tag through the toolbar's "Group by" menu.
        group_by = wait_until(
            browser,
            "the 'Group by' button",
            lambda d: next(
                (
                    b
                    for b in d.find_elements(By.XPATH, "//button[contains(normalize-space(.), 'Group by')]")
                    if b.is_displayed()
                ),
                None,
            ),
        )
        group_by.click()
        item = wait_until(
            browser,
            "the tag 'variant' in the 'Group by' menu",
            lambda d: next(
                (
                    e
                    for e in d.find_elements(
                        By.XPATH, "//*[@role='menu']//*[@role='menuitemcheckbox'][normalize-space(.)='variant']"
                    )
                    if e.is_displayed()
                ),
                None,
            ),
        )
        item.click()
        browser.switch_to.active_element.send_keys(Keys.ESCAPE)  # close the menu
        wait_until(
            browser,
            "the group-by button to read 'Group by: variant'",
            lambda d: d.find_elements(By.XPATH, "//button[contains(normalize-space(.), 'Group by: variant')]"),
        )

        # One group header per variant, and under each exactly its two seeds' trial runs.
        wait_until(
            browser,
            "a group per variant with all trial runs under it",
            lambda d: set(groups_in(run_name_column(d), names)) == names,
        )
        column = run_name_column(browser)
        headers = [t.removeprefix(GROUP_PREFIX) for t in column if t.startswith(GROUP_PREFIX)]
        assert sorted(headers) == sorted(VARIANTS), column  # the parent run has no variant: "Additional runs"
        assert groups_in(column, names) == store.variant_of, column
        assert sorted(t for t in column if t in names) == sorted(names), column  # each run listed once
        for name in names:  # and the names are what a reader sees, not just DOM text
            assert browser.find_elements(By.XPATH, f"//a[normalize-space(.)='{name}']"), name


def test_a_run_page_shows_the_margin_statistics(
    store: Store, mlflow_ui: str, browser: WebDriver, tmp_path: Path
) -> None:
    name = f"{SWEEP}-trial=5e1f0_00007"  # the last trial: elm, seed 1
    assert store.variant_of[name] == "elm"
    with screenshot(browser, tmp_path, "run_page_margins"):
        browser.get(f"{mlflow_ui}/#/experiments/{store.experiment_id}/runs/{store.run_ids[name]}")
        wait_until(browser, f"the run page of {name}", lambda d: name in d.find_element(By.TAG_NAME, "body").text)
        close_assistant_panel(browser)
        for metric in MARGIN_METRICS:
            wait_until(
                browser,
                f"metric {metric} on the run page",
                lambda d, m=metric: d.find_elements(By.XPATH, f"//*[normalize-space(text())='{m}']"),
            )
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "Metrics (4)" in body, body[:3000]
        # The latest (epoch 2) value of the logit margin mean, on the same table row as its name.
        row = browser.find_element(
            By.XPATH, "//*[normalize-space(text())='test/logit_margin/mean']/ancestor::*[@role='row' or self::tr][1]"
        )
        assert row.text.split()[-1] == str(margin_mean("elm", 1, EPOCHS[-1])), row.text
