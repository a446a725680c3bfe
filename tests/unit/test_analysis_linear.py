"""analysis parts 1-5 (diff, JVP, residual, radius, asymmetry, flips) against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import hookdiff
from hookdiff.analysis import linear_radius, linear_response, nonlinearity, pattern_flips
from hookdiff.analysis._chain import build_chain
from hookdiff.analysis.linear import jvp_all_depths
from hookdiff.errors import NotPiecewiseLinearError, ShapeMismatchError, UnknownHookError

TS = [-2.0, -0.5, -0.01, 0.0, 0.01, 0.5, 2.0]


def _seeded(net: nn.Module, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return net


def test_linear_model_has_zero_residual_and_asymmetry() -> None:
    net = _seeded(
        nn.Sequential(nn.Identity(), nn.Linear(4, 6), nn.Linear(6, 5), nn.Linear(5, 3)).double()
    )
    a = torch.randn(3, 4, dtype=torch.float64)
    ds = linear_response(net, a, "0", torch.randn(4, dtype=torch.float64), TS)
    res = ds["residual"].values
    assert np.isnan(res[:, TS.index(0.0)]).all()  # t = 0: undefined, reported as NaN
    assert np.nanmax(np.abs(res)) < 1e-12
    assert np.nanmax(ds["asymmetry"].values) < 1e-12
    assert list(ds["t_pos"].values) == [0.01, 0.5, 2.0]
    assert np.isnan(ds["linear_radius_pos"].values).all()  # never nonlinear on the grid
    # atol: at t = 0 the batched and the unbatched forward may differ by float rounding (~1e-14)
    np.testing.assert_allclose(
        ds["diff_norm"].values, ds["linear_norm"].values, rtol=1e-12, atol=1e-12
    )


def test_relu_residual_asymmetry_and_flips_by_hand() -> None:
    # f(x) = relu(x) on one unit, a = 1, v = 1: diff(t) = max(1 + t, 0) - 1, L(t) = t
    net = nn.Sequential(nn.Identity(), nn.ReLU()).double()
    a = torch.ones(1, 1, dtype=torch.float64)
    ts = [-3.0, -2.0, -1.5, -0.5, 0.5, 1.5, 2.0, 3.0]
    ds = linear_response(net, a, "0", torch.ones(1, dtype=torch.float64), ts, threshold=0.3)
    diff = np.maximum(1 + np.array(ts), 0) - 1
    expected = np.abs(diff - np.array(ts)) / np.maximum(np.abs(diff), np.abs(ts))
    np.testing.assert_allclose(ds["residual"].values[0, :, 0], expected, atol=1e-15)
    # residual at t=-1.5: 0.5/1.5 = 1/3 > 0.3 -> radius 1.5 on the negative side; none on the positive
    assert ds["linear_radius_neg"].item() == 1.5
    assert np.isnan(ds["linear_radius_pos"].item())
    # even part |diff(t) + diff(-t)| / (|diff(t)| + |diff(-t)|) for t = 2: |2 - 1| / (2 + 1)
    asym = ds["asymmetry"].sel(t_pos=2.0).item()
    assert asym == pytest.approx(1 / 3)
    flips = ds["flip_fraction"].values[0, :, 0]
    np.testing.assert_array_equal(flips, (np.array(ts) < -1).astype(float))
    signed = ds["signed_logits"].sel(t_pos=2.0).values[0]  # the last child is the output
    np.testing.assert_allclose(signed[:, 0], [2.0, -1.0])


def test_linear_radius_helper() -> None:
    r = np.array([[0.5], [0.2], [np.nan], [0.05], [0.2], [0.01]])
    pos, neg = linear_radius(r, np.array([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0]), 0.1)
    assert pos.tolist() == [1.0] and neg.tolist() == [1.0]


def test_jvp_equals_central_finite_differences() -> None:
    net = _seeded(
        nn.Sequential(nn.Identity(), nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 4), nn.Tanh())
    ).double()
    a = torch.randn(3, 5, dtype=torch.float64)
    v = torch.randn(5, dtype=torch.float64)
    chain = build_chain(net, "0", None)
    _, tangents = jvp_all_depths(chain, a, v, {})
    h = 1e-5
    for depth, jv in zip(chain.depths, tangents, strict=True):
        f = hookdiff.downstream(net, "0", int(depth))
        fd = (f(a + h * v) - f(a - h * v)) / (2 * h)
        torch.testing.assert_close(jv, fd, rtol=1e-7, atol=1e-9)
    # and the linear_norm of the Dataset is |t|·‖J v‖
    ds = linear_response(net, a, "0", v, [-0.3, 0.3], flips=False)
    want = 0.3 * tangents[-1].norm(dim=1).numpy()
    np.testing.assert_allclose(ds["linear_norm"].sel(depth="4").values[:, 1], want, rtol=1e-12)


def test_diff_equals_independent_forward_in_chunks() -> None:
    net = _seeded(nn.Sequential(nn.Identity(), nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))
    net = net.double()
    a = torch.randn(5, 3, dtype=torch.float64)
    v = torch.randn(3, dtype=torch.float64)
    ds = linear_response(net, a, "0", v, TS, max_rows=7)  # chunks of one coefficient pair
    f = hookdiff.downstream(net, "0", 3)
    for k, t in enumerate(TS):
        want = (f(a + t * v) - f(a)).detach().numpy()
        np.testing.assert_allclose(ds["diff_logits"].values[:, k], want, atol=1e-12)
        np.testing.assert_allclose(
            ds["diff_norm"].sel(depth="3").values[:, k], np.linalg.norm(want, axis=1), atol=1e-12
        )


def test_transformer_diff_jvp_asymmetry(hookdiff_tiny_transformer) -> None:
    model = hookdiff_tiny_transformer
    toks = torch.randint(0, 23, (2, 5), generator=torch.Generator().manual_seed(0))
    hook = "blocks.0.hook_resid_post"
    _, cache = model.run_with_cache(toks)
    a = cache[hook]
    v = torch.randn(a.shape[1:], generator=torch.Generator().manual_seed(1))
    ts = [-1.0, -1e-2, 0.0, 1e-2, 1.0]
    ds = nonlinearity(model, a, hook, v, ts, breakpoints=False)
    assert list(ds["depth"].values) == ["blocks.1.hook_resid_post", "logits"]
    sweep = hookdiff.sweep(model, toks, hook, v, ts)  # independent: TL hooks on the full model
    diff = sweep["output"].values - sweep["output_baseline"].values[None]
    np.testing.assert_allclose(
        ds["diff_logits"].values, diff.transpose(1, 0, 2, 3), rtol=1e-4, atol=1e-4
    )
    # near t = 0 the JVP predicts diff; at t = ±1 it does not; asymmetry is defined and in [0, 1]
    assert np.nanmax(ds["residual"].sel(t=[-1e-2, 1e-2]).values) < 0.05
    assert np.nanmin(ds["residual"].sel(t=[-1.0, 1.0]).values) > 0.05
    asym = ds["asymmetry"].values
    assert np.isfinite(asym).all() and (asym >= 0).all() and (asym <= 1).all()
    assert ds["asymmetry"].sel(t_pos=1.0).min() > ds["asymmetry"].sel(t_pos=1e-2).max()
    assert ds.sizes["layer"] == 0
    with pytest.raises(NotPiecewiseLinearError, match="breakpoints=False"):
        nonlinearity(model, a, hook, v, ts, breakpoints=True)
    default = nonlinearity(model, a, hook, v, ts)  # skips the walk, and says so
    assert default.attrs["breakpoints"] == 0
    assert "not piecewise linear" in default.attrs["breakpoints_skipped"]
    assert "n_pieces" not in default


def test_pattern_flips_on_tiny_convnet(hookdiff_tiny_convnet) -> None:
    net = hookdiff_tiny_convnet
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    a = net[0](x).detach()
    v = torch.randn(4, 8, 8, generator=torch.Generator().manual_seed(2))
    ts = [-1.0, 0.0, 0.5]
    flips = pattern_flips(net, a, "0", v, ts)
    assert list(flips["layer"].values) == ["1", "2", "4"]
    assert list(flips["layer_kind"].values) == ["relu", "maxpool", "relu"]
    for k, t in enumerate(ts):
        pre = a + t * v
        want = ((pre > 0) != (a > 0)).double().mean(dim=(1, 2, 3))
        np.testing.assert_allclose(flips.sel(layer="1").values[:, k], want.numpy())
        _, i0 = nn.functional.max_pool2d(net[1](a), 2, return_indices=True)
        _, i1 = nn.functional.max_pool2d(net[1](pre), 2, return_indices=True)
        want = (i0 != i1).double().mean(dim=(1, 2, 3))
        np.testing.assert_allclose(flips.sel(layer="2").values[:, k], want.numpy())


def test_bad_inputs_raise_clear_errors(hookdiff_tiny_convnet) -> None:
    a = torch.rand(2, 4, 8, 8)
    with pytest.raises(ShapeMismatchError, match="per-row shape"):
        linear_response(hookdiff_tiny_convnet, a, "0", torch.ones(3), [1.0])
    with pytest.raises(UnknownHookError, match="'9' is not a depth.*valid: '1'"):
        linear_response(hookdiff_tiny_convnet, a, "0", torch.ones(4, 8, 8), [1.0], depths=["9"])
