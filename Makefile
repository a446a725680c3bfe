# Two entry points for a fresh machine with Python 3.11: `make run` (the main job) and `make test`.
# Each creates .venv when needed: CPU torch first, then hookdiff with the maze and ray extras, every version
# pinned by constraints.txt (the library itself only declares ranges).
# `make test-engine` checks the library without the maze extra, as a user with numpy 2 has it.
# `make docs` adds the docs extra to .venv and builds the site into site/ (a broken link, anchor or
# a public name without a docstring fails it).
PYTHON ?= python3.11
VENV ?= .venv
ENGINE_VENV ?= .venv-engine
STAMP := $(VENV)/.hookdiff-installed
DOCS_STAMP := $(VENV)/.hookdiff-docs-installed
ENGINE_STAMP := $(ENGINE_VENV)/.hookdiff-installed
TORCH := $(shell grep -E '^torch==' constraints.txt)

.PHONY: setup run test test-engine bench lint docs
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

$(DOCS_STAMP): $(STAMP)
	$(VENV)/bin/python -m pip install -q -c constraints.txt -e ".[maze,ray,dev,docs]"
	touch $(DOCS_STAMP)

run: setup
	$(VENV)/bin/hookdiff study

test: setup
	$(VENV)/bin/python -m pytest

# tests/unit needs neither procgen nor numpy 1: they run here too.
test-engine: $(ENGINE_STAMP)
	$(ENGINE_VENV)/bin/python -m pytest tests/unit

# NO_MKDOCS_2_WARNING: mkdocs-material's banner about MkDocs 2.0 says nothing about this site.
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# Lint and formatting: CI fails on either (a `# fmt: skip` only where a table reads better, with the reason).
lint: setup
	$(VENV)/bin/ruff check src tests examples benchmarks tools
	$(VENV)/bin/ruff format --check src tests examples benchmarks tools

bench: setup
	for b in benchmarks/bench_*.py; do $(VENV)/bin/python $$b || exit 1; done
