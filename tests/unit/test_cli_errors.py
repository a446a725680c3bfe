"""User mistakes on the command line: one short message on stderr, exit status 2, no traceback."""

from __future__ import annotations

import re

import pytest

from hookdiff.cli import main
from hookdiff.errors import CheckpointError, ConfigError, UnknownMazeSpecError


def _fails_cleanly(capsys, *argv: str) -> str:
    """Run ``hookdiff argv``; check exit 2 and one line on stderr; return that line."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert "Traceback" not in err + out
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("hookdiff"), err
    return lines[0]


def _suggestions(message: str) -> list[str]:
    return re.findall(r"'([^']+)'", message.split("closest:")[1])


def test_checkpoint_that_is_not_a_checkpoint(capsys, tmp_path):
    bad = tmp_path / "some.txt"
    bad.write_text("not a checkpoint")
    line = _fails_cleanly(capsys, "study", "--checkpoint", str(bad), "--quick")
    assert line.startswith("hookdiff study: error:") and "some.txt" in line


def test_unknown_maze_spec_lists_the_valid_specs(capsys):
    line = _fails_cleanly(capsys, "study", "--maze-spec", "nope")
    assert "--maze-spec" in line and "'nope' is not a maze spec" in line
    assert "'eval-decision-square'" in line and "KeyError" not in line
    line = _fails_cleanly(capsys, "study", "--maze-spec", "eval-decision-squar")
    assert _suggestions(line)[0] == "eval-decision-square"
    line = _fails_cleanly(capsys, "study", "--maze-spec", "vanilla-hard")
    assert "expected a spec with require_decision_square" in line
    line = _fails_cleanly(capsys, "study", "--vector-spec", "vanila-hard")
    assert "--vector-spec" in line and _suggestions(line)[0] == "vanilla-hard"


def test_misspelled_hook_suggests_the_right_one_not_itself(capsys):
    typo = "embedder.block2.res1.resad_out"
    line = _fails_cleanly(capsys, "study", "--hook", typo)
    assert "--hook" in line
    suggested = _suggestions(line)
    assert suggested[0] == "embedder.block2.res1.resadd_out" and typo not in suggested
    line = _fails_cleanly(capsys, "study", "--later-candidates", f"embedder.fc_out,{typo}")
    assert "--later-candidates" in line and typo not in _suggestions(line)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["study", "--n-mazes", "abc"], "argument --n-mazes: expected an int, got 'abc'"),
        (["study", "--n-mazes", "0"], "argument --n-mazes: expected an int >= 1"),
        (["study", "--ts", "1,x"], "argument --ts: expected a float, got 'x'"),
        (["study", "--vectors-from", "pair"], "closest: 'pairs'"),
        (["study", "--rollout-ts", "7"], "rollout_ts = (7.0,) (--rollout-ts): expected a subset"),
        (["train", "--max-minutes", "-1"], "argument --max-minutes: expected a number >= 0"),
        (["eval", "--n-mazes", "1.5"], "argument --n-mazes: expected an int, got '1.5'"),
        (["stuy"], "invalid choice: 'stuy'"),
        (["study", "--no-such-option"], "unrecognized arguments: --no-such-option"),
    ],
)
def test_bad_options(capsys, argv, expected):
    assert expected in _fails_cleanly(capsys, *argv)


def test_missing_files_and_bad_config_files(capsys, tmp_path):
    line = _fails_cleanly(capsys, "eval", "--checkpoint", str(tmp_path / "none.pt"))
    assert "checkpoint file not found" in line
    assert "study.nc" in _fails_cleanly(capsys, "plot", str(tmp_path))
    bad = tmp_path / "c.json"
    bad.write_text('{"n_maze": 3}')
    line = _fails_cleanly(capsys, "study", "--config", str(bad))
    assert "'n_maze'" in line and "closest: 'n_mazes'" in line
    bad.write_text("[1, 2]")
    assert "must hold a JSON object" in _fails_cleanly(capsys, "study", "--config", str(bad))


def test_debug_shows_the_traceback(capsys, tmp_path):
    with pytest.raises(ConfigError):
        main(["study", "--debug", "--maze-spec", "nope"])
    with pytest.raises(ConfigError):
        main(["--debug", "study", "--maze-spec", "nope"])
    bad = tmp_path / "x.pt"
    bad.write_text("x")
    with pytest.raises(CheckpointError):
        main(["eval", "--debug", "--checkpoint", str(bad)])


def test_load_spec_error_is_a_key_error_naming_the_closest_spec():
    from hookdiff.maze.sets import load_spec

    with pytest.raises(KeyError) as e:
        load_spec("vanila-hard")
    assert isinstance(e.value, UnknownMazeSpecError)
    assert _suggestions(str(e.value))[0] == "vanilla-hard"


def test_an_abbreviated_option_is_refused_not_guessed(capsys):
    # with abbreviations allowed, --vector would be read as --vectors or --vectors-from
    line = _fails_cleanly(capsys, "study", "--vector", "all", "--quick")
    assert "unrecognized arguments: --vector" in line
    line = _fails_cleanly(capsys, "study", "--thresh", "0.2")
    assert "--thresh" in line


def test_top_level_help_imports_no_command_config():
    """``hookdiff --help`` builds no subcommand's options, so it imports neither torch nor a
    config module (their imports take seconds); ``hookdiff study --help`` still lists them."""
    import subprocess
    import sys

    code = (
        "import sys, contextlib, io\n"
        "from hookdiff.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    main(['--help'])\n"
        "print('study' in out.getvalue(), 'torch' in sys.modules)\n"
    )
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert got.stdout.split() == ["True", "False"], got.stderr


def test_checkpoint_names_a_shipped_agent_or_fails_listing_them(capsys):
    from hookdiff.agent import available_agents
    from hookdiff.study.config import StudyConfig

    shipped = available_agents()
    config = StudyConfig(checkpoint=",".join(shipped))
    assert config.checkpoints() == tuple(str(p) for p in shipped.values())
    for command in ("study", "eval"):
        line = _fails_cleanly(capsys, command, "--checkpoint", "contrl")
        assert "'contrl' is neither a checkpoint file nor a shipped agent" in line
        assert all(name in line for name in shipped)
