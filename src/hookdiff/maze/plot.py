"""Vector-field plots of a policy's direction probabilities over a maze (matplotlib, Agg).

Figures are built with ``matplotlib.figure.Figure`` (rendered by Agg when saved), never through
pyplot, so importing this module changes no global backend. Pure plotting from data: give it a state, the mouse cells and the ``(M, 5)`` direction
probabilities (left, down, up, right, none) computed elsewhere; it draws the maze in world
coordinates (row 0 at the bottom, so it looks like procgen's frame) and, at each cell, the
probability-weighted mean step as an arrow, plus optional markers for the cheese, the mouse's
start, the top-right cell and the decision square. Nothing here runs a model or an env.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import Float
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from hookdiff.maze.paths import decision_square, top_right_cell
from hookdiff.maze.state import WALL, MazeState

__all__ = ["plot_vector_field"]

# (dx, dy) on the plot of left, down, up, right, none: y points up like world rows.
_STEP_XY = np.array([[-1.0, 0.0], [0.0, -1.0], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])


def plot_vector_field(
    state: MazeState,
    cells: Sequence[tuple[int, int]],
    probs: Float[np.ndarray, "cell 5"],
    *,
    ax: Any | None = None,
    title: str | None = None,
    path: str | Path | None = None,
    color: str = "tab:red",
    mark: bool = True,
) -> Any:
    """Draw the maze and, at each cell, the mean step under the direction probabilities.

    Args:
        state: the maze (its grid is drawn; the mouse is not).
        cells: ``(row, col)`` of each row of ``probs``.
        probs: ``(M, 5)`` probabilities of left, down, up, right, none (rows need not sum to 1).
        ax: an axes to draw into; default a new figure.
        title: axes title.
        path: if given, save the figure there (format from the suffix).
        color: arrow colour.
        mark: mark the cheese (yellow), the start (blue), the top-right cell (green square) and
            the decision square (black ring).

    Returns:
        The matplotlib ``Figure``.

    Example:
        >>> from hookdiff.maze import open_cells, sample_mazes
        >>> s = sample_mazes("eval-decision-square", 1, seed=0)[0]
        >>> cells = open_cells(s)
        >>> fig = plot_vector_field(s, cells, np.full((len(cells), 5), 0.2))
        >>> len(fig.axes)
        1
    """
    p = np.asarray(probs, dtype=float)
    if p.ndim != 2 or p.shape[1] != 5 or p.shape[0] != len(cells):
        raise ValueError(
            f"probs has shape {p.shape}: expected ({len(cells)}, 5) for {len(cells)} cells "
            "(left, down, up, right, none)"
        )
    if ax is None:
        fig = Figure(figsize=(5, 5))
        ax = fig.subplots()
    else:
        fig = ax.figure
    wd = state.world_dim
    walls = (state.grid == WALL).astype(float)
    # origin="lower": grid row 0 (the world's bottom) is drawn at the bottom
    ax.imshow(
        walls,
        origin="lower",
        cmap=ListedColormap(["#f4f1e8", "#5b4636"]),
        vmin=0,
        vmax=1,
        extent=(-0.5, wd - 0.5, -0.5, wd - 0.5),
    )
    if len(cells):
        rc = np.asarray(cells, dtype=float).reshape(-1, 2)
        uv = p @ _STEP_XY  # mean step (dx, dy) per cell
        style = {"angles": "xy", "scale_units": "xy", "scale": 1.6, "width": 0.006}
        ax.quiver(rc[:, 1], rc[:, 0], uv[:, 0], uv[:, 1], color=color, **style)
    if mark:
        _mark_cells(ax, state)
    ax.set_xlim(-0.5, wd - 0.5)
    ax.set_ylim(-0.5, wd - 0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig


def _mark_cells(ax: Any, state: MazeState) -> None:
    """Mark the cheese (yellow), the start (blue), the top-right cell (green square) and the
    decision square (black ring)."""
    if state.cheese is not None:
        ax.plot(state.cheese[1], state.cheese[0], "o", color="gold", ms=7, mec="k")
    ax.plot(state.margin, state.margin, "o", color="tab:blue", ms=5)
    tr = top_right_cell(state)
    ax.plot(tr[1], tr[0], "s", mfc="none", mec="tab:green", ms=9, mew=1.5)
    ds = decision_square(state)
    if ds is not None:
        ax.plot(ds[1], ds[0], "o", mfc="none", mec="k", ms=11, mew=1.5)
