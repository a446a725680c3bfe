"""The exact line walk on the shipped agent: equal to its reference copy and to a grid + bisection.

One maze of ``eval-decision-square`` steered by its own cheese vector at the published layer, a
float64 copy of the shipped policy, over a short interval of t.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hookdiff.agent import load_default
from hookdiff.analysis._chain import build_chain, prepare
from hookdiff.analysis.breakpoints import walk_line
from hookdiff.maze import sample_mazes
from hookdiff.vectors import activations_at, cheese_vector

HOOK = "embedder.block2.res1.resadd_out"
LO, HI = -0.4, 0.4


def _reference():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "_walk_reference.py"
    spec = importlib.util.spec_from_file_location("_walk_reference", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.walk_line


@pytest.fixture(scope="module")
def line():
    policy = load_default().eval()
    mazes = sample_mazes("eval-decision-square", 1, seed=0)
    v = cheese_vector(policy, mazes, HOOK)
    a = activations_at(policy, mazes, HOOK)
    chain = build_chain(copy.deepcopy(policy).double(), HOOK, None)
    a, v, ctx = prepare(chain, a.double(), v.double(), None)
    return chain, a, v, walk_line(chain, a, v, ctx, LO, HI)


def test_walk_equals_the_reference_walk_on_the_agent(line) -> None:
    chain, a, v, new = line
    old = _reference()(chain, a, v, {}, LO, HI)
    assert len(new.t) == len(old.t) > 100
    np.testing.assert_allclose(new.t, old.t, rtol=0, atol=1e-9)
    for field in ("sample", "layer", "kink", "unit"):
        np.testing.assert_array_equal(getattr(new, field), getattr(old, field), err_msg=field)


def _patterns(chain, a, v, ts: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        _, pats = chain.run(a + ts.reshape(-1, 1, 1, 1) * v, {}, True)
    return torch.cat([p.reshape(len(ts), -1).long() for p in pats.values()], dim=1)


def test_walk_holds_every_change_a_grid_with_bisection_finds(line) -> None:
    chain, a, v, walk = line
    grid = torch.linspace(LO, HI, 801, dtype=torch.float64)
    sig = _patterns(chain, a, v, grid)
    cells = torch.nonzero((sig[1:] != sig[:-1]).any(dim=1)).flatten()
    assert len(cells) > 50
    cells = cells[torch.randperm(len(cells), generator=torch.Generator().manual_seed(0))[:24]]
    left, right, start = grid[cells], grid[cells + 1], sig[cells]
    while (right - left).max() > 1e-12:
        mid = (left + right) / 2
        moved = (_patterns(chain, a, v, mid) != start).any(dim=1)
        right, left = torch.where(moved, mid, right), torch.where(moved, left, mid)
    found = ((left + right) / 2).numpy()
    assert np.abs(walk.t[None, :] - found[:, None]).min(axis=1).max() <= 1e-9
