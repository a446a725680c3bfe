"""The study's target readouts of the policy logits: P(step toward the target), its log-odds,
and the margin (the log-odds linearised in the logits at the line's t = 0).

The target is each maze's next direction from its decision square toward the vector's target
cell (:attr:`~hookdiff.study.targets.VectorSpec.target_cell`; cheese vector: the cheese;
top-right vector: the top-right cell). The log-odds are
log P − log(1 − P) from the logits (a log-sum-exp over the target direction's actions and over
the others): exact where P rounds to 0 or 1 in floating point, and equal to
:func:`hookdiff.stats.log_odds` of P wherever P lies in [1e-6, 1 − 1e-6].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from hookdiff.agent.impala import DIRECTIONS_READOUT
from hookdiff.errors import ShapeMismatchError
from hookdiff.maze import ACTION_DIRECTIONS, next_direction
from hookdiff.maze.state import MazeState
from hookdiff.study.inputs import StudyMazes
from hookdiff.study.schema import READOUT_TEXT
from hookdiff.study.targets import TARGET_CELLS, VectorSpec, selected_specs

__all__ = [
    "LOGITS_HOOK",
    "label_readouts",
    "log_odds_gradient",
    "readouts",
    "target_directions",
    "target_log_odds",
    "target_probabilities",
    "target_probability",
]

#: Where the readouts are read from: the maze agent's logits, the hook its contract declares
#: (``policy.output_hook``; code with a policy at hand reads it from the policy).
LOGITS_HOOK = DIRECTIONS_READOUT.source


def target_directions(
    mazes: StudyMazes, specs: Sequence[VectorSpec] | None = None
) -> dict[str, np.ndarray]:
    """Per vector of ``specs`` (default: the published two), each maze's direction (0..3) from its
    decision square toward the vector's target cell (:attr:`VectorSpec.target_cell`); −1 where
    none."""
    pairs = list(zip(mazes.states, mazes.squares))
    return {
        spec.name: np.array(
            [next_direction(s, d, spec.target_cell(s)) for s, d in pairs], dtype=np.int64
        )
        for spec in (selected_specs(None) if specs is None else specs)
    }


def target_probabilities(
    direction_probs: np.ndarray,
    states: Sequence[MazeState],
    squares: Sequence[tuple[int, int]],
) -> dict[str, np.ndarray]:
    """P(step toward each target cell of :data:`~hookdiff.study.targets.TARGET_CELLS`) per
    maze, from the 5 direction probabilities ``(maze, 5)`` read on each maze's decision square:
    ``{target variable: (maze,)}``, NaN where the maze has no such cell or it cannot be reached
    from the square.

    Example:
        >>> from hookdiff.maze import decision_square, sample_mazes
        >>> s = sample_mazes("eval-decision-square", 1, seed=0)[0]
        >>> p = target_probabilities(np.full((1, 5), 0.2), [s], [decision_square(s)])
        >>> float(p["p_toward_cheese"][0])
        0.2
    """
    rows = np.arange(len(states))
    out = {}
    for var, cell_of in TARGET_CELLS.items():
        cells = [cell_of(s) for s in states]
        d = np.array(
            [
                -1 if c is None else next_direction(s, q, c)
                for s, q, c in zip(states, squares, cells)
            ]
        )
        p = np.asarray(direction_probs, dtype=np.float64)[rows, np.maximum(d, 0)]
        out[var] = np.where(d >= 0, p, np.nan)
    return out


def target_log_odds(logits: Tensor, target: Tensor) -> Tensor:
    """log P(target direction) − log P(any other direction) from logits ``(..., maze, 15)``.

    ``target`` holds one direction index per maze (negative values are read as 0).

    Example:
        >>> target_log_odds(torch.zeros(1, 15), torch.tensor([0])).item()  # 3 of 15 actions
        -1.3862943649291992
    """
    hot = _target_actions(logits, target)
    inside = logits.masked_fill(~hot, -torch.inf).logsumexp(-1)
    return inside - logits.masked_fill(hot, -torch.inf).logsumexp(-1)


def readouts(logits: np.ndarray | Tensor, target: np.ndarray, ts: Sequence[float]) -> np.ndarray:
    """``(readout, ..., t, maze)``: :data:`READOUTS` from logits ``(..., t, maze, 15)`` along ts.

    P(target), its log-odds l, and the margin: l linearised in the logits at the line's own
    t = 0 slice z₀, l(z₀) + ∇l(z₀)·(z − z₀). The margin is linear in the logits, so its even part
    is 0 wherever the logits' response is even-free (the network symmetrised at the logits): it
    measures only the asymmetry the network makes in the logits, not the softmax's curvature.
    Computed in float64; P = sigmoid(l). NaN at mazes whose ``target`` is negative.
    """
    ts = [float(t) for t in ts]
    if 0.0 not in ts:
        raise ShapeMismatchError(
            f"readouts needs t = 0 among the line's ts (got {ts}): the margin "
            "is linearised at t = 0; add 0 to ts"
        )
    x = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    tgt = torch.as_tensor(target)
    log_odds = target_log_odds(x, tgt)
    z0 = x.narrow(-3, ts.index(0.0), 1)
    margin = target_log_odds(z0, tgt) + ((x - z0) * log_odds_gradient(z0, tgt)).sum(-1)
    out = torch.stack([torch.sigmoid(log_odds), log_odds, margin]).numpy()
    out[..., np.asarray(target) < 0] = np.nan
    return out


def target_probability(logits: np.ndarray | Tensor, target: np.ndarray) -> np.ndarray:
    """P(target direction) from logits ``(..., maze, 15)`` in float64 (any t; NaN without target)."""
    x = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    out = torch.sigmoid(target_log_odds(x, torch.as_tensor(target))).numpy()
    out[..., np.asarray(target) < 0] = np.nan
    return out


def log_odds_gradient(logits: Tensor, target: Tensor) -> Tensor:
    """∂ :func:`target_log_odds` / ∂logits ``(..., maze, 15)``, in closed form.

    The log-odds are logsumexp over the target direction's actions minus logsumexp over the
    others, so the gradient is the softmax within the target's actions minus the softmax within
    the others'.

    Example:
        >>> log_odds_gradient(torch.zeros(1, 15), torch.tensor([0]))[0, :4]  # 3 of 15 are "left"
        tensor([ 0.3333,  0.3333,  0.3333, -0.0833])
    """
    hot = _target_actions(logits, target)
    inside = torch.softmax(logits.masked_fill(~hot, -torch.inf), dim=-1)
    return inside - torch.softmax(logits.masked_fill(hot, -torch.inf), dim=-1)


def _target_actions(logits: Tensor, target: Tensor) -> Tensor:
    """``(..., maze, 15)`` bool: the actions that step in each maze's target direction."""
    if logits.shape[-1] != len(ACTION_DIRECTIONS):
        raise ShapeMismatchError(
            f"expected logits with {len(ACTION_DIRECTIONS)} actions on the "
            f"last axis, got shape {tuple(logits.shape)}"
        )
    direction = torch.tensor(ACTION_DIRECTIONS, device=logits.device)
    hot = direction == target.to(logits.device).clamp(min=0)[:, None]  # (maze, 15)
    return hot.expand(logits.shape)


def label_readouts(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with the attr ``readout`` (what each readout is) on every variable over ``readout``."""
    for name in ds.data_vars:
        if "readout" in ds[name].dims:
            ds[name].attrs["readout"] = READOUT_TEXT
    return ds
