"""Exact line walk: hand-solved breakpoints of small relu / maxpool nets, and its error cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hookdiff.analysis import breakpoints_at, line_breakpoints, pattern_flips
from hookdiff.errors import NotPiecewiseLinearError


def _relu_net(two_layers: bool) -> nn.Sequential:
    """x(t) = (1, t); unit i of the first layer is t - c_i with c = (-1.5, 0.25, 2.0)."""
    first = nn.Linear(2, 3).double()
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]))
        first.bias.copy_(torch.tensor([1.5, -0.25, -2.0]))
    layers = [nn.Identity(), first, nn.ReLU()]
    if two_layers:
        # z1 = h1 - 2.5 crosses 0 at t = 1.0; z2 = h2 + h3 - 1 at t = 1.25
        second = nn.Linear(3, 2).double()
        with torch.no_grad():
            second.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]))
            second.bias.copy_(torch.tensor([-2.5, -1.0]))
        layers += [second, nn.ReLU()]
    layers.append(nn.Linear(2 if two_layers else 3, 1).double())
    return nn.Sequential(*layers)


A = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
V = torch.tensor([0.0, 1.0], dtype=torch.float64)


def test_one_layer_relu_breakpoints_by_hand() -> None:
    net = _relu_net(two_layers=False)
    ds = line_breakpoints(net, A, "0", V, (-3.0, 3.0))
    np.testing.assert_allclose(ds["breakpoint_t"].values, [-1.5, 0.25, 2.0], atol=1e-12)
    assert breakpoints_at(ds, 0, "1").size == 0  # the linear layer before the relu
    np.testing.assert_allclose(breakpoints_at(ds, 0, "3"), [-1.5, 0.25, 2.0], atol=1e-12)
    assert ds["n_pieces"].sel(depth=["1", "2", "3"]).values.tolist() == [[1, 4, 4]]
    assert ds["first_break_pos"].sel(depth="3").item() == pytest.approx(0.25)
    assert ds["first_break_neg"].sel(depth="3").item() == pytest.approx(1.5)
    # the density integrates to the count
    dens = ds["breakpoint_density"].sel(depth="3").values[0]
    width = ds["t_bin_hi"].values - ds["t_bin_lo"].values
    assert (dens * width).sum() == pytest.approx(3)
    # a sub-interval holds only its own breakpoints
    sub = line_breakpoints(net, A, "0", V, (0.0, 1.0))
    np.testing.assert_allclose(sub["breakpoint_t"].values, [0.25], atol=1e-12)


def test_two_layer_relu_breakpoints_by_hand() -> None:
    net = _relu_net(two_layers=True)
    ds = line_breakpoints(net, A, "0", V, (-3.0, 3.0))
    np.testing.assert_allclose(breakpoints_at(ds, 0, "2"), [-1.5, 0.25, 2.0], atol=1e-12)
    np.testing.assert_allclose(breakpoints_at(ds, 0, "5"), [-1.5, 0.25, 1.0, 1.25, 2.0], atol=1e-12)
    assert list(ds["breakpoint_layer"].values) == ["2", "2", "4", "4", "2"]
    # many samples, small piece budget: the same answer for each copy, whatever the chunking
    many = line_breakpoints(net, A.repeat(5, 1), "0", V, (-3.0, 3.0), max_pieces=2)
    assert many["n_pieces"].sel(depth="5").values.tolist() == [6] * 5
    np.testing.assert_allclose(
        breakpoints_at(many, 3, "5"), [-1.5, 0.25, 1.0, 1.25, 2.0], atol=1e-12
    )


def test_maxpool_breakpoints_by_hand() -> None:
    # one 2x2 window: candidates 3t, 1 + t, 2.5, 3 - t. The max is 3 - t until 2.5 takes over at
    # t = 0.5, then 2.5 until 3t passes it at t = 5/6 (1 + t reaches 2.5 only at 1.5, too late)
    net = nn.Sequential(nn.Identity(), nn.MaxPool2d(2)).double()
    a = torch.tensor([0.0, 1.0, 2.5, 3.0], dtype=torch.float64).reshape(1, 1, 2, 2)
    v = torch.tensor([3.0, 1.0, 0.0, -1.0], dtype=torch.float64).reshape(1, 2, 2)
    ds = line_breakpoints(net, a, "0", v, (-3.0, 3.0))
    np.testing.assert_allclose(ds["breakpoint_t"].values, [0.5, 5 / 6], atol=1e-12)


def test_walk_finds_every_change_of_a_fine_grid(hookdiff_tiny_convnet) -> None:
    net = hookdiff_tiny_convnet.double()
    gen = torch.Generator().manual_seed(3)
    a = net[0](torch.rand(2, 3, 8, 8, generator=gen, dtype=torch.float64)).detach()
    v = torch.randn(4, 8, 8, generator=gen, dtype=torch.float64)
    ds = line_breakpoints(net, a, "0", v, (-1.0, 1.0))
    grid = np.linspace(-1.0, 1.0, 1001)
    all_flips = pattern_flips(net, a, "0", v, grid)  # fraction of units differing from t = 0
    for layer in ["1", "2", "4"]:
        flips = all_flips.sel(layer=layer).values
        for s in range(2):
            # a change at this layer is a breakpoint of this layer or of one before it (a relu
            # turning off inside a maxpool window ties it at 0: the kink is the relu's)
            found = breakpoints_at(ds, s, layer)
            changed = np.nonzero(flips[s, 1:] != flips[s, :-1])[0]
            for i in changed:
                assert ((found >= grid[i]) & (found <= grid[i + 1])).any(), (layer, s, grid[i])


def test_not_piecewise_linear_raises(hookdiff_tiny_transformer) -> None:
    a = torch.randn(2, 5, 16)
    with pytest.raises(NotPiecewiseLinearError, match="parts 1-5"):
        line_breakpoints(
            hookdiff_tiny_transformer, a, "blocks.0.hook_resid_post", torch.randn(5, 16), (-1, 1)
        )
    net = nn.Sequential(nn.Identity(), nn.Linear(2, 2), nn.Tanh())
    with pytest.raises(NotPiecewiseLinearError, match="Tanh"):
        line_breakpoints(net, torch.ones(1, 2), "0", torch.ones(2), (-1.0, 1.0))
