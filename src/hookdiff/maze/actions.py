"""The maze's action semantics: procgen's 15 actions as 5 directions, written down once.

Procgen maze has 15 actions but the mouse moves only left, down, up, right or not at all. Paths,
rollouts, decision probabilities, behaviour metrics and the behaviour-cloning loss all work per
direction. :data:`ACTION_DIRECTIONS` is the one place the mapping is written down; the steps,
canonical actions and the direction probabilities derive from it. Rows count from the bottom, so
"down" is ``row - 1``.
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from hookdiff.errors import ShapeMismatchError

__all__ = [
    "ACTION_DIRECTIONS",
    "DIRECTION_ACTIONS",
    "DIRECTION_NAMES",
    "DIRECTION_STEPS",
    "NO_MOVE",
    "action_steps",
    "direction_log_probs",
    "direction_probs",
]

#: Direction names; index 4, ``none``, does not move.
DIRECTION_NAMES: tuple[str, ...] = ("left", "down", "up", "right", "none")

#: Index of ``none`` in :data:`DIRECTION_NAMES`.
NO_MOVE = 4

#: ``(d_row, d_col)`` of the moving directions 0..3 (left, down, up, right).
DIRECTION_STEPS: tuple[tuple[int, int], ...] = ((0, -1), (-1, 0), (1, 0), (0, 1))

#: ``ACTION_DIRECTIONS[a]`` is the direction index of procgen action ``a``:
#: 0, 1, 2 move left; 3 down; 5 up; 6, 7, 8 right; 4 and 9..14 do nothing.
ACTION_DIRECTIONS: tuple[int, ...] = (0, 0, 0, 1, 4, 2, 3, 3, 3, 4, 4, 4, 4, 4, 4)

#: The procgen action that moves the mouse in each direction 0..3, then 4 for ``none``.
DIRECTION_ACTIONS: tuple[int, ...] = (1, 3, 5, 7, 4)


def action_steps() -> Int[np.ndarray, "action 2"]:
    """``(d_row, d_col)`` of every procgen action (``(0, 0)`` for the ones that do not move)."""
    table = np.zeros((len(ACTION_DIRECTIONS), 2), dtype=np.int64)
    for action, d in enumerate(ACTION_DIRECTIONS):
        if d != NO_MOVE:
            table[action] = DIRECTION_STEPS[d]
    return table


def _membership(logits: Tensor) -> Tensor:
    """(15, 5) 0/1 matrix: action a belongs to direction d."""
    if logits.shape[-1] != len(ACTION_DIRECTIONS):
        raise ShapeMismatchError(
            f"expected logits with {len(ACTION_DIRECTIONS)} actions on the last axis, got shape "
            f"{tuple(logits.shape)}"
        )
    index = torch.tensor(ACTION_DIRECTIONS, device=logits.device)
    return torch.nn.functional.one_hot(index, len(DIRECTION_NAMES)).to(logits.dtype)


def direction_probs(logits: Float[Tensor, "... action"]) -> Float[Tensor, "... direction"]:
    """Probability of each direction (left, down, up, right, none) under the action softmax.

    Example:
        >>> direction_probs(torch.zeros(1, 15))
        tensor([[0.2000, 0.0667, 0.0667, 0.2000, 0.4667]])
    """
    return torch.softmax(logits, dim=-1) @ _membership(logits)


def direction_log_probs(logits: Float[Tensor, "... action"]) -> Float[Tensor, "... direction"]:
    """Log-probability of each direction: logsumexp of the log-softmax over its actions.

    Numerically stable and differentiable (the behaviour-cloning loss uses it).

    Example:
        >>> direction_log_probs(torch.zeros(1, 15)).exp()
        tensor([[0.2000, 0.0667, 0.0667, 0.2000, 0.4667]])
    """
    log_probs = torch.log_softmax(logits, dim=-1)
    mask = _membership(logits).transpose(0, 1)  # (5, 15)
    masked = log_probs.unsqueeze(-2) + torch.log(mask)  # -inf off the direction's actions
    return torch.logsumexp(masked, dim=-1)
