"""The vector-field plot draws from data: a PNG of the right size, arrows where the cells are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hookdiff.maze import direction_field, generate_states, mouse_cells
from hookdiff.maze.plot import plot_vector_field


def test_plot_vector_field(tmp_path: Path) -> None:
    s = generate_states(1, seed=17)[0]
    cells = mouse_cells(s)
    field = direction_field(s, s.cheese)
    probs = np.zeros((len(cells), 5))
    probs[np.arange(len(cells)), [field[c] for c in cells]] = 1.0  # the expert, one-hot
    out = tmp_path / "field.png"
    fig = plot_vector_field(s, cells, probs, title="expert", path=out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    ax = fig.axes[0]
    quiver = ax.collections[0]
    assert len(quiver.U) == len(cells)
    # world rows go up on the plot: an "up" step (index 2) has a positive y component
    up = [i for i, c in enumerate(cells) if field[c] == 2]
    assert (np.asarray(quiver.V)[up] > 0).all()
    with pytest.raises(ValueError, match="expected"):
        plot_vector_field(s, cells, probs[:, :4])
