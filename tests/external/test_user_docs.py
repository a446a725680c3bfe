"""What a new user reads: every CLI option says what it does.

Every docstring example runs once per session, as a doctest item of src/hookdiff (pytest's
--doctest-modules; see pyproject.toml), not again here.
"""

from __future__ import annotations

import argparse

import pytest

from hookdiff.cli import build_parser


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
