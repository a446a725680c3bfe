"""Eval-mode BatchNorm is an affine op the exact line walk follows; in training mode it is an error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import hookdiff
from hookdiff.errors import TrainingModeError


def _net_with_bn(seed: int = 0) -> nn.Sequential:
    gen = torch.Generator().manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64, 6),
        nn.BatchNorm1d(6),
        nn.ReLU(),
        nn.Linear(6, 3),
    )
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        for bn in (net[1], net[6]):
            bn.running_mean.copy_(torch.randn(bn.num_features, generator=gen))
            bn.running_var.copy_(torch.rand(bn.num_features, generator=gen) + 0.5)
    return net.double().eval()


def _folded(net: nn.Sequential) -> nn.Sequential:
    """The same function without BatchNorm: each one folded into the layer before it."""
    conv, bn2, lin, bn1 = net[0], net[1], net[5], net[6]
    out = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64, 6),
        nn.ReLU(),
        nn.Linear(6, 3),
    ).double()
    with torch.no_grad():
        for src, bn, dst, shape in (
            (conv, bn2, out[0], (-1, 1, 1, 1)),
            (lin, bn1, out[4], (-1, 1)),
        ):
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            dst.weight.copy_(src.weight * scale.reshape(shape))
            dst.bias.copy_((src.bias - bn.running_mean) * scale + bn.bias)
        out[6].load_state_dict(net[8].state_dict())
    return out.eval()


def test_eval_batchnorm_breakpoints_equal_the_folded_network():
    net = _net_with_bn()
    folded = _folded(net)
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(net(x), folded(x))  # the folding is right
    v = torch.randn(4, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    a = net[0](x).detach()
    ds = hookdiff.line_breakpoints(net, a, "0", v, (-3.0, 3.0))
    # the same line after the folded conv: BN(a + t·v) = BN(a) + t·(scale·v)
    scale = (net[1].weight / torch.sqrt(net[1].running_var + net[1].eps)).detach()
    a_f, v_f = net[1](a).detach(), v * scale.reshape(-1, 1, 1)
    ref = hookdiff.line_breakpoints(folded, a_f, "0", v_f, (-3.0, 3.0))
    assert len(ds.breakpoint_t) > 3
    np.testing.assert_allclose(ds.breakpoint_t.values, ref.breakpoint_t.values, atol=1e-9)
    np.testing.assert_array_equal(ds.breakpoint_sample.values, ref.breakpoint_sample.values)
    np.testing.assert_array_equal(
        ds.n_pieces.sel(depth="8").values, ref.n_pieces.sel(depth="6").values
    )


def test_nonlinearity_walks_an_eval_batchnorm_net_by_default():
    net = _net_with_bn()
    a = net[0](torch.rand(2, 3, 8, 8, dtype=torch.float64)).detach()
    ds = hookdiff.nonlinearity(net, a, "0", torch.ones(4, 8, 8, dtype=torch.float64), [-1, 0, 1])
    assert ds.attrs["breakpoints"] == 1 and ds.attrs["breakpoints_skipped"] == ""
    assert "n_pieces" in ds


def test_training_mode_batchnorm_is_an_error_in_the_walk():
    net = _net_with_bn().train()
    a = net[0](torch.rand(2, 3, 8, 8, dtype=torch.float64)).detach()
    v = torch.ones(4, 8, 8, dtype=torch.float64)
    with pytest.raises(TrainingModeError, match=r"model\.eval\(\)"):
        hookdiff.line_breakpoints(net, a, "0", v, (-1.0, 1.0))
    with pytest.raises(TrainingModeError, match="'1'"):
        hookdiff.nonlinearity(net, a, "0", v, [-1, 0, 1])  # the default does not skip this
