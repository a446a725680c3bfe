"""Rollout harness on real procgen envs: tracking, stopping rules, steering, decision squares."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hookdiff.agent import ImpalaPolicy, directions, obs_to_tensor
from hookdiff.maze.edit import with_mouse
from hookdiff.maze.envs import generate_states, make_env, render, set_states, states_of
from hookdiff.maze.paths import decision_square, next_direction, shortest_path, top_right_cell
from hookdiff.maze.state import WALL
from hookdiff.rollout import (
    ExpertPolicy,
    Steering,
    advance,
    decision_square_probs,
    reach_rates,
    rollout,
)
from hookdiff.testing import assert_no_hooks

HOOK = "embedder.block2.res1.resadd_out"


@pytest.fixture(scope="module")
def states():
    return generate_states(12, seed=100)


@pytest.fixture(scope="module")
def policy():
    torch.manual_seed(0)
    return ImpalaPolicy(scale=1).eval()


def test_advance_matches_procgen_mouse(states):
    env = make_env(len(states))
    set_states(env, states)
    rng = np.random.default_rng(0)
    cells = np.array([s.mouse for s in states])
    walls = np.stack([s.grid == WALL for s in states])
    for _ in range(40):
        actions = rng.integers(0, 15, len(states)).astype(np.int32)
        env.act(actions)
        _, _, first = env.observe()
        cells = advance(cells, actions, walls)
        now = states_of(env)
        for i, s in enumerate(now):
            if not first[i]:  # an env that just found the cheese has moved on to a new level
                assert s.mouse == tuple(cells[i]), f"env {i}"
        # keep tracking only envs still in their first episode
        walls = np.stack([s.grid == WALL for s in now])
        cells = np.array([s.mouse for s in now])


def test_expert_reaches_every_cheese_along_the_shortest_path(states):
    ds = rollout(ExpertPolicy(states), states, stop_at_top_right=False, seed=0)
    assert (ds.outcome.values == "cheese").all()
    for i, s in enumerate(states):
        expected = shortest_path(s, s.mouse, s.cheese)
        assert int(ds.steps[i]) == len(expected) - 1
        got = [tuple(c) for c in ds.path.values[i, : len(expected)]]
        assert got == expected


def test_rollout_is_seeded_and_stops_at_top_right(states, policy):
    a = rollout(policy, states, max_steps=30, seed=3)
    b = rollout(policy, states, max_steps=30, seed=3)
    assert (a.path.values == b.path.values).all() and (a.outcome.values == b.outcome.values).all()
    for i in np.flatnonzero(a.outcome.values == "top_right"):
        r, c = a.path.values[i, int(a.steps[i])]
        top = top_right_cell(states[i])[0]
        assert top - 4 <= r <= top and top - 4 <= c <= top
    assert (a.steps.values <= 30).all()
    rates = reach_rates(a)
    assert abs(sum(float(rates[k]) for k in rates) - 1) < 1e-9


def test_per_env_coefficients_equal_separate_rollouts(states, policy):
    v = torch.randn(32, 16, 16, generator=torch.Generator().manual_seed(1))
    two = list(states[:3]) * 2
    coeffs = [0.0] * 3 + [5.0] * 3
    both = rollout(policy, two, steering=[Steering(HOOK, v, coeffs)], max_steps=15, greedy=True)
    plain = rollout(policy, states[:3], max_steps=15, greedy=True)
    steered = rollout(
        policy, states[:3], steering=[Steering(HOOK, v, 5.0)], max_steps=15, greedy=True
    )
    assert (both.path.values[:3] == plain.path.values).all()
    assert (both.path.values[3:] == steered.path.values).all()
    assert_no_hooks(policy)


def test_decision_square_probs_match_a_direct_computation(states, policy):
    mazes = [s for s in states if decision_square(s) is not None][:4]
    assert mazes, "the fixed level seeds should include mazes with a decision square"
    ds = decision_square_probs(policy, mazes)
    for i, s in enumerate(mazes):
        d = decision_square(s)
        obs = render([with_mouse(s, d)])
        probs = directions(policy(obs_to_tensor(obs)))[0].detach()
        assert (
            abs(float(ds.p_toward_cheese[i]) - float(probs[next_direction(s, d, s.cheese)])) < 1e-5
        )
        assert (
            abs(
                float(ds.p_toward_top_right[i])
                - float(probs[next_direction(s, d, top_right_cell(s))])
            )
            < 1e-5
        )


def test_per_env_vectors_equal_separate_rollouts(states, policy):
    g = torch.Generator().manual_seed(2)
    vs = torch.randn(2, 32, 16, 16, generator=g) * 3
    both = rollout(
        policy,
        states[:2],
        steering=[Steering(HOOK, vs, 1.0, per_env=True)],
        max_steps=10,
        greedy=True,
    )
    for i in range(2):
        one = rollout(
            policy, [states[i]], steering=[Steering(HOOK, vs[i], 1.0)], max_steps=10, greedy=True
        )
        assert (both.path.values[i] == one.path.values[0]).all()
    p_both = decision_square_probs(
        policy,
        [s for s in states if decision_square(s)][:2],
        steering=[Steering(HOOK, vs, -1.0, per_env=True)],
    )
    assert p_both.p_toward_cheese.shape == (2,)
    assert_no_hooks(policy)
