# Two entry points for a fresh machine with Python 3.11: `make run` (the main job) and `make test`.
# Each creates .venv (CPU torch pinned first, so nothing pulls a CUDA build) when needed.
PYTHON ?= python3.11
VENV ?= .venv
STAMP := $(VENV)/.hookdiff-installed

.PHONY: setup run test bench lint
setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q torch==2.13.0
	$(VENV)/bin/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

run: setup
	$(VENV)/bin/hookdiff study

test: setup
	$(VENV)/bin/python -m pytest

lint: setup
	$(VENV)/bin/ruff check src tests examples benchmarks

bench: setup
	for b in benchmarks/bench_*.py; do $(VENV)/bin/python $$b || exit 1; done
