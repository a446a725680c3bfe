"""What a new user reads: every docstring example runs, and every CLI option says what it does."""

from __future__ import annotations

import argparse
import doctest
import importlib
import pkgutil

import numpy as np
import pytest
import torch
from torch import nn

import hookdiff
from hookdiff.agent import ImpalaPolicy
from hookdiff.cli import build_parser
from hookdiff.maze import sample_mazes

#: Every hookdiff module with docstring examples (the maze ones need procgen, installed here).
MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(hookdiff.__path__, "hookdiff.")
    if not m.name.startswith("hookdiff.study.")  # examples there run the whole study
)


#: What the maze modules' examples take as given (docs/api.md says so in its header).
_AGENT_GLOBS = {
    "ImpalaPolicy": ImpalaPolicy,
    "policy": ImpalaPolicy(),
    "sample_mazes": sample_mazes,
}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    globs = {"torch": torch, "np": np, "nn": nn, "hookdiff": hookdiff, **_AGENT_GLOBS}
    for test in doctest.DocTestFinder().find(module, name, extraglobs=globs):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed"


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_cli_option_has_help_and_shows_its_default(command):
    parser = _subcommands()[command]
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = action.option_strings[-1] if action.option_strings else action.dest
        assert action.help, f"hookdiff {command} {name} has no help"
        if action.option_strings and action.nargs != 0:  # an option taking a value
            shown = formatter._expand_help(action)
            assert "(default: " in shown, f"hookdiff {command} {name} does not show its default"
