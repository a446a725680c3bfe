"""line_response and even_odd against hand-solved cases, the JVP and each other (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn
from transformer_lens import HookedTransformer

from hookdiff.analysis import (
    cut_scan,
    even_from_kinks,
    even_odd,
    freezable,
    kink_attribution,
    line_response,
    linear_response,
    readout_onset,
    valid_cuts,
)
from hookdiff.errors import InterventionError
from hookdiff.tiny import make_tiny_transformer

TS = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]


def _relu_net() -> nn.Sequential:
    """y = w·relu(x) + c on two units: every value below is solved by hand."""
    net = nn.Sequential(nn.Identity(), nn.ReLU(), nn.Linear(2, 1)).double()
    with torch.no_grad():
        net[2].weight.copy_(torch.tensor([[2.0, -1.0]]))
        net[2].bias.fill_(0.5)
    return net


def _convnet() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Identity(),
        nn.Conv2d(2, 3, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(3, 3, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(12, 4),
    ).double()


def test_exact_and_frozen_relu_by_hand() -> None:
    net = _relu_net()
    a = torch.tensor([[1.0, -1.0]], dtype=torch.float64)  # unit 0 on, unit 1 off at t = 0
    v = torch.tensor([1.0, 1.0], dtype=torch.float64)
    exact = line_response(net, a, "0", v, TS, depth="2").values[:, 0, 0]
    want = [2 * max(1 + t, 0) - max(-1 + t, 0) + 0.5 for t in TS]
    np.testing.assert_allclose(exact, want)
    frozen = line_response(net, a, "0", v, TS, depth="2", freeze=["1"]).values[:, 0, 0]
    np.testing.assert_allclose(frozen, [2 * (1 + t) + 0.5 for t in TS])  # mask (1, 0) held


def test_linearize_and_symmetrize_by_hand() -> None:
    net = _relu_net()
    a = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
    v = torch.tensor([1.0, 1.0], dtype=torch.float64)
    # cut after the relu: x_c(t) = relu(a + t v); J_c v = (1, 0)
    lin = line_response(net, a, "0", v, TS, depth="2", cut="1", variant="linearize")
    np.testing.assert_allclose(lin.values[:, 0, 0], [2 * (1 + t) + 0.5 for t in TS])
    sym = line_response(net, a, "0", v, TS, depth="2", cut="1", variant="symmetrize")
    relu = lambda x: max(x, 0.0)  # noqa: E731
    want = [
        2 * (1 + 0.5 * (relu(1 + t) - relu(1 - t)))
        - (0 + 0.5 * (relu(-1 + t) - relu(-1 - t)))
        + 0.5
        for t in TS
    ]
    np.testing.assert_allclose(sym.values[:, 0, 0], want)
    parts = even_odd(sym)  # symmetrised at the last nonlinearity: no even part left downstream
    np.testing.assert_allclose(parts["even"].values, 0.0, atol=1e-12)
    exact = even_odd(line_response(net, a, "0", v, TS, depth="2"))
    np.testing.assert_allclose(parts["odd"].values, exact["odd"].values)


def test_linearize_at_the_depth_is_the_jvp() -> None:
    net = _convnet()
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(3, 2, 4, 4, generator=gen, dtype=torch.float64)
    v = torch.randn(2, 4, 4, generator=gen, dtype=torch.float64)
    lin = line_response(net, a, "0", v, TS, depth="7", cut="7", variant="linearize").values
    with torch.no_grad():
        base = net[1:](a)
    _, jv = torch.func.jvp(lambda x: net[1:](x), (a,), (v.expand_as(a),))
    want = base[None] + torch.tensor(TS, dtype=torch.float64)[:, None, None] * jv[None]
    np.testing.assert_allclose(lin, want.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_freezing_every_layer_up_to_the_cut_equals_linearizing_there() -> None:
    net = _convnet()
    gen = torch.Generator().manual_seed(2)
    a = torch.randn(3, 2, 4, 4, generator=gen, dtype=torch.float64)
    v = torch.randn(2, 4, 4, generator=gen, dtype=torch.float64)
    assert freezable(net, "0", "7") == ["2", "3", "5"]
    for cut, frozen in (("3", ["2", "3"]), ("6", ["2", "3", "5"])):
        lin = line_response(net, a, "0", v, TS, depth="7", cut=cut, variant="linearize")
        fro = line_response(net, a, "0", v, TS, depth="7", freeze=frozen)
        np.testing.assert_allclose(lin.values, fro.values, rtol=1e-10, atol=1e-12)
    exact = line_response(net, a, "0", v, TS, depth="7")
    assert not np.allclose(exact.values, fro.values)  # the comparison could fail


def _float64_transformer() -> HookedTransformer:
    return make_tiny_transformer(seed=0, dtype=torch.float64)


def test_transformer_frozen_state_makes_the_stream_affine() -> None:
    model = _float64_transformer()
    tokens = torch.randint(0, 23, (2, 5), generator=torch.Generator().manual_seed(0))
    hook = "blocks.0.hook_resid_post"
    _, cache = model.run_with_cache(tokens)
    a = cache[hook]
    v = torch.randn(a.shape[1:], generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    held = freezable(model, hook, "logits")
    assert held == [
        "blocks.1.ln1.hook_scale",
        "blocks.1.attn.hook_pattern",
        "blocks.1.ln2.hook_scale",
        "blocks.1.mlp.hook_post",
        "ln_final.hook_scale",
    ]
    fro = line_response(model, a, hook, v, TS, depth="logits", freeze=held)
    r = fro.sel(t=0.0).values
    slope = _hand_frozen_jvp(model, cache, a, v)  # independent: TL hooks written here
    for t in TS:
        np.testing.assert_allclose(fro.sel(t=t).values, r + t * slope, rtol=1e-9, atol=1e-9)
    exact = line_response(model, a, hook, v, TS, depth="logits")
    np.testing.assert_allclose(exact.sel(t=0.0).values, r, rtol=1e-12, atol=1e-12)
    assert np.abs(exact.values - fro.values).max() > 1e-3  # the comparison could fail


def _hand_frozen_jvp(model: HookedTransformer, cache, a: torch.Tensor, v: torch.Tensor):
    """J·v of block 1 + unembed with pattern, LN scales and GELU gate held at the cache's values."""
    const = ["blocks.1.ln1.hook_scale", "blocks.1.attn.hook_pattern", "blocks.1.ln2.hook_scale"]
    const.append("ln_final.hook_scale")
    pre0, post0 = cache["blocks.1.mlp.hook_pre"], cache["blocks.1.mlp.hook_post"]
    seen = {}
    hooks = [(n, lambda x, hook, n=n: cache[n]) for n in const]
    hooks.append(("blocks.1.mlp.hook_pre", lambda x, hook: seen.update(pre=x)))
    hooks.append(("blocks.1.mlp.hook_post", lambda x, hook: seen["pre"] * (post0 / pre0)))
    with model.hooks(fwd_hooks=hooks):
        _, jv = torch.func.jvp(
            lambda x: model(x, start_at_layer=1, return_type="logits"), (a,), (v.expand_as(a),)
        )
    return jv.detach().numpy()


