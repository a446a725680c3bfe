"""A user's conv net with its own forward and an eval-mode BatchNorm, through hookdiff's public API."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from user_models import MyConvNet

import hookdiff
from hookdiff import errors


@pytest.fixture
def net():
    return MyConvNet().eval()


def _inputs(n: int = 3) -> torch.Tensor:
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def _v() -> torch.Tensor:
    return torch.randn(6, 8, 8, generator=torch.Generator().manual_seed(1))


def test_sweep_in_training_mode_warns_and_eval_rows_are_independent(net):
    x = _inputs()
    with pytest.warns(errors.TrainingModeWarning, match=r"BatchNorm.*model\.eval\(\)"):
        leaky = hookdiff.sweep(net.train(), x, "conv", _v(), [-2.0, 0.0, 2.0])
    net.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error", errors.TrainingModeWarning)
        ds = hookdiff.sweep(net, x, "conv", _v(), [-2.0, 0.0, 2.0])
    plain = net(x).detach().numpy()
    np.testing.assert_allclose(ds.output.sel(coeff=0.0).values, plain, atol=1e-5)
    assert (
        np.abs(leaky.output.sel(coeff=0.0).values - plain).max() > 1e-3
    )  # what the warning is about


def test_steer_with_many_coefficients_equals_one_forward_each(net):
    x, coeffs = _inputs(), [-1.0, 0.5, 3.0]
    with hookdiff.steer(net, "conv", _v(), coeffs):
        batched = net(hookdiff.tile_coeffs(x, coeffs)).reshape(3, 3, 4)
    for k, t in enumerate(coeffs):
        h = net.conv.register_forward_hook(lambda m, i, o, t=t: o + t * _v())  # independent
        try:
            torch.testing.assert_close(batched[k], net(x))
        finally:
            h.remove()


def test_downstream_runs_the_declared_segment(net):
    x = _inputs()
    f = hookdiff.downstream(net, "conv", 5)
    assert repr(f) == "Segment(MyConvNet: 'conv' -> 'fc', n=5)"
    with hookdiff.capture(net, ["conv"]) as acts:
        out = net(x)
    torch.testing.assert_close(f(acts["conv"]), out)
    with pytest.raises(errors.SegmentError):
        hookdiff.downstream(net, "conv", 6)


def _patterns(net: MyConvNet, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Relu signs and maxpool argmaxes after the conv activation ``a``, by the model's modules."""
    pre = net.bn(a)
    _, idx = F.max_pool2d(torch.relu(pre), 2, return_indices=True)
    return pre > 0, idx


def test_nonlinearity_walks_the_batchnorm_net_exactly_by_default(net):
    x = _inputs(2)
    a = net.conv(x).detach()
    v = _v()
    ds = hookdiff.nonlinearity(net, a, "conv", v, np.linspace(-1, 1, 9))
    assert ds.attrs["breakpoints"] == 1 and ds.attrs["breakpoints_skipped"] == ""
    bps = hookdiff.breakpoints_at(ds, 0, "fc")
    assert len(bps) > 5
    # independent: the activation pattern is constant inside each piece, and changes across
    # every breakpoint (read by the model's own modules, at points a third into each piece)
    edges = np.concatenate([[-1.0], bps, [1.0]])
    with torch.no_grad():
        pats = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            inner = [lo + (hi - lo) / 3, lo + 2 * (hi - lo) / 3]
            p = [_patterns(net, a[:1] + float(t) * v) for t in inner]
            assert all(torch.equal(p[0][i], p[1][i]) for i in range(2)), (lo, hi)
            pats.append(p[0])
    for before, after in zip(pats[:-1], pats[1:]):
        assert not (torch.equal(before[0], after[0]) and torch.equal(before[1], after[1]))
    for name in ds.variables:
        assert "long_name" in ds[name].attrs, name


def test_training_mode_batchnorm_stops_the_analysis(net):
    a = net.conv(_inputs(2)).detach()
    with pytest.raises(errors.TrainingModeError, match="'bn'"):
        hookdiff.nonlinearity(net.train(), a, "conv", _v(), [-1.0, 0.0, 1.0])


def test_hook_mistakes(net):
    with pytest.raises(errors.HookTypeError):
        hookdiff.capture(net, [["conv"]])
    with pytest.raises(errors.UnknownHookError, match="'conv'"):
        hookdiff.steer(net, "cnov", _v())
