"""The vectors as data: every spec's pair, target and selection, with hand-checked mazes.

A vector of the study is one :class:`~hookdiff.study.targets.VectorSpec`; these tests check each
built-in spec against the maze edits it stands for, the cheese-location vector's deterministic
choice of cell, and the ``vectors`` option (default, ``all``, unknown names).
"""

from __future__ import annotations

import numpy as np
import pytest

from hookdiff.errors import ConfigError, UnknownNameError
from hookdiff.maze import sample_mazes, start_cell, with_mouse
from hookdiff.maze.edit import cheese_pair, top_right_pair, without_cheese
from hookdiff.maze.paths import decision_square, distances, next_direction, top_right_cell
from hookdiff.study.config import StudyConfig, closest_to_one
from hookdiff.study.targets import (
    ALL_VECTORS,
    DEFAULT_VECTORS,
    VECTOR_SPECS,
    moved_cheese_cell,
    selected_specs,
)


@pytest.fixture(scope="module")
def mazes():
    pytest.importorskip("procgen", reason="sampling real mazes needs the maze extra")
    return sample_mazes("eval-decision-square", 6, seed=0)


def test_published_specs_make_the_published_pairs(mazes):
    """start_pair is byte for byte the pair hookdiff.vectors makes (the dataset stays the same)."""
    for state in mazes:
        for name, published in (("cheese", cheese_pair), ("top_right", top_right_pair)):
            ours = VECTOR_SPECS[name].start_pair(state)
            theirs = published(state)
            assert [s.to_bytes() for s in ours] == [s.to_bytes() for s in theirs]


def test_paired_state_is_the_pairs_other_state_with_the_mouse_kept(mazes):
    for state in mazes:
        placed = with_mouse(state, decision_square(state))
        for spec in VECTOR_SPECS.values():
            first, second = spec.pair(placed)
            other = spec.paired_state(placed)
            assert other.to_bytes() == (second if spec.maze_is_first else first).to_bytes()
            assert other.mouse == placed.mouse
            assert (first if spec.maze_is_first else second).to_bytes() == placed.to_bytes()
        assert VECTOR_SPECS["cheese"].paired_state(placed).cheese is None
        assert VECTOR_SPECS["cheese_location"].paired_state(placed).cheese == moved_cheese_cell(
            state
        )


def test_targets_are_the_cheese_and_the_top_right_cell(mazes):
    for state in mazes:
        assert VECTOR_SPECS["cheese"].target_cell(state) == state.cheese
        assert VECTOR_SPECS["cheese_location"].target_cell(state) == state.cheese
        assert VECTOR_SPECS["top_right"].target_cell(state) == top_right_cell(state)
        assert VECTOR_SPECS["moved_cheese"].target_cell(state) == moved_cheese_cell(state)


def test_moved_cheese_is_the_cheese_location_pair_the_other_way_round(mazes):
    """The maze is the second state (its base lies on the other side of the pair than the
    cheese-location vector's), and the first has the cheese on the moved cell."""
    loc, moved = VECTOR_SPECS["cheese_location"], VECTOR_SPECS["moved_cheese"]
    assert loc.maze_is_first and not moved.maze_is_first
    for state in mazes:
        a, b = loc.pair(state)
        first, second = moved.pair(state)
        assert (first.to_bytes(), second.to_bytes()) == (b.to_bytes(), a.to_bytes())
        assert first.cheese == moved_cheese_cell(state) and second.to_bytes() == state.to_bytes()
    assert moved.reach_var is None and moved.loc_reach_var is None


def test_target_probabilities_read_each_cells_first_step(mazes):
    """Each target variable picks the direction column of the first step of the BFS path from
    the decision square to its cell (checked against next_direction by hand)."""
    from hookdiff.study.readouts import target_probabilities
    from hookdiff.study.targets import TARGET_CELLS

    probs = np.random.default_rng(0).dirichlet(np.ones(5), size=len(mazes))
    squares = [decision_square(s) for s in mazes]
    got = target_probabilities(probs, mazes, squares)
    assert set(got) == set(TARGET_CELLS)
    for i, s in enumerate(mazes):
        for var, cell in (
            ("p_toward_cheese", s.cheese),
            ("p_toward_top_right", top_right_cell(s)),
            ("p_toward_moved_cheese", moved_cheese_cell(s)),
        ):
            d = next_direction(s, squares[i], cell)
            assert got[var][i] == probs[i, d]
    # a maze with no such cell reads NaN
    got = target_probabilities(probs[:1], [without_cheese(mazes[0])], squares[:1])
    assert np.isnan(got["p_toward_cheese"][0]) and np.isnan(got["p_toward_moved_cheese"][0])


def test_moved_cheese_cell_is_the_farthest_reachable_allowed_cell(mazes):
    """Recomputed by brute force: the largest BFS distance from the cheese, start and decision
    square excluded, first in row-major order."""
    for state in mazes:
        dist = distances(state, state.cheese)
        barred = {start_cell(state), decision_square(state)}
        cells = [
            (r, c)
            for r in range(dist.shape[0])
            for c in range(dist.shape[1])
            if dist[r, c] > 0 and (r, c) not in barred
        ]
        want = max(cells, key=lambda rc: (dist[rc], -rc[0], -rc[1]))
        got = moved_cheese_cell(state)
        assert got == want
        assert got != state.cheese and got not in barred
        # independent of where the mouse is
        assert moved_cheese_cell(with_mouse(state, decision_square(state))) == got


def test_published_t_and_direction():
    assert VECTOR_SPECS["cheese"].published_t == -1.0 and VECTOR_SPECS["cheese"].direction == -1.0
    assert VECTOR_SPECS["top_right"].direction == 1.0
    loc = VECTOR_SPECS["cheese_location"]
    assert loc.published_t == 1.0 and not loc.published


def test_selection_default_all_and_order():
    assert (
        [s.name for s in selected_specs(None)] == list(DEFAULT_VECTORS) == ["cheese", "top_right"]
    )
    assert [s.name for s in selected_specs(["all"])] == list(ALL_VECTORS)
    assert [s.name for s in selected_specs(["cheese_location", "cheese"])] == [
        "cheese",
        "cheese_location",
    ]
    with pytest.raises(UnknownNameError, match="cheese_location"):
        selected_specs(["chese"])


def test_config_vectors_option():
    assert [s.name for s in StudyConfig().vector_specs()] == ["cheese", "top_right"]
    assert len(StudyConfig(vectors=("all",)).validate().vector_specs()) == len(ALL_VECTORS)
    with pytest.raises(ConfigError, match=r"--vectors.*'bogus'.*cheese_location"):
        StudyConfig(vectors=("cheese", "bogus")).validate()
    with pytest.raises(ConfigError, match="--vectors"):
        StudyConfig(vectors=()).validate()
    assert StudyConfig.from_dict({"vectors": "cheese,cheese_location"}).vectors == (
        "cheese",
        "cheese_location",
    )


def test_closest_to_one_takes_the_lower_on_a_tie_whatever_the_order():
    assert closest_to_one((1.5, 0.5)) == closest_to_one((0.5, 1.5)) == 0.5
    assert closest_to_one((2.0, 1.0, 0.5)) == 1.0
    assert isinstance(closest_to_one(np.array([0.25, 3.0])), float)
