"""Shared oracles of the integration tests, computed without the code under test."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hookdiff.maze import MazeState, top_right_cell


def _region_cells(state: MazeState, size: int = 5) -> set[tuple[int, int]]:
    top, _ = top_right_cell(state)
    keep = range(max(state.margin, top - size + 1), top + 1)
    return {(r, c) for r in keep for c in keep}


@pytest.fixture(scope="session")
def region_cells() -> Callable[..., set[tuple[int, int]]]:
    """``region_cells(state, size=5)``: the inner maze's top-right ``size`` x ``size`` cells,
    counted down from its top-right cell (not with ``top_right_region``, which they check)."""
    return _region_cells
