"""Activation-pattern flips: which relu / maxpool units change state between a and a + t·v.

A piecewise-linear segment is affine in t exactly as long as no relu changes sign and no maxpool
window changes its argmax, so the fraction of units whose state differs from the unsteered one is
the most direct measure of "how far from linear" a steered input has gone, per layer. The state of
a relu unit is ``input > 0``; the state of a maxpool output unit is the index of the argmax within
its window (from ``F.max_pool2d(..., return_indices=True)``). The pass that computes diff(t) in
:mod:`hookdiff.analysis.linear` records these patterns at the same time; :func:`pattern_flips`
is the standalone entry point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import xarray as xr
from jaxtyping import Float
from torch import Tensor, nn

from hookdiff.analysis._attrs import describe_variable
from hookdiff.analysis._chain import build_chain, line_batch, prepare
from hookdiff.ops import tile_rows

__all__ = ["flip_fractions", "pattern_flips"]


def flip_fractions(
    patterns: Mapping[str, Tensor],
    baseline: Mapping[str, Tensor],
    layers: Sequence[str],
    k: int,
    b: int,
) -> Tensor:
    """Fraction of units per layer whose state differs from the baseline: ``(k, b, layer)``.

    Args:
        patterns: Per layer, the states of the K·B steered rows (coefficient-major).
        baseline: Per layer, the states of the B unsteered rows.
        layers: Layer names, the order of the last axis.
        k: Number of coefficients in the chunk.
        b: Number of samples.

    Example:
        >>> p = {"r": torch.tensor([[True, False], [True, True]])}
        >>> flip_fractions(p, {"r": torch.tensor([[True, False]])}, ["r"], 2, 1)[:, 0, 0].tolist()
        [0.0, 0.5]
    """
    out = []
    for name in layers:
        steered = patterns[name].reshape(k, b, -1)
        base = baseline[name].reshape(1, b, -1)
        out.append((steered != base).double().mean(dim=-1))
    if not out:
        return torch.zeros(k, b, 0, dtype=torch.float64)
    return torch.stack(out, dim=-1)


def pattern_flips(
    model: nn.Module,
    activations: Float[Tensor, "batch ..."],
    hook: str,
    vector: Float[Tensor, "*shape"],
    ts: Sequence[float] | Tensor | np.ndarray,
    *,
    depths: Sequence[str | int] | None = None,
    context: Mapping[str, Tensor] | None = None,
    max_rows: int | None = None,
) -> xr.DataArray:
    """Fraction of relu / maxpool units whose state differs between a and a + t·v.

    Args:
        model: The maze agent, an ``nn.Sequential``, or a HookedTransformer (no tracked layers).
        activations: B activations at ``hook``.
        hook: The intervention point.
        vector: v, the activation's shape without the batch dimension.
        ts: The coefficients t.
        depths: Restrict the segment to these depths (its layers end at the deepest).
        context: Activations produced before ``hook`` that the segment reads.
        max_rows: At most this many rows per forward (default 2048).

    Returns:
        ``flip_fraction`` with dims ``(sample, t, layer)`` and coord ``layer_kind``.

    Example:
        >>> from hookdiff.tiny import make_tiny_convnet
        >>> net = make_tiny_convnet()
        >>> a = net[0](torch.rand(2, 3, 8, 8))
        >>> pattern_flips(net, a, "0", torch.randn(4, 8, 8), [-1.0, 0.0, 1.0]).dims
        ('sample', 't', 'layer')
    """
    chain = build_chain(model, hook, depths)
    a, v, ctx = prepare(chain, activations, vector, context)
    t = torch.as_tensor(np.asarray(ts, dtype=np.float64)).to(a.device, a.dtype).reshape(-1)
    b = a.shape[0]
    layers = [name for name, _ in chain.layers]
    rows = max_rows or 2048
    per = max(1, rows // max(b, 1))
    with torch.no_grad():
        _, base = chain.run(a, ctx, True)
        parts = []
        for i in range(0, len(t), per):
            c = t[i : i + per]
            k = len(c)
            x = line_batch(a, v, c)
            _, pats = chain.run(x, {n: tile_rows(c_, k) for n, c_ in ctx.items()}, True)
            parts.append(flip_fractions(pats, base, layers, k, b))
    frac = torch.cat(parts, dim=0).permute(1, 0, 2).cpu().numpy()
    da = xr.DataArray(
        frac,
        dims=("sample", "t", "layer"),
        coords={
            "sample": np.arange(b),
            "t": t.double().cpu().numpy(),
            "layer": np.asarray(layers, dtype=str),
            "layer_kind": ("layer", np.asarray([k_ for _, k_ in chain.layers], dtype=str)),
        },
        name="flip_fraction",
        attrs={"hook": hook, **describe_variable("flip_fraction")},
    )
    for name, coord in da.coords.items():
        coord.attrs.update(describe_variable(str(name)))
    return da
