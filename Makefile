# The two commands of the README. Both set up .venv first (scripts/setup.sh is a no-op when it is current).
PY := .venv/bin/python
CONFIG ?= ablations/cifar10.yaml
ARGS ?= --smoke --set data.root=../shared/data

.PHONY: setup run test test-fast
setup:
	@bash scripts/setup.sh

run: setup  ## the main job: a sweep through Ray Tune + Optuna, tracked in MLflow
	$(PY) -m platform.tune $(CONFIG) $(ARGS)

test-fast: setup
	$(PY) -m pytest -q

test: setup  ## the whole suite: fast unit tests, then the end-to-end ones with real Ray/Optuna/MLflow
	$(PY) -m pytest -q
	$(PY) -m pytest -q -m slow
