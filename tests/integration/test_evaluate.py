"""Evaluation figures: computed from real rollouts, checked against the expert and a direct count."""

from __future__ import annotations

import numpy as np
import torch

from hookdiff.agent import ImpalaPolicy
from hookdiff.maze.paths import shortest_path
from hookdiff.maze.sets import sample_mazes
from hookdiff.rollout import ExpertPolicy, rollout, top_right_region
from hookdiff.training.evaluate import EvalConfig, entered_top_right, evaluate


def test_expert_enters_the_top_right_only_where_its_shortest_path_does():
    states = sample_mazes("eval-decision-square", 6, seed=3)
    ds = rollout(ExpertPolicy(states), states, stop_at_top_right=False)
    assert ds.reached_cheese.values.all()
    got = entered_top_right(ds, states)
    for i, s in enumerate(states):
        r0, r1, c0, c1 = top_right_region(s)
        path = shortest_path(s, s.mouse, s.cheese)[:-1]
        assert got[i] == any(r0 <= r <= r1 and c0 <= c <= c1 for r, c in path)


def test_entered_top_right_counts_visits_before_the_cheese():
    states = sample_mazes("eval-decision-square", 4, seed=5)
    torch.manual_seed(0)
    ds = rollout(ImpalaPolicy(scale=1), states, max_steps=60, seed=1, stop_at_top_right=False)
    got = entered_top_right(ds, states)
    for i, s in enumerate(states):
        r0, r1, c0, c1 = top_right_region(s)
        cells = [tuple(c) for c in ds.path.values[i, : int(ds.steps[i]) + 1]]
        assert got[i] == any(r0 <= r <= r1 and c0 <= c <= c1 for r, c in cells)


def test_evaluate_returns_rates_in_range():
    torch.manual_seed(0)
    figures = evaluate(ImpalaPolicy(scale=1), EvalConfig(n_mazes=4, max_steps=20))
    for part in ("in_distribution", "out_of_distribution"):
        for key, value in figures[part].items():
            if key.startswith("p_") or key.startswith("mean_p"):
                assert 0.0 <= value <= 1.0, key
    assert np.isclose(figures["published"]["ood_p_reach_cheese"], 0.848)
