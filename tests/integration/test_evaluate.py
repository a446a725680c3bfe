"""Evaluation figures: computed from real rollouts, checked against the expert and a direct count.

The top-right region comes from the ``region_cells`` fixture (not from ``top_right_region``);
the shipped agent's figures are recounted from the recorded paths and a direct forward pass.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from hookdiff.agent import ImpalaPolicy, directions, load_default, obs_to_tensor
from hookdiff.maze import (
    WALL,
    decision_square,
    next_direction,
    render,
    top_right_cell,
    with_cheese,
    with_mouse,
)
from hookdiff.maze.paths import shortest_path
from hookdiff.maze.sets import sample_mazes
from hookdiff.rollout import ExpertPolicy, rollout
from hookdiff.training.evaluate import EvalConfig, entered_top_right, evaluate


def test_expert_enters_the_top_right_only_where_its_shortest_path_does(region_cells):
    states = sample_mazes("eval-decision-square", 6, seed=3)
    assert len({s.maze_dim for s in states}) >= 3
    ds = rollout(ExpertPolicy(states), states, stop_at_top_right=False)
    assert ds.reached_cheese.values.all()
    for size in (5, 3):
        got = entered_top_right(ds, states, size)
        for i, s in enumerate(states):
            path = shortest_path(s, s.mouse, s.cheese)[:-1]
            assert got[i] == any(cell in region_cells(s, size) for cell in path), (i, size)


def test_a_path_whose_only_top_right_cell_is_the_cheese_has_not_entered_the_top_right(
    region_cells,
):
    """Cheese on the region's edge, the mouse one step outside it: the expert steps onto it."""
    cases = []
    for m in sample_mazes("train-top-right-5", 6, seed=2):
        region = region_cells(m)
        lo = min(r for r, _ in region)
        for x in sorted(region):
            y = (x[0] - 1, x[1]) if x[0] == lo else (x[0], x[1] - 1)
            if x[0] == lo or x[1] == lo:
                if WALL not in (m.grid[x], m.grid[y]) and m.mouse not in (x, y):
                    cases.append(with_mouse(with_cheese(m, x), y))
                    break
    assert len(cases) >= 4
    ds = rollout(ExpertPolicy(cases), cases, stop_at_top_right=False)
    assert (ds.steps.values == 1).all() and ds.reached_cheese.values.all()
    assert not entered_top_right(ds, cases).any()


def test_entered_top_right_counts_visits_before_the_cheese(region_cells):
    states = sample_mazes("eval-decision-square", 4, seed=5)
    torch.manual_seed(0)
    ds = rollout(ImpalaPolicy(scale=1), states, max_steps=30, seed=1, stop_at_top_right=False)
    got = entered_top_right(ds, states)
    for i, s in enumerate(states):
        cells = [tuple(c) for c in ds.path.values[i, : int(ds.steps[i]) + 1]]
        assert got[i] == any(c in region_cells(s) for c in cells)


@pytest.fixture(scope="module")
def shipped():
    """The shipped agent evaluated on a few mazes; the rollouts ``evaluate`` ran are recorded.

    The recording wraps the real ``rollout`` (it runs unchanged) to recount its paths here.
    """
    evaluation = importlib.import_module(
        "hookdiff.training.evaluate"
    )  # the module, not the function
    config = EvalConfig(n_mazes=6, max_steps=60, seed=11)
    agent = load_default()
    runs = []

    def recorded(policy, states, **kw):
        ds = rollout(policy, states, **kw)
        runs.append((states, ds, kw))
        return ds

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(evaluation, "rollout", recorded)
        figures = evaluate(agent, config)
    specs = [config.in_spec, config.ood_spec]
    *runs, expert = runs  # the third rollout is the shortest-path expert's, on the OOD mazes
    assert expert[0] is runs[1][0]  # the same OOD states
    assert expert[2] == {"max_steps": 60, "stop_at_top_right": False}  # as the agent is run
    for (states, _, kw), spec in zip(runs, specs, strict=True):
        assert [s.to_bytes() for s in states] == [
            s.to_bytes() for s in sample_mazes(spec, config.n_mazes, seed=config.seed)
        ]
        assert kw == {"max_steps": 60, "seed": 11, "stop_at_top_right": False}
    parts = ["in_distribution", "out_of_distribution", "expert"]
    return agent, figures, {p: run[:2] for p, run in zip(parts, [*runs, expert])}


def _recount(states, ds, region_cells):
    """Per maze: reached the cheese (its path ends there), steps, entered the top-right first."""
    reached, steps, top_right = [], [], []
    for i, s in enumerate(states):
        n = int(ds.steps[i])
        path = [tuple(int(x) for x in c) for c in ds.path.values[i, : n + 1]]
        reached.append(path[-1] == s.cheese)
        steps.append(n)
        before = path[:-1] if reached[-1] else path
        top_right.append(any(c in region_cells(s) for c in before))
    return np.array(reached), np.array(steps), np.array(top_right)


def test_shipped_agent_reach_rates_are_recounted_from_the_paths(shipped, region_cells):
    _, figures, runs = shipped
    reached, steps, _ = _recount(*runs["in_distribution"], region_cells)
    got = figures["in_distribution"]
    assert got["p_reach_cheese"] == pytest.approx(reached.mean())
    assert got["p_reach_cheese"] >= 0.5  # the trained agent solves most training-like mazes
    assert not reached.all()  # within 60 steps: so the mean steps of reached runs is their own
    assert got["mean_steps_when_reached"] == pytest.approx(steps[reached].mean())
    reached, _, top_right = _recount(*runs["out_of_distribution"], region_cells)
    got = figures["out_of_distribution"]
    assert got["p_reach_cheese"] == pytest.approx(reached.mean())
    assert got["p_top_right_before_cheese"] == pytest.approx(top_right.mean())
    assert got["p_top_right_and_no_cheese"] == pytest.approx((top_right & ~reached).mean())
    assert 0 < got["p_top_right_before_cheese"]  # it does go to the top-right out of distribution
    assert (top_right & reached).any()  # some runs visit the top-right and then find the cheese
    reached, _, top_right = _recount(*runs["expert"], region_cells)
    assert reached.all() or (np.asarray(runs["expert"][1].steps) == 60).any()
    assert got["expert_p_top_right_before_cheese"] == pytest.approx(top_right.mean())
    lo, hi = got["expert_p_top_right_before_cheese_ci95"]
    assert lo <= got["expert_p_top_right_before_cheese"] <= hi


def test_shipped_agent_decision_square_probabilities_from_a_direct_forward(shipped):
    agent, figures, runs = shipped
    states, _ = runs["out_of_distribution"]
    squares = [decision_square(s) for s in states]
    obs = obs_to_tensor(render([with_mouse(s, d) for s, d in zip(states, squares)]))
    with torch.no_grad():
        p = directions(agent(obs)).numpy()
    to_cheese = [
        p[i, next_direction(s, d, s.cheese)] for i, (s, d) in enumerate(zip(states, squares))
    ]
    to_corner = [
        p[i, next_direction(s, d, top_right_cell(s))]
        for i, (s, d) in enumerate(zip(states, squares))
    ]
    got = figures["out_of_distribution"]
    assert got["mean_p_toward_cheese"] == pytest.approx(np.mean(to_cheese), abs=1e-5)
    assert got["median_p_toward_cheese"] == pytest.approx(np.median(to_cheese), abs=1e-5)
    assert got["mean_p_toward_top_right"] == pytest.approx(np.mean(to_corner), abs=1e-5)
