# The two commands of the README. Both set up .venv first (scripts/setup.sh is a no-op when it is current).
PY := .venv/bin/python
CONFIG ?= ablations/cifar10.yaml
ARGS ?= --smoke --set data.root=../shared/data
# Each `make run` writes a new folder (config stem + start time), so it can run again; OUT=DIR picks one instead
# (an existing sweep there is refused: add ARGS='... --resume' to continue it).
OUT ?= experiments/$(basename $(notdir $(CONFIG)))-$(shell date +%Y%m%d-%H%M%S)

.PHONY: setup run lint test test-fast test-browser
setup:
	@bash scripts/setup.sh

run: setup  ## the main job: a sweep through Ray Tune + Optuna, tracked in MLflow
	$(PY) -m platform.tune $(CONFIG) $(ARGS) --out $(OUT)

test-fast: setup
	$(PY) -m pytest -q

lint: setup  ## ruff's format check and lint (pycodestyle, pyflakes, bugbear) over the tree, mypy over elm/ (pyproject.toml)
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(PY) -m mypy

test: setup lint  ## lint, then the whole suite: fast unit tests, the end-to-end ones with real Ray/Optuna/MLflow, then the browser ones
	$(PY) -m pytest -q
	$(PY) -m pytest -q -m slow
	@$(MAKE) --no-print-directory test-browser

test-browser: setup  ## the MLflow UI in headless chromium (apt-installs chromium + chromium-driver if missing)
	bash scripts/install_browser.sh
	$(PY) -m pytest -q -m browser
