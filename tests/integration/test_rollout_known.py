"""Rollouts whose answers are known: where the expert stops, what the shipped agent's outcome labels
mean, and which way its own steering vectors push it.

The expert's path is the maze's shortest path, so the step at which it first enters the top-right
region (``region_cells``, enumerated without ``top_right_region``) is known. The
shipped agent's outcome labels must agree with its recorded path, and steering by each maze's own
vectors must act with the sign given: checked against ``hookdiff.steer`` and in the published
direction (adding the top-right vector raises P(toward the top-right) at the decision square).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hookdiff import steer
from hookdiff.agent import ACTION_DIRECTIONS, ImpalaPolicy, load_default, obs_to_tensor
from hookdiff.maze import (
    DIRECTION_STEPS,
    WALL,
    decision_square,
    render,
    sample_mazes,
    shortest_path,
    top_right_corridor,
    with_mouse,
)
from hookdiff.rollout import ExpertPolicy, Steering, decision_square_probs, rollout
from hookdiff.testing import assert_no_hooks
from hookdiff.vectors import STEERING_HOOK, cheese_vector, top_right_vector

MAX_STEPS = 60


@pytest.mark.parametrize("size", [5, 3])
def test_expert_stops_where_its_path_first_enters_the_top_right_region(size, region_cells):
    states = sample_mazes("train-top-right-5", 14, seed=11)  # inner mazes of 7 to 25 cells
    assert len({s.maze_dim for s in states}) >= 6
    ds = rollout(ExpertPolicy(states), states, stop_at_top_right=True, top_right_size=size)
    for i, s in enumerate(states):
        path = shortest_path(s, s.mouse, s.cheese)
        region = region_cells(s, size)
        inside = [k for k in range(1, len(path)) if path[k] in region]
        k = inside[0] if inside else len(path) - 1  # the cheese may lie outside a 3x3
        assert int(ds.steps[i]) == k, f"maze {i} (maze_dim {s.maze_dim})"
        assert str(ds.outcome.values[i]) == ("cheese" if path[k] == s.cheese else "top_right")
        assert [tuple(c) for c in ds.path.values[i, : k + 1]] == path[: k + 1]


def test_one_expert_step_into_the_region_stops_there_on_every_side(region_cells):
    """The mouse on every open cell beside the region: one expert step, stopped iff it entered.

    Entries through the region's top row and right column are covered too (their corners
    ``(hi, lo)`` and ``(lo, hi)``), so an off-by-one at either end of the region shows.
    """
    mazes = sample_mazes("train-top-right-5", 8, seed=4)
    starts, entries = [], set()
    for m in mazes:
        region = region_cells(m)
        lo, hi = min(r for r, _ in region), max(r for r, _ in region)
        for r in range(lo - 1, hi + 1):
            for c in range(lo - 1, hi + 1):
                if (r, c) in region or m.grid[r, c] == WALL or (r, c) == m.cheese:
                    continue
                nxt = shortest_path(m, (r, c), m.cheese)[1]
                starts.append((with_mouse(m, (r, c)), nxt, nxt in region))
                if nxt in region:
                    entries.add(("top" if nxt[0] == hi else "") + ("right" if nxt[1] == hi else ""))
    assert {"top", "right"} <= entries, "the mazes should include entries at the region's far ends"
    states = [s for s, _, _ in starts]
    ds = rollout(ExpertPolicy(states), states, max_steps=1)
    for i, (s, nxt, enters) in enumerate(starts):
        assert tuple(ds.path.values[i, 1]) == nxt
        want = "cheese" if nxt == s.cheese else ("top_right" if enters else "timeout")
        assert str(ds.outcome.values[i]) == want, f"{s.mouse} -> {nxt}"


def test_greedy_rollouts_ignore_the_seed_and_sampled_ones_follow_it():
    """A random-init policy is close to uniform: sampling with two seeds must part ways."""
    states = sample_mazes("eval-decision-square", 4, seed=0)
    torch.manual_seed(0)
    policy = ImpalaPolicy(scale=1).eval()
    greedy = [rollout(policy, states, max_steps=8, seed=s, greedy=True).path.values for s in (0, 1)]
    sampled = [rollout(policy, states, max_steps=8, seed=s).path.values for s in (0, 1)]
    np.testing.assert_array_equal(greedy[0], greedy[1])
    assert (sampled[0] != sampled[1]).any()


@pytest.fixture(scope="module")
def agent():
    return load_default()


@pytest.fixture(scope="module")
def mazes():
    """Out-of-distribution mazes (cheese outside the top-right 5x5) that make both vector pairs."""
    return [m for m in sample_mazes("eval-decision-square", 30, seed=0) if top_right_corridor(m)][
        :12
    ]


@pytest.fixture(scope="module")
def vectors(agent, mazes):
    return {
        "cheese": cheese_vector(agent, mazes, STEERING_HOOK, per_maze=True),
        "top_right": top_right_vector(agent, mazes, STEERING_HOOK, per_maze=True),
    }


def test_outcome_labels_agree_with_the_recorded_path(agent, mazes, region_cells):
    ds = rollout(agent, mazes, max_steps=MAX_STEPS, seed=0)
    assert {"cheese", "top_right", "timeout"} <= set(ds.outcome.values)  # not all timeouts
    for i, s in enumerate(mazes):
        n = int(ds.steps[i])
        path = [tuple(int(x) for x in c) for c in ds.path.values[i, : n + 1]]
        assert (ds.path.values[i, n + 1 :] == -1).all()
        region = region_cells(s)
        before = path[1:-1]
        assert s.cheese not in before and not any(c in region for c in before), f"env {i}"
        outcome = str(ds.outcome.values[i])
        if outcome == "cheese":
            assert path[-1] == s.cheese, f"env {i}"
        elif outcome == "top_right":
            assert path[-1] in region and path[-1] != s.cheese, f"env {i}"
        else:
            assert outcome == "timeout" and n == MAX_STEPS, f"env {i}"
            assert path[-1] != s.cheese and path[-1] not in region, f"env {i}"
        assert bool(ds.reached_cheese[i]) == (outcome == "cheese")
        assert bool(ds.reached_top_right[i]) == (outcome == "top_right")


def test_decision_square_probs_steered_equal_a_direct_steered_forward(agent, mazes, vectors):
    """Per-env vectors and coefficients, checked against ``hookdiff.steer`` one maze at a time."""
    n = len(mazes)
    v = vectors["top_right"]
    coeffs = torch.tensor([1.0] * n + [-1.0] * n)
    both = v.repeat(2, 1, 1, 1)
    ds = decision_square_probs(
        agent, mazes * 2, steering=[Steering(STEERING_HOOK, both, coeffs, per_env=True)]
    )
    up, down = ds.p_toward_top_right.values[:n], ds.p_toward_top_right.values[n:]
    assert up.mean() > down.mean() + 0.15  # adding the top-right vector pulls to the top-right
    for i in (0, n - 1):
        obs = obs_to_tensor(render([with_mouse(mazes[i], decision_square(mazes[i]))]))
        for k, t in enumerate((1.0, -1.0)):
            with torch.no_grad(), steer(agent, STEERING_HOOK, v[i], t):
                p = torch.softmax(agent(obs), -1)[0]
            probs = ds.direction_probs.values[k * n + i]
            for d in range(4):
                want = float(p[[a for a, x in enumerate(ACTION_DIRECTIONS) if x == d]].sum())
                assert probs[d] == pytest.approx(want, abs=1e-5)
    assert_no_hooks(agent)


def test_greedy_first_step_follows_the_steered_logits(agent, mazes, vectors):
    """Mouse on the decision square: the first greedy move is the argmax of the steered logits."""
    placed = [with_mouse(m, decision_square(m)) for m in mazes]
    n = len(placed)
    v = vectors["cheese"].repeat(2, 1, 1, 1)
    coeffs = torch.tensor([2.0] * n + [-2.0] * n)
    ds = rollout(
        agent,
        placed * 2,
        steering=[Steering(STEERING_HOOK, v, coeffs, per_env=True)],
        max_steps=1,
        greedy=True,
    )
    obs = obs_to_tensor(render(placed))
    moved = []
    for k, t in enumerate((2.0, -2.0)):
        with torch.no_grad(), steer(agent, STEERING_HOOK, vectors["cheese"], t):
            actions = agent(obs).argmax(-1).numpy()
        for i, s in enumerate(placed):
            d = ACTION_DIRECTIONS[actions[i]]
            step = DIRECTION_STEPS[d] if d < 4 else (0, 0)
            want = (s.mouse[0] + step[0], s.mouse[1] + step[1])
            if not (0 <= min(want) and max(want) < s.world_dim) or s.grid[want] == WALL:
                want = s.mouse  # a wall or the world's edge: the mouse stays
            got = tuple(int(x) for x in ds.path.values[k * n + i, 1])
            assert got == want, f"maze {i}, t = {t}"
        moved.append([tuple(c) for c in ds.path.values[k * n : (k + 1) * n, 1]])
    assert moved[0] != moved[1]  # the two signs send at least one mouse different ways
