"""Exact line walk: hand-solved breakpoints of small relu / maxpool nets, and its error cases."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hookdiff.analysis import breakpoints_at, heap, line_breakpoints, pattern_flips
from hookdiff.analysis._chain import build_chain
from hookdiff.analysis._pieces import ANCHOR_EVERY, _anchors, _Pieces, _values
from hookdiff.analysis.walk import walk_line
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


# --------------------------------------------------------------------------------------------
# The walk against its reference copy and against an independent grid + bisection
# --------------------------------------------------------------------------------------------


def _reference_walk():
    """``walk_line`` as it was before its speed-up (``benchmarks/_walk_reference.py``)."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "_walk_reference.py"
    spec = importlib.util.spec_from_file_location("_walk_reference", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.walk_line


def assert_same_walk(new, old) -> None:
    """Same breakpoints (count, t within 1e-9, layer, kink, slope jump); the same unit except
    where several units change state at one t (then either may be reported)."""
    assert len(new.t) == len(old.t)
    np.testing.assert_allclose(new.t, old.t, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(new.sample, old.sample)
    np.testing.assert_array_equal(new.layer, old.layer)
    np.testing.assert_array_equal(new.kink, old.kink)
    gap = np.diff(new.t)
    alone = np.ones(len(new.t), dtype=bool)
    alone[1:] &= gap > 1e-9
    alone[:-1] &= gap > 1e-9
    np.testing.assert_array_equal(new.unit[alone], old.unit[alone])
    if new.jump is not None:
        np.testing.assert_allclose(new.jump, old.jump, rtol=1e-9, atol=1e-9)


def _patterns(chain, a, v, ts: torch.Tensor) -> torch.Tensor:
    """Every relu state and maxpool argmax of the segment at each t (one row per t)."""
    with torch.no_grad():
        _, pats = chain.run(a + ts.reshape(-1, 1, 1, 1) * v, {}, True)
    return torch.cat([p.reshape(len(ts), -1).long() for p in pats.values()], dim=1)


def _grid_changes(chain, a, v, lo: float, hi: float, points: int) -> np.ndarray:
    """Pattern changes of a dense grid, each located by bisection to 1e-12 (one per cell)."""
    grid = torch.linspace(lo, hi, points, dtype=torch.float64)
    sig = _patterns(chain, a, v, grid)
    cells = torch.nonzero((sig[1:] != sig[:-1]).any(dim=1)).flatten()
    left, right, start = grid[cells], grid[cells + 1], sig[cells]
    while len(cells) and (right - left).max() > 1e-12:
        mid = (left + right) / 2
        moved = (_patterns(chain, a, v, mid) != start).any(dim=1)
        right, left = torch.where(moved, mid, right), torch.where(moved, left, mid)
    return ((left + right) / 2).numpy()


@pytest.mark.parametrize("budget", [None, 3])
def test_walk_equals_the_reference_walk_on_the_tiny_convnet(hookdiff_tiny_convnet, budget) -> None:
    net = hookdiff_tiny_convnet.double()
    gen = torch.Generator().manual_seed(5)
    a = net[0](torch.rand(3, 3, 8, 8, generator=gen, dtype=torch.float64)).detach()
    v = torch.randn(3, 4, 8, 8, generator=gen, dtype=torch.float64)
    chain = build_chain(net, "0", None)
    new = walk_line(chain, a, v, {}, -2.0, 2.0, max_pieces=budget, slope_jumps=True)
    old = _reference_walk()(chain, a, v, {}, -2.0, 2.0, max_pieces=budget, slope_jumps=True)
    assert len(new.t) > 3 * ANCHOR_EVERY  # pieces beyond the first anchor block of each line
    assert_same_walk(new, old)


def test_walk_finds_what_a_grid_with_bisection_finds(hookdiff_tiny_convnet) -> None:
    net = hookdiff_tiny_convnet.double()
    gen = torch.Generator().manual_seed(6)
    a = net[0](torch.rand(1, 3, 8, 8, generator=gen, dtype=torch.float64)).detach()
    v = torch.randn(4, 8, 8, generator=gen, dtype=torch.float64)
    chain = build_chain(net, "0", None)
    walk = walk_line(chain, a, v, {}, -2.0, 2.0)
    found = _grid_changes(chain, a, v, -2.0, 2.0, 4001)
    assert len(found) > 0.8 * len(walk.t)  # the grid separates most breakpoints
    near = np.abs(walk.t[None, :] - found[:, None]).min(axis=1)
    assert near.max() <= 1e-9
    # and every breakpoint of the walk is a pattern change
    delta = torch.tensor([-1e-9, 1e-9], dtype=torch.float64)
    for t in walk.t:
        sig = _patterns(chain, a, v, t + delta)
        assert (sig[0] != sig[1]).any(), t


def _padded_pool_net() -> nn.Sequential:
    """conv 3x3 (zero padding), relu, max pool 3x3 / stride 2 / padding 1 (the agent's pool),
    flatten, linear: the windows on the top row and left column reach into the padding."""
    torch.manual_seed(11)
    return nn.Sequential(
        nn.Identity(),
        nn.Conv2d(2, 3, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Flatten(),
        nn.Linear(3 * 4 * 4, 2),
    ).double()


def test_walk_through_a_padded_max_pool_equals_the_reference_and_a_grid() -> None:
    net = _padded_pool_net()
    gen = torch.Generator().manual_seed(12)
    a = torch.randn(1, 2, 8, 8, generator=gen, dtype=torch.float64)
    v = torch.randn(2, 8, 8, generator=gen, dtype=torch.float64)
    chain = build_chain(net, "0", None)
    walk = walk_line(chain, a, v, {}, -2.0, 2.0, slope_jumps=True)
    pool = walk.layers.index("3")
    window = walk.unit[walk.layer == pool] % 16  # the pooled position, 4 x 4 per channel
    assert ((window // 4 == 0) | (window % 4 == 0)).sum() >= 3  # windows over the padding change
    assert_same_walk(walk, _reference_walk()(chain, a, v, {}, -2.0, 2.0, slope_jumps=True))
    found = _grid_changes(chain, a, v, -2.0, 2.0, 4001)  # independent: patterns + bisection
    assert len(found) > 0.8 * len(walk.t)
    near = np.abs(walk.t[None, :] - found[:, None]).min(axis=1)
    assert near.max() <= 1e-9
    delta = torch.tensor([-1e-9, 1e-9], dtype=torch.float64)
    for t in walk.t[walk.layer == pool]:  # every max pool breakpoint changes an argmax there
        sig = _patterns(chain, a, v, t + delta)
        assert (sig[0] != sig[1]).any(), t


class _FakeGlibc:
    """Records ``mallopt`` calls instead of making them."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return 1


def test_heap_tuning_is_explicit_restored_and_switchable(monkeypatch) -> None:
    fake = _FakeGlibc()
    monkeypatch.setattr(heap, "_glibc", lambda: fake)
    monkeypatch.delenv(heap.NO_HEAP_TUNING_VARIABLE, raising=False)
    net = _relu_net(two_layers=False)
    chain = build_chain(net, "0", None)
    walk_line(chain, A, V, {}, -3.0, 3.0)  # the default: tuned while it runs, then restored
    tuned = [(heap._M_MMAP_MAX, 0), (heap._M_TRIM_THRESHOLD, 2**30)]
    restored = [
        (heap._M_MMAP_MAX, heap._MMAP_MAX_DEFAULT),
        (heap._M_TRIM_THRESHOLD, heap._TRIM_DEFAULT),
    ]
    assert fake.calls == tuned + restored
    fake.calls.clear()
    with heap.tune_heap("cpu") as outer:  # nested blocks: only the outermost sets and restores
        with heap.tune_heap("cpu") as inner:
            assert fake.calls == tuned
        assert outer and inner and fake.calls == tuned
    assert fake.calls == tuned + restored
    fake.calls.clear()
    walk_line(chain, A, V, {}, -3.0, 3.0, heap_tuning=False)
    monkeypatch.setenv(heap.NO_HEAP_TUNING_VARIABLE, "1")
    line_breakpoints(net, A, "0", V, (-3.0, 3.0))
    with heap.tune_heap("cpu") as on:
        assert not on
    assert fake.calls == []


def test_start_values_summed_over_many_pieces_by_hand() -> None:
    # layer 1: 100 units t - c_i, c_i = -2.5 + 0.05 i, so 101 pieces (4 anchor blocks); layer 2:
    # z = sum_i relu(t - c_i) - 40, which is 0.025 (j + 1)(j + 2) - 40 at t = c_{j+1}: from -1 at
    # c_39 to +1 at c_40, where z = 40 t - sum_{i<40} c_i - 40, so t = (40 + sum_{i<40} c_i) / 40
    c = -2.5 + 0.05 * torch.arange(100, dtype=torch.float64)
    first = nn.Linear(2, 100).double()
    second = nn.Linear(100, 1).double()
    with torch.no_grad():
        first.weight.copy_(torch.stack([torch.zeros(100), torch.ones(100)], 1))
        first.bias.copy_(-c)
        second.weight.fill_(1.0)
        second.bias.fill_(-40.0)
    net = nn.Sequential(nn.Identity(), first, nn.ReLU(), second, nn.ReLU())
    ds = line_breakpoints(net, A, "0", V, (-3.0, 3.0))
    want = (40 + c[:40].sum().item()) / 40
    assert c[39] <= want <= c[40]
    np.testing.assert_allclose(breakpoints_at(ds, 0, "2"), c.numpy(), atol=1e-12)
    late = breakpoints_at(ds, 0, "4")
    np.testing.assert_allclose(late[~np.isin(late, breakpoints_at(ds, 0, "2"))], [want], atol=1e-12)


@pytest.mark.parametrize("n", [1, 5, 33, 100])
@pytest.mark.parametrize("even", [True, False])
def test_start_values_equal_a_plain_running_sum(n: int, even: bool) -> None:
    # each piece's start value: its anchor's value plus (t1 - t0)·d of every piece in between,
    # summed one piece at a time in order (anchors every ANCHOR_EVERY rows, or scattered)
    gen = torch.Generator().manual_seed(n)
    t0 = torch.sort(torch.rand(n, generator=gen, dtype=torch.float64)).values
    t1 = t0 + torch.rand(n, generator=gen, dtype=torch.float64)
    picks = torch.randint(0, n, (max(1, n // 20),), generator=gen)
    sample = torch.zeros(n, dtype=torch.long)
    anchor = _anchors(sample) if even else torch.unique(torch.cat([torch.tensor([0]), picks]))
    pieces = _Pieces(sample, t0, t1, anchor, {})
    d = torch.randn(n, 3, 4, 4, generator=gen, dtype=torch.float64)
    p = torch.randn(len(anchor), 3, 4, 4, generator=gen, dtype=torch.float64)
    want = torch.empty_like(d)
    for row in range(n):
        block = int(torch.searchsorted(anchor, torch.tensor(row), right=True)) - 1
        acc = p[block].clone()
        for i in range(int(anchor[block]), row):
            acc = acc + d[i] * (t1[i] - t0[i])
        want[row] = acc
    assert torch.equal(_values(pieces, p, d), want)  # the same sums in the same order
