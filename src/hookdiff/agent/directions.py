"""Procgen's 15 maze actions grouped into 5 directions: one mapping, used everywhere.

Procgen maze has 15 actions but the mouse moves only left, down, up, right or not at all. Decision
probabilities, behaviour metrics and the behaviour-cloning loss all work per direction, summing the
probability of the actions that make the same move. :data:`ACTION_DIRECTIONS` is the one place the
mapping is written down; :func:`directions` and :func:`direction_log_probs` derive from it.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from hookdiff.errors import ShapeMismatchError

__all__ = [
    "ACTION_DIRECTIONS",
    "DIRECTION_NAMES",
    "direction_log_probs",
    "directions",
]

#: Direction names, in the order of the last axis of :func:`directions`.
DIRECTION_NAMES: tuple[str, ...] = ("left", "down", "up", "right", "none")

#: ``ACTION_DIRECTIONS[a]`` is the index into :data:`DIRECTION_NAMES` of procgen action ``a``:
#: 0, 1, 2 move left; 3 down; 5 up; 6, 7, 8 right; 4 and 9..14 do nothing.
ACTION_DIRECTIONS: tuple[int, ...] = (0, 0, 0, 1, 4, 2, 3, 3, 3, 4, 4, 4, 4, 4, 4)


def _membership(logits: Tensor) -> Tensor:
    """(15, 5) 0/1 matrix: action a belongs to direction d."""
    if logits.shape[-1] != len(ACTION_DIRECTIONS):
        raise ShapeMismatchError(
            f"expected logits with {len(ACTION_DIRECTIONS)} actions on the last axis, got shape "
            f"{tuple(logits.shape)}"
        )
    index = torch.tensor(ACTION_DIRECTIONS, device=logits.device)
    return torch.nn.functional.one_hot(index, len(DIRECTION_NAMES)).to(logits.dtype)


def directions(logits: Float[Tensor, "... action"]) -> Float[Tensor, "... 5"]:
    """Probability of each direction (left, down, up, right, none) under the action softmax.

    Args:
        logits: Action logits, 15 on the last axis.

    Returns:
        Probabilities with 5 on the last axis (order :data:`DIRECTION_NAMES`), summing to 1.

    Example:
        >>> directions(torch.zeros(1, 15))
        tensor([[0.2000, 0.0667, 0.0667, 0.2000, 0.4667]])
    """
    probs = torch.softmax(logits, dim=-1)
    return probs @ _membership(logits)


def direction_log_probs(logits: Float[Tensor, "... action"]) -> Float[Tensor, "... 5"]:
    """Log-probability of each direction: logsumexp of the log-softmax over its actions.

    Numerically stable and differentiable (the behaviour-cloning loss uses it).

    Args:
        logits: Action logits, 15 on the last axis.

    Returns:
        Log-probabilities with 5 on the last axis (order :data:`DIRECTION_NAMES`).

    Example:
        >>> direction_log_probs(torch.zeros(1, 15)).exp()
        tensor([[0.2000, 0.0667, 0.0667, 0.2000, 0.4667]])
    """
    log_probs = torch.log_softmax(logits, dim=-1)
    mask = _membership(logits).transpose(0, 1)  # (5, 15)
    masked = log_probs.unsqueeze(-2) + torch.log(mask)  # -inf off the direction's actions
    return torch.logsumexp(masked, dim=-1)
