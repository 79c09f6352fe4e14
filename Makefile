# Two commands do all the set-up on a fresh machine:
#   make run    - install into .venv and run the demo: embedded broker, simulator, daemon
#   make test   - install into .venv (with dev extras) and run the whole test suite
# make daemon runs the real daemon against the broker in config/edge.yaml.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config/edge.yaml
# An independent Sparkplug B edge node for the tests (Eclipse Tahu's JavaScript libraries).
NODE_DEPS := tests/support/sparkplug_node/node_modules/.installed

.PHONY: run daemon test lint bench install dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The compiled detection models (setup.py) are rebuilt whenever a source they take code or
# types from changes (edge/detection/native.py's stale() watches the same files).
COMPILED_SOURCES := $(wildcard edge/detection/*.py) edge/records.py

$(VENV)/.installed: pyproject.toml setup.py $(COMPILED_SOURCES) | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,demo]'
	@$(BIN)/python -c "from edge.detection.native import build; print('detection models:', build())"
	touch $@

$(NODE_DEPS): tests/support/sparkplug_node/package-lock.json
	cd tests/support/sparkplug_node && npm ci --no-audit --no-fund --loglevel=error
	touch $@

install dev: $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/edge-gateway demo

daemon: $(VENV)/.installed
	$(BIN)/edge-gateway run --config $(CONFIG)

test: $(VENV)/.installed $(NODE_DEPS)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(VENV)/.installed
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/sync.py
	$(BIN)/python bench/detection.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache build edge/detection/*.so
