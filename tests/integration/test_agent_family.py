"""The shipped agent family: every card describes its file, and the card-checking loop measures."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hookdiff.agent import (
    available_agents,
    checkpoint_sha256,
    load_checkpoint,
    load_default,
    model_card,
)
from hookdiff.agent.family import card_path
from hookdiff.maze.sets import sample_mazes

TOOL = Path(__file__).resolve().parents[2] / "tools" / "check_agent_cards.py"


def _tool():
    spec = importlib.util.spec_from_file_location("check_agent_cards", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_shipped_agent_has_a_card_that_describes_its_file():
    agents = available_agents()
    assert list(agents)[0] == "shipped"
    for name, path in agents.items():
        card = json.loads(card_path(path).read_text())
        assert card == model_card(name) and card["agent"] == name and card["name"] == path.name
        assert card["sha256"] == checkpoint_sha256(path)
        policy = load_checkpoint(path)
        assert card["parameters"] == sum(p.numel() for p in policy.parameters())
        for part in ("in_distribution", "out_of_distribution"):
            lo, hi = card["evaluation"][part]["p_reach_cheese_ci95"]
            assert lo <= card["evaluation"][part]["p_reach_cheese"] <= hi


class _Still(torch.nn.Module):
    """Always procgen's no-op action (index 4): it never reaches the cheese."""

    def forward(self, obs):
        logits = torch.full((len(obs), 15), -30.0)
        logits[:, 4] = 30.0
        return logits


def test_the_independent_loop_sees_reaching_and_not_reaching():
    mazes = sample_mazes("train-top-right-5", 40, seed=2026)
    small = [m.to_bytes() for m in sorted(mazes, key=lambda m: (m.maze_dim, m.level_seed))[:8]]
    loop = _tool()
    still = loop.reach_cheese(_Still(), small, max_steps=40, seed=0)
    agent = loop.reach_cheese(load_default().eval(), small, max_steps=40, seed=0)
    assert not still.any()
    assert np.mean(agent) >= 0.75, f"the shipped agent reached {np.mean(agent):.0%}"


def test_the_loop_converts_frames_as_the_policy_expects():
    rgb = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    x = _tool().frames_to_input(rgb)
    assert x.shape == (2, 3, 64, 64)
    assert float(x[1, 2, 5, 7]) == pytest.approx(rgb[1, 5, 7, 2] / 255.0, rel=1e-6)