def test_even_odd_needs_mirrors_and_zero() -> None:
    r = xr.DataArray([1.0, 2.0], dims="t", coords={"t": [1.0, 2.0]})
    with pytest.raises(ValueError, match="t = 0"):
        even_odd(r)


def test_bad_interventions_name_the_valid_choices() -> None:
    net = _convnet()
    a, v = torch.zeros(1, 3, 4, 4, dtype=torch.float64), torch.ones(3, 4, 4, dtype=torch.float64)
    assert valid_cuts(net, "1", "7") == ["2", "3", "4", "5", "6", "7"]
    with pytest.raises(InterventionError, match="closest|valid"):
        line_response(net, a, "1", v, TS, depth="7", cut="0", variant="linearize")  # upstream
    with pytest.raises(InterventionError, match="variant"):
        line_response(net, a, "1", v, TS, depth="7", cut="3", variant="linear")
    with pytest.raises(InterventionError, match="needs a cut"):
        line_response(net, a, "1", v, TS, depth="7", variant="symmetrize")
    with pytest.raises(InterventionError, match="'5'"):
        line_response(net, a, "1", v, TS, depth="7", freeze=["4"])  # a conv is not frozen


def test_kink_attribution_by_hand() -> None:
    net = nn.Sequential(nn.Identity(), nn.ReLU()).double()
    a = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    ds = kink_attribution(
        net,
        a,
        "0",
        torch.tensor([1.0, -0.5], dtype=torch.float64),
        5.0,
        weights=torch.tensor([2.0, 3.0], dtype=torch.float64),
    )
    # unit 0 turns on at t = -1 (slope 0 -> 1, weight 2); unit 1 turns off at t = -4 going
    # right (slope -0.5 -> 0, weight 3): jumps 2·1 and 3·0.5
    np.testing.assert_allclose(ds["t"].values, [-4.0, -1.0])
    np.testing.assert_allclose(ds["delta"].values, [1.5, 2.0])
    assert ds["channel"].values.tolist() == [1, 0]
    r = lambda t: 2 * max(1 + t, 0) + 3 * max(-2 - 0.5 * t, 0)  # noqa: E731
    for t in (0.5, 2.0, 4.5):
        want = r(t) + r(-t) - 2 * r(0)
        np.testing.assert_allclose(even_from_kinks(ds, [t]).values[0, 0], want)


