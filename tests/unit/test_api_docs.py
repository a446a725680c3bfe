"""docs/api.md is generated from the docstrings and current; the engine's docstring examples run."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]

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


def _gen_api():
    spec = importlib.util.spec_from_file_location("gen_api", ROOT / "tools" / "gen_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_doctests(name: str) -> doctest.TestResults:
    """Run every ``>>>`` example of module ``name`` (with torch, np and nn at hand)."""
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    finder = doctest.DocTestFinder()
    for test in finder.find(module, name, extraglobs={"torch": torch, "np": np, "nn": nn}):
        runner.run(test)
    return runner.summarize(verbose=False)


def test_api_reference_is_current():
    gen = _gen_api()
    text = gen.render()
    assert (ROOT / "docs" / "api.md").read_text(encoding="utf-8") == text, (
        "docs/api.md is out of date: run python tools/gen_api.py"
    )
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/api.md" in readme


def test_every_engine_name_has_a_section_with_an_example():
    import hookdiff
    import hookdiff.analysis
    import hookdiff.testing
    import hookdiff.tiny

    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    missing = text.split("## Names without an example yet", 1)[1]
    for module in (hookdiff, hookdiff.analysis, hookdiff.testing, hookdiff.tiny, hookdiff.errors):
        for name in module.__all__:
            assert f"### `{module.__name__}.{name}`" in text, name
            obj = getattr(module, name)
            if inspect.isfunction(obj) or inspect.isclass(obj) and not issubclass(obj, Exception):
                assert f"`{module.__name__}.{name}`" not in missing, f"{name} has no example"


@pytest.mark.parametrize("name", ENGINE_MODULES)
def test_docstring_examples_run(name):
    result = run_doctests(name)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed"
