"""Steering vectors from maze pairs: the cheese vector and the top-right vector, at any hook point.

A steering vector is the difference of the activations of two observations that differ in one
feature: the same maze with and without the cheese (the cheese vector), or with and without a
corridor from the maze's top-right cell to the world's top-right corner (the top-right vector),
the mouse at its start cell in both. With several mazes the per-maze differences
are averaged. Pairs come from :mod:`hookdiff.maze.edit`; every state is rendered by procgen in one
batch and the policy runs once, with :func:`hookdiff.capture` recording the activation at the
hook. The result has the activation's shape without the batch dimension, ready for
:func:`hookdiff.steer`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor, nn

from hookdiff._device import model_device
from hookdiff.agent.obs import obs_to_tensor
from hookdiff.errors import ShapeMismatchError
from hookdiff.hooks import capture, resolve_hook
from hookdiff.maze.edit import cheese_pair, top_right_pair
from hookdiff.maze.envs import render
from hookdiff.maze.state import MazeState

__all__ = [
    "STEERING_HOOK",
    "activations_at",
    "activations_from_obs",
    "cheese_vector",
    "pair_vector",
    "top_right_vector",
]

#: The published steering layer: the output of block2's first residual block.
STEERING_HOOK = "embedder.block2.res1.resadd_out"

#: Observations per policy forward when computing activations (a memory bound).
_BATCH = 256


def _as_list(states: MazeState | Sequence[MazeState]) -> list[MazeState]:
    items = [states] if isinstance(states, MazeState) else list(states)
    if not items:
        raise ValueError("no maze states given; expected a MazeState or a non-empty sequence")
    bad = [type(s).__name__ for s in items if not isinstance(s, MazeState)]
    if bad:
        raise TypeError(f"expected MazeState objects; got {sorted(set(bad))}")
    return items


@torch.no_grad()
def activations_from_obs(
    policy: nn.Module,
    obs: Float[Tensor, "batch channel height width"],
    hook: str,
    *,
    batch_size: int = _BATCH,
) -> Tensor:
    """The activation at ``hook`` for float observations ``(N, 3, 64, 64)``, in batches.

    Args:
        policy: the maze policy (any module taking the observations).
        obs: float observations in [0, 1], NCHW.
        hook: the hook point to read.
        batch_size: observations per forward.

    Returns:
        ``(N, ...)``: the activation of every observation, detached.

    Example:
        >>> from hookdiff.agent import ImpalaPolicy
        >>> acts = activations_from_obs(ImpalaPolicy(), torch.rand(2, 3, 64, 64), STEERING_HOOK)
        >>> acts.shape
        torch.Size([2, 32, 16, 16])
    """
    resolve_hook(policy, hook)  # an unknown name fails before any forward
    if obs.shape[0] == 0:
        raise ShapeMismatchError("no observations given; expected (N, 3, 64, 64) with N >= 1")
    parts = []
    device = model_device(policy)  # the activations come back on the policy's device
    for lo in range(0, obs.shape[0], batch_size):
        with capture(policy, [hook]) as acts:
            policy(obs[lo : lo + batch_size].to(device))
        parts.append(acts[hook])
    return torch.cat(parts, dim=0)


def activations_at(
    policy: nn.Module,
    states: MazeState | Sequence[MazeState],
    hook: str,
    *,
    batch_size: int = _BATCH,
) -> Tensor:
    """Render ``states`` with procgen (batched) and return the activation at ``hook`` of each.

    Args:
        policy: the maze policy.
        states: one maze or several (the mouse wherever each state puts it).
        hook: the hook point to read, e.g. :data:`STEERING_HOOK`.
        batch_size: observations per forward.

    Returns:
        ``(N, ...)`` activations, one row per state, in order.

    Example:
        >>> from hookdiff.agent import ImpalaPolicy
        >>> from hookdiff.maze import sample_mazes
        >>> policy = ImpalaPolicy()
        >>> acts = activations_at(policy, sample_mazes("vanilla-hard", 2, seed=0), STEERING_HOOK)
    """
    items = _as_list(states)
    obs = obs_to_tensor(render(items))
    return activations_from_obs(policy, obs, hook, batch_size=batch_size)


def pair_vector(
    policy: nn.Module,
    pairs: Sequence[tuple[MazeState, MazeState]],
    hook: str,
    *,
    per_maze: bool = False,
    batch_size: int = _BATCH,
) -> Tensor:
    """Mean over ``pairs`` of act(first) − act(second) at ``hook`` (all states in one render).

    Args:
        policy: the maze policy.
        pairs: ``(with_feature, without_feature)`` state pairs.
        hook: the hook point.
        per_maze: return every pair's own vector, stacked ``(len(pairs), ...)``, not their mean.
        batch_size: observations per forward.

    Returns:
        The vector: the activation's shape without the batch dimension (with ``per_maze``, one
        per pair along a leading dimension).
    """
    if not pairs:
        raise ValueError("no maze pairs given; expected at least one (with, without) pair")
    firsts = [a for a, _ in pairs]
    seconds = [b for _, b in pairs]
    acts = activations_at(policy, firsts + seconds, hook, batch_size=batch_size)
    n = len(pairs)
    diffs = acts[:n] - acts[n:]
    return diffs if per_maze else diffs.mean(dim=0)


def cheese_vector(
    policy: nn.Module,
    states: MazeState | Sequence[MazeState],
    hook: str = STEERING_HOOK,
    *,
    per_maze: bool = False,
    batch_size: int = _BATCH,
) -> Tensor:
    """The cheese vector: act(maze with cheese) − act(same maze without), mouse at the start.

    With several states, the mean of their per-maze vectors (``per_maze=True``: each maze's own
    vector, stacked, to steer each maze with its own vector as in the published batch runs).

    Args:
        policy: the maze policy.
        states: one maze or several, each with its cheese off the start cell.
        hook: the hook point (default the published steering layer).
        per_maze: one vector per maze ``(N, ...)`` instead of their mean.
        batch_size: observations per forward.

    Returns:
        The vector: the activation's shape at ``hook`` without the batch dimension.

    Raises:
        MazeEditError: a maze has no cheese or its cheese is on the start cell.

    Example:
        >>> from hookdiff.agent import load_default
        >>> from hookdiff.maze import sample_mazes
        >>> v = cheese_vector(load_default(), sample_mazes("eval-decision-square", 2, seed=0))
        >>> v.shape
        torch.Size([32, 16, 16])
    """
    pairs = [cheese_pair(s) for s in _as_list(states)]
    return pair_vector(policy, pairs, hook, per_maze=per_maze, batch_size=batch_size)


def top_right_vector(
    policy: nn.Module,
    states: MazeState | Sequence[MazeState],
    hook: str = STEERING_HOOK,
    *,
    per_maze: bool = False,
    batch_size: int = _BATCH,
) -> Tensor:
    """The top-right vector: act(maze with the top-right corridor) − act(without), mouse at start.

    With several states, the mean of their per-maze vectors (``per_maze=True``: stacked).

    Args:
        policy: the maze policy.
        states: one maze or several, each smaller than the world (room for the corridor).
        hook: the hook point (default the published steering layer).
        per_maze: one vector per maze ``(N, ...)`` instead of their mean.
        batch_size: observations per forward.

    Returns:
        The vector: the activation's shape at ``hook`` without the batch dimension.

    Raises:
        MazeEditError: a maze fills the world, so no corridor can be opened.

    Example:
        >>> from hookdiff.agent import load_default
        >>> from hookdiff.maze import sample_mazes
        >>> mazes = sample_mazes("eval-decision-square", 2, seed=0)
        >>> top_right_vector(load_default(), mazes, per_maze=True).shape
        torch.Size([2, 32, 16, 16])
    """
    pairs = [top_right_pair(s) for s in _as_list(states)]
    return pair_vector(policy, pairs, hook, per_maze=per_maze, batch_size=batch_size)
