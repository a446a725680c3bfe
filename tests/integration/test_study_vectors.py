"""Cheese and top-right vectors against an independent run_with_cache on procgen's renders."""

from __future__ import annotations

import pytest
import torch

from hookdiff.agent import ImpalaPolicy, obs_to_tensor
from hookdiff.errors import MazeEditError
from hookdiff.maze import (
    cheese_pair,
    decision_square,
    render,
    sample_mazes,
    start_cell,
    top_right_pair,
    with_mouse,
    without_cheese,
)
from hookdiff.testing import assert_no_hooks
from hookdiff.vectors import STEERING_HOOK, activations_at, cheese_vector, top_right_vector


@pytest.fixture(scope="module")
def policy():
    torch.manual_seed(0)
    return ImpalaPolicy(scale=1).eval()


@pytest.fixture(scope="module")
def mazes():
    return sample_mazes("eval-decision-square", 3, seed=7)


def _independent(policy, first, second, hook):
    obs = obs_to_tensor(render([first, second]))
    _, cache = policy.run_with_cache(obs)
    return cache[hook][0] - cache[hook][1]


@pytest.mark.parametrize(
    "hook", [STEERING_HOOK, "embedder.block3.res2.resadd_out", "embedder.fc_out"]
)
def test_cheese_vector_is_the_pair_difference(policy, mazes, hook):
    maze = mazes[0]
    with_c = with_mouse(maze, start_cell(maze))
    expected = _independent(policy, with_c, without_cheese(with_c), hook)
    got = cheese_vector(policy, maze, hook)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert float(got.norm()) > 0
    assert_no_hooks(policy)


def test_top_right_vector_is_the_pair_difference(policy, mazes):
    a, b = top_right_pair(mazes[1])
    assert a.mouse == b.mouse == start_cell(mazes[1])
    expected = _independent(policy, a, b, STEERING_HOOK)
    torch.testing.assert_close(top_right_vector(policy, mazes[1]), expected, rtol=1e-5, atol=1e-6)


def test_several_states_average_the_pair_vectors(policy, mazes):
    each = torch.stack([cheese_vector(policy, m) for m in mazes])
    torch.testing.assert_close(cheese_vector(policy, mazes), each.mean(0), rtol=1e-5, atol=1e-6)


def test_mouse_is_moved_to_the_start(policy, mazes):
    maze = mazes[0]
    moved = with_mouse(maze, decision_square(maze))  # the vector ignores where the mouse was
    first, second = cheese_pair(moved)
    assert first.mouse == second.mouse == start_cell(maze)
    acts = activations_at(policy, [first, second], STEERING_HOOK)
    torch.testing.assert_close(cheese_vector(policy, moved), acts[0] - acts[1])
    torch.testing.assert_close(cheese_vector(policy, moved), cheese_vector(policy, maze))


def test_maze_without_cheese_is_rejected(policy, mazes):
    with pytest.raises(MazeEditError, match="cheese"):
        cheese_vector(policy, without_cheese(mazes[0]))


def test_empty_states_are_rejected(policy):
    with pytest.raises(ValueError, match="no maze states"):
        activations_at(policy, [], STEERING_HOOK)
