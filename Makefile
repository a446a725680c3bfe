# Two entry points for a fresh machine with Python 3.11: `make run` (the main job) and `make test`.
# Each creates .venv when needed: CPU torch first, then hookdiff with the maze and ray extras, every version
# pinned by constraints.txt (the library itself only declares ranges).
# `make test-engine` checks the library without the maze extra, as a user with numpy 2 has it.
PYTHON ?= python3.11
VENV ?= .venv
ENGINE_VENV ?= .venv-engine
STAMP := $(VENV)/.hookdiff-installed
ENGINE_STAMP := $(ENGINE_VENV)/.hookdiff-installed
TORCH := $(shell grep -E '^torch==' constraints.txt)

.PHONY: setup run test test-engine bench lint
setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q "$(TORCH)"
	$(VENV)/bin/python -m pip install -q -c constraints.txt -e ".[maze,ray,dev]"
	touch $(STAMP)

# No maze extra, numpy 2, the newest releases our ranges allow (only torch pinned, to its CPU build).
$(ENGINE_STAMP): pyproject.toml constraints.txt
	test -x $(ENGINE_VENV)/bin/python || $(PYTHON) -m venv $(ENGINE_VENV)
	$(ENGINE_VENV)/bin/python -m pip install -q --upgrade pip
	$(ENGINE_VENV)/bin/python -m pip install -q "$(TORCH)"
	$(ENGINE_VENV)/bin/python -m pip install -q "$(TORCH)" "numpy>=2" -e ".[dev]"
	$(ENGINE_VENV)/bin/python -c "import importlib.util as u, sys; found = [m for m in ('procgen', 'gym', 'gym3') if u.find_spec(m)]; sys.exit(f'{found} installed without the maze extra: a core requirement pulls them in' if found else 0)"
	touch $(ENGINE_STAMP)

run: setup
	$(VENV)/bin/hookdiff study

test: setup
	$(VENV)/bin/python -m pytest

# tests/unit needs neither procgen nor numpy 1: they run here too.
test-engine: $(ENGINE_STAMP)
	$(ENGINE_VENV)/bin/python -m pytest tests/unit

lint: setup
	$(VENV)/bin/ruff check src tests examples benchmarks

bench: setup
	for b in benchmarks/bench_*.py; do $(VENV)/bin/python $$b || exit 1; done