def test_even_part_from_kinks_equals_direct_evaluation_on_a_convnet() -> None:
    net = _convnet()
    gen = torch.Generator().manual_seed(4)
    a = torch.randn(3, 2, 4, 4, generator=gen, dtype=torch.float64)
    v = torch.randn(2, 4, 4, generator=gen, dtype=torch.float64)
    w = torch.randn(3, 4, generator=gen, dtype=torch.float64)  # one readout per sample
    ds = kink_attribution(net, a, "0", v, 2.0, weights=w)
    assert len(ds["t"]) > 5
    ts = [0.3, 0.9, 1.7]
    grid = sorted({0.0, *ts, *(-t for t in ts)})
    r = (
        line_response(net, a, "0", v, grid, depth="7")
        * xr.DataArray(w.numpy(), dims=("sample", "features"))
    ).sum("features")
    direct = even_odd(r)["even"].transpose("sample", "t_pos").values
    np.testing.assert_allclose(even_from_kinks(ds, ts).values, direct, rtol=1e-9, atol=1e-9)
    by_layer = even_from_kinks(ds, ts, by="layer")
    np.testing.assert_allclose(by_layer.sum("layer").values, direct, rtol=1e-9, atol=1e-9)
    assert set(by_layer["layer"].values) <= {"2", "3", "5"}


def test_readout_residual_ignores_what_the_readout_does_not_read() -> None:
    net = _relu_net()
    with torch.no_grad():
        net[2].weight.copy_(torch.tensor([[1.0, 0.0]]))  # the readout ignores unit 1
    a = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
    v = torch.tensor([1.0, 1.0], dtype=torch.float64)
    ts = [-0.5, 0.0, 0.5, 2.0]
    ds = readout_onset(net, a, "0", v, ts, weights=torch.ones(1, dtype=torch.float64))
    # unit 1 turns on at t = 1: the relu layer's slope drifts from (1, 0) to (1, 1) ...
    np.testing.assert_allclose(ds["slope_drift"].sel(depth="1").values[0], [0.0, 0.0, 0.0, 1.0])
    # ... but the readout reads unit 0 only, which stays linear on (-1, inf)
    np.testing.assert_allclose(ds["readout_residual"].sel(depth="1", t=[-0.5, 0.5, 2.0]), 0.0)
    whole = linear_response(net, a, "0", v, ts)["residual"].sel(depth="1", t=2.0).item()
    assert whole > 0.4  # the whole-layer residual counts the ignored unit


@pytest.mark.parametrize("which", ["convnet", "transformer"])
def test_cut_scan_equals_one_line_response_per_cut(which: str) -> None:
    gen = torch.Generator().manual_seed(5)
    if which == "convnet":
        model, hook, depth = _convnet(), "0", "7"
        a = torch.randn(3, 2, 4, 4, generator=gen, dtype=torch.float64)
    else:
        model, hook, depth = _float64_transformer(), "blocks.0.hook_resid_pre", "logits"
        a = model.run_with_cache(torch.randint(0, 23, (2, 5), generator=gen))[1][hook]
    v = torch.randn(a.shape[1:], generator=gen, dtype=torch.float64)
    ts = [-1.0, 0.5, 2.0]  # mirrors and 0 need not be in the grid
    scan = cut_scan(model, a, hook, v, ts, depth=depth, max_rows=4)
    assert list(scan["variant"].values) == ["exact", "linearize", "symmetrize"]
    assert list(scan["cut"].values) == valid_cuts(model, hook, depth)
    for cut in scan["cut"].values:
        for variant in ("linearize", "symmetrize"):
            one = line_response(model, a, hook, v, ts, depth=depth, cut=cut, variant=variant)
            got = scan.sel(cut=cut, variant=variant).values
            np.testing.assert_allclose(got, one.values, rtol=1e-10, atol=1e-10)
    exact = line_response(model, a, hook, v, ts, depth=depth).values
    np.testing.assert_allclose(scan.sel(variant="exact").values[0], exact, rtol=1e-10, atol=1e-10)
