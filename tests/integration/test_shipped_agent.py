"""The agent shipped in the package: loads, matches its model card, and solves small mazes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hookdiff.agent import ImpalaPolicy, checkpoint_sha256, default_checkpoint_path, load_default
from hookdiff.maze.sets import sample_mazes
from hookdiff.rollout import rollout
from hookdiff.training.ship import model_card_path

pytestmark = pytest.mark.skipif(
    not default_checkpoint_path().exists(), reason="no agent shipped in this checkout"
)


def test_model_card_describes_the_shipped_file():
    card = json.loads(model_card_path().read_text())
    assert card["sha256"] == checkpoint_sha256(default_checkpoint_path())
    policy = load_default()
    assert card["parameters"] == sum(p.numel() for p in policy.parameters())
    for key in ("training_distribution", "method", "training", "evaluation", "evaluation_command"):
        assert card[key]
    ind = card["evaluation"]["in_distribution"]["p_reach_cheese"]
    assert 0.0 <= ind <= 1.0


def test_shipped_agent_solves_small_in_distribution_mazes():
    """The 8 smallest of 40 fixed training-distribution mazes, 40 steps: trained beats untrained."""
    mazes = sample_mazes("train-top-right-5", 40, seed=2026)
    small = sorted(mazes, key=lambda m: (m.maze_dim, m.level_seed))[:8]

    def rate(policy) -> float:
        ds = rollout(policy, small, max_steps=40, seed=0, stop_at_top_right=False)
        return float(np.mean(ds.reached_cheese.values))

    torch.manual_seed(0)
    untrained = rate(ImpalaPolicy(scale=1).eval())
    trained = rate(load_default())
    assert trained >= 0.75, f"reached the cheese in {trained:.0%} of small in-distribution mazes"
    assert trained > untrained, f"trained {trained:.0%} vs untrained {untrained:.0%}"
