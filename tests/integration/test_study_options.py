"""``--levels`` and ``--full``: named procgen levels parsed (list or @file), unusable ones reported
and skipped; the publication profile walks and rolls out every maze.

Level 40502 has no decision square; 40527 has one but its maze fills the world, so no top-right
corridor (no vector pair) can be opened; 40500 and 40501 are usable. Checked with real procgen.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from hookdiff.cli import build_parser, main, study_config
from hookdiff.errors import ConfigError
from hookdiff.maze import decision_square, level_states
from hookdiff.study import StudyConfig, quick_config
from hookdiff.study.inputs import study_mazes
from hookdiff.study.run import _run_record

pytestmark = pytest.mark.slow


def test_levels_parse_from_a_list_or_a_file(tmp_path):
    assert StudyConfig(levels=" 40500, 40501,40500 ").level_seeds() == (40500, 40501, 40500)
    path = tmp_path / "levels.txt"
    path.write_text("40500\n40501\n\n7\n")
    assert StudyConfig(levels=f"@{path}").validate().level_seeds() == (40500, 40501, 7)
    assert StudyConfig().level_seeds() is None
    args = build_parser().parse_args(["study", "--quick", "--levels", f"@{path}"])
    assert study_config(args).level_seeds() == (40500, 40501, 7)


@pytest.mark.parametrize(
    ("levels", "problem"),
    [
        ("40500,abc", "'abc' is not a level seed"),
        ("-3", "'-3' is not a level seed"),
        (str(2**31), "is not a level seed"),
        (" , ", "at least one level seed"),
        ("@/no/such/file", "cannot read the level file"),
    ],
)
def test_bad_levels_name_the_field_and_the_entry(levels, problem):
    with pytest.raises(ConfigError, match="levels") as e:
        StudyConfig(levels=levels).validate()
    assert problem in str(e.value) and "--levels" in str(e.value)


def test_unusable_levels_are_reported_and_skipped():
    config = dataclasses.replace(quick_config(), levels="40500,40502,40527,40501,40500")
    with pytest.warns(UserWarning, match="skipped 2 of 4 levels: 40502 .no decision square"):
        mazes = study_mazes(config)
    assert [m.level_seed for m in mazes.states] == [40500, 40501]  # given order, repeats dropped
    assert mazes.skipped == ((40502, "no decision square"), (40527, "no room for the vector pairs"))
    (s40500,) = level_states([40500])
    assert mazes.squares[0] == decision_square(s40500)
    assert mazes.obs["decision_square"].shape[0] == 2
    # with one mean vector from other mazes, a maze filling the world can be studied
    pairs = dataclasses.replace(config, vectors_from="pairs", levels="40502,40527")
    with pytest.warns(UserWarning, match="skipped 1 of 2"):
        assert [m.level_seed for m in study_mazes(pairs).states] == [40527]


def test_no_usable_level_is_a_config_error():
    config = dataclasses.replace(quick_config(), levels="40502,40503")
    with pytest.warns(UserWarning), pytest.raises(ConfigError, match="none of the 2 levels"):
        study_mazes(config)


def test_skipped_levels_reach_run_json():
    import xarray as xr

    ds = xr.Dataset(attrs={k: "" for k in ("agent", "checkpoint", "checkpoint_sha256", "warning")})
    ds.attrs |= {"steering_hook": "h", "later_hook": "h", "untrained": 0}
    ds.attrs |= {k: "{}" for k in ("config", "seeds", "versions")}
    ds.attrs["skipped_levels"] = json.dumps([[40502, "no decision square"]])
    run = _run_record(ds, {"total": 1.0}, [], {})
    assert run["skipped_levels"] == [[40502, "no decision square"]]


def test_full_profile_walks_and_rolls_out_every_maze(capsys):
    parser = build_parser()
    full = study_config(parser.parse_args(["study", "--full"]))
    assert full.n_mazes == full.breakpoint_mazes == full.rollout_mazes >= 100
    assert StudyConfig().n_mazes >= 100  # the default studies as many mazes, walks fewer
    assert main(["study", "--quick", "--full"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
