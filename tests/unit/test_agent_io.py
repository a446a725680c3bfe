"""Agent I/O helpers: procgen frames to model input, and 15 actions to 5 directions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hookdiff.agent import (
    ACTION_DIRECTIONS,
    DIRECTION_NAMES,
    direction_log_probs,
    directions,
    obs_to_tensor,
)
from hookdiff.errors import ShapeMismatchError


def test_obs_to_tensor_layout_and_scale() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(2, 64, 64, 3), dtype=np.uint8)
    x = obs_to_tensor(rgb)
    assert x.shape == (2, 3, 64, 64) and x.dtype == torch.float32 and x.is_contiguous()
    n, r, c, ch = 1, 5, 17, 2
    assert x[n, ch, r, c].item() == pytest.approx(rgb[n, r, c, ch] / 255.0)
    torch.testing.assert_close(x, torch.from_numpy(rgb).float().permute(0, 3, 1, 2) / 255)
    y = obs_to_tensor(torch.from_numpy(rgb), memory_format=torch.channels_last)
    assert y.is_contiguous(memory_format=torch.channels_last) and torch.equal(x, y)


def test_obs_to_tensor_errors() -> None:
    with pytest.raises(ShapeMismatchError, match=r"\(N, 64, 64, 3\).*\(64, 64, 3\)"):
        obs_to_tensor(np.zeros((64, 64, 3), dtype=np.uint8))
    with pytest.raises(ShapeMismatchError):
        obs_to_tensor(np.zeros((1, 3, 64, 64), dtype=np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        obs_to_tensor(np.zeros((1, 64, 64, 3), dtype=np.float32))


def test_action_mapping_matches_procgen() -> None:
    named = {a: DIRECTION_NAMES[d] for a, d in enumerate(ACTION_DIRECTIONS)}
    assert [a for a, d in named.items() if d == "left"] == [0, 1, 2]
    assert [a for a, d in named.items() if d == "down"] == [3]
    assert [a for a, d in named.items() if d == "up"] == [5]
    assert [a for a, d in named.items() if d == "right"] == [6, 7, 8]
    assert [a for a, d in named.items() if d == "none"] == [4, *range(9, 15)]


def test_directions_manual_sum() -> None:
    torch.manual_seed(0)
    logits = torch.randn(6, 15) * 3
    probs = torch.softmax(logits, dim=-1)
    manual = torch.stack(
        [
            probs[:, [0, 1, 2]].sum(-1),
            probs[:, 3],
            probs[:, 5],
            probs[:, [6, 7, 8]].sum(-1),
            probs[:, [4, 9, 10, 11, 12, 13, 14]].sum(-1),
        ],
        dim=-1,
    )
    d = directions(logits)
    assert d.shape == (6, 5)
    torch.testing.assert_close(d, manual)
    torch.testing.assert_close(d.sum(-1), torch.ones(6))
    torch.testing.assert_close(direction_log_probs(logits), manual.log())
    assert directions(logits[None]).shape == (1, 6, 5)


def test_direction_log_probs_stable_and_differentiable() -> None:
    logits = torch.tensor([[200.0, -200.0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]])
    logits.requires_grad_(True)
    lp = direction_log_probs(logits)
    assert torch.isfinite(lp).all() and lp[0, 0].item() == pytest.approx(0.0, abs=1e-6)
    lp[0, 3].backward()
    assert torch.isfinite(logits.grad).all()


def test_directions_wrong_width() -> None:
    with pytest.raises(ShapeMismatchError, match="15"):
        directions(torch.zeros(2, 4))
