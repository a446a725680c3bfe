"""The documentation: every public module has an API page, the README's example runs, and the engine
modules' docstring examples run exactly once per pytest session.

The site itself is built by ``make docs`` (``mkdocs build --strict``, in CI); these checks need
neither mkdocs nor procgen, so they run in ``make test-engine`` too.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import importlib.util
import inspect
import pkgutil
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn

import hookdiff

ROOT = Path(__file__).resolve().parents[2]
API_DOCS = ROOT / "docs" / "api"

#: Modules whose examples need neither procgen nor the shipped agent's environment.
ENGINE_MODULES = (
    "hookdiff.hooks",
    "hookdiff.sweeps",
    "hookdiff.errors",
    "hookdiff.tiny",
    "hookdiff.testing",
    "hookdiff.contract",
    "hookdiff.ops",
    "hookdiff.segments",
    "hookdiff._config",
    "hookdiff.analysis._attrs",
    "hookdiff.analysis.breakpoints",
    "hookdiff.analysis.heap",
    "hookdiff.analysis.walk",
    "hookdiff.analysis.linear",
    "hookdiff.analysis.nonlinearity",
    "hookdiff.analysis.patterns",
)

#: The public modules of the engine, whose every function and class shows a runnable example.
ENGINE_API = (
    "hookdiff",
    "hookdiff.analysis",
    "hookdiff.testing",
    "hookdiff.tiny",
    "hookdiff.errors",
)

_DIRECTIVE = re.compile(r"^:::\s+([\w.]+)\s*$", re.MULTILINE)


def public_modules() -> list[str]:
    """``hookdiff`` and every module or subpackage directly under it whose name is public."""
    names = pkgutil.iter_modules(hookdiff.__path__)
    return ["hookdiff", *sorted(f"hookdiff.{m.name}" for m in names if not m.name.startswith("_"))]


def documented() -> set[str]:
    """Every object named by a ``::: name`` block of docs/api/*.md."""
    return {m for page in API_DOCS.glob("*.md") for m in _DIRECTIVE.findall(page.read_text())}


def plugin_fixtures() -> list[str]:
    """The functions of hookdiff.testing decorated as pytest fixtures (``@_fixture``, which is
    ``pytest.fixture`` where pytest is installed), read from the source."""
    tree = ast.parse(Path(inspect.getfile(importlib.import_module("hookdiff.testing"))).read_text())
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any(
            ast.unparse(d).startswith(("pytest.fixture", "_fixture")) for d in node.decorator_list
        )
    ]


def run_doctests(name: str) -> doctest.TestResults:
    """Run every ``>>>`` example of module ``name`` as pytest's doctest items would.

    The globals are the root conftest's ``doctest_namespace`` and the option flags those of
    ``[tool.pytest.ini_options]``, so an example passes here exactly when it passes there.
    """
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    globs = {"torch": torch, "np": np, "nn": nn, "xr": xr}
    for test in doctest.DocTestFinder().find(module, name, extraglobs=globs):
        runner.run(test)
    return runner.summarize(verbose=False)


def collected_as_doctests(session: pytest.Session, name: str) -> bool:
    """Whether this session already runs module ``name``'s examples as doctest items."""
    for item in session.items:
        test = getattr(item, "dtest", None)
        if isinstance(test, doctest.DocTest) and test.globs.get("__name__") == name:
            return True
    return False


def test_every_public_module_has_an_api_page():
    missing = sorted(set(public_modules()) - documented())
    assert missing == [], f"add a '::: name' block to docs/api/ for {missing}"


def test_api_blocks_name_modules_that_exist():
    for name in documented():
        module, _, attr = name.rpartition(".")
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            assert hasattr(importlib.import_module(module), attr), name


def test_every_plugin_fixture_is_in_the_api_docs():
    fixtures = plugin_fixtures()
    assert "hookdiff_no_leaked_hooks" in fixtures
    missing = [f for f in fixtures if f"hookdiff.testing.{f}" not in documented()]
    assert missing == [], (
        f"add a '::: hookdiff.testing.NAME' block to docs/api/testing.md: {missing}"
    )


def test_every_engine_name_has_a_docstring_with_an_example():
    for module_name in ENGINE_API:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj) or inspect.isclass(obj) and not issubclass(obj, Exception):
                assert ">>>" in (obj.__doc__ or ""), f"{module_name}.{name} has no example"


def test_readme_example_runs_and_links_the_docs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150, "the README stays short: move detail into docs/"
    assert "make run" in readme and "make test" in readme
    for target in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / target).exists(), f"README links a missing page: {target}"
    assert "docs/api/index.md" in readme
    blocks = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    assert len(blocks) == 1, "the README shows one engine example"
    torch.manual_seed(0)
    exec(compile(blocks[0], "README.md", "exec"), {"__name__": "readme_example"})


@pytest.mark.parametrize("name", ENGINE_MODULES)
def test_docstring_examples_run(name, request):
    if collected_as_doctests(request.session, name):
        pytest.skip("run once, as doctest items of this session (--doctest-modules)")
    result = run_doctests(name)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed"


def test_the_site_reads_the_source_docstrings_as_written():
    """The griffe extension of mkdocs.yml: its examples (needs the docs extra)."""
    pytest.importorskip("griffe")
    spec = importlib.util.spec_from_file_location(
        "griffe_hookdiff", ROOT / "tools" / "griffe_hookdiff.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    runner = doctest.DocTestRunner()
    for test in doctest.DocTestFinder().find(module, "griffe_hookdiff"):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted >= 2 and result.failed == 0
