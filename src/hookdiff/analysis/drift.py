"""Size-weighted onset of nonlinearity: slope drift, and the residual in the readout's directions.

Whole-layer norms of ‖diff − L‖ are diluted by the linear skip path and count directions the
policy never reads. Two sharper measures, per depth n along a + t·v:

- slope drift ‖J_n(t)·v − J_n(0)·v‖ / ‖J_n(0)·v‖, with J_n(t)·v the exact slope of f_n at t (the
  slope of the linear piece containing t, one forward-mode JVP per row);
- the residual in the readout's directions |g_n·(diff_n − L_n)| / max(|g_n·diff_n|, |g_n·L_n|),
  with g_n = ∂(w·f_out)/∂f_n at t = 0: only the part of the response the readout w·f_out sees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import xarray as xr
from jaxtyping import Float
from torch import Tensor, nn

from hookdiff.analysis._chain import Chain, build_chain, line_batch, prepare
from hookdiff.analysis.attribution import _weights
from hookdiff.analysis.linear import jvp_all_depths
from hookdiff.errors import ShapeMismatchError
from hookdiff.ops import tile_rows

__all__ = ["readout_onset"]


def readout_onset(
    model: nn.Module,
    activations: Float[Tensor, "batch ..."],
    hook: str,
    vector: Float[Tensor, ...],
    ts: Sequence[float] | np.ndarray,
    *,
    weights: Float[Tensor, "... out"],
    depths: Sequence[str | int] | None = None,
    context: Mapping[str, Tensor] | None = None,
) -> xr.Dataset:
    """Slope drift and the readout-direction residual at every depth and t.

    Args:
        model: A segmented model (the maze agent, an ``nn.Sequential``, a HookedTransformer).
        activations: B activations a at ``hook``.
        hook: The steering point.
        vector: v (one for all samples, or one per sample).
        ts: The coefficients t.
        weights: w on the flattened model output (``(out,)`` or ``(B, out)``).
        depths: Hook points after ``hook`` (default: the path to the output; readouts skipped).
        context: Activations before ``hook`` that the segment reads.

    Returns:
        ``slope_drift`` and ``readout_residual`` over ``(sample, t, depth)``; NaN at t = 0 and
        where the denominator vanishes.

    Example:
        >>> net = nn.Sequential(nn.Identity(), nn.ReLU(), nn.Linear(2, 1))
        >>> ds = readout_onset(net, torch.tensor([[1.0, -1.0]]), "0", torch.ones(2),
        ...                    [-2.0, 0.5, 2.0], weights=torch.ones(1))
        >>> ds["slope_drift"].sel(depth="1").values.round(3).tolist()  # unit 1 turns on at t = 1
        [[1.0, 0.0, 1.0]]
    """
    chain = _chain(model, hook, depths)
    a, v, ctx = prepare(chain, activations, vector, context)
    t = torch.as_tensor(np.asarray(ts, dtype=np.float64)).reshape(-1).to(a.device, a.dtype)
    if t.numel() == 0:
        raise ShapeMismatchError("ts is empty; give at least one coefficient t")
    k, b = len(t), a.shape[0]
    line = line_batch(a, v, t)
    values, slopes = jvp_all_depths(
        chain, line, tile_rows(v, k), {n: tile_rows(x, k) for n, x in ctx.items()}
    )
    base, slope0 = jvp_all_depths(chain, a, v, ctx)
    grads = _readout_gradients(chain, a, ctx, _weights(weights, b, base[-1][0].numel()))
    drift, resid = [], []
    for d in range(len(chain.depths)):
        diff = values[d].reshape(k, b, -1) - base[d].reshape(1, b, -1)
        lin = t.reshape(k, 1, 1) * slope0[d].reshape(1, b, -1)
        js, j0 = slopes[d].reshape(k, b, -1), slope0[d].reshape(1, b, -1)
        drift.append(_ratio((js - j0).norm(dim=-1), j0.norm(dim=-1).expand(k, b)))
        g = grads[d].reshape(1, b, -1)
        seen = ((diff - lin) * g).sum(-1).abs()
        resid.append(_ratio(seen, torch.maximum((diff * g).sum(-1).abs(), (lin * g).sum(-1).abs())))
    t_np = t.double().cpu().numpy()
    coords = {"sample": np.arange(b), "t": t_np, "depth": list(chain.depths)}
    dims = ("sample", "t", "depth")
    drift_np, resid_np = (np.stack(x, -1).transpose(1, 0, 2) for x in (drift, resid))
    resid_np[:, t_np == 0] = np.nan  # diff and L are both 0 there
    return xr.Dataset(
        {
            "slope_drift": (dims, drift_np, {"long_name": "|J(t)v - J(0)v| / |J(0)v|"}),
            "readout_residual": (
                dims,
                resid_np,
                {"long_name": "|g.(diff - L)| / max(|g.diff|, |g.L|), g = d(w.f_out)/d f_n"},
            ),
        },
        coords=coords,
        attrs={"hook": chain.hook},
    )


def _chain(model: nn.Module, hook: str, depths: Sequence[str | int] | None) -> Chain:
    """The chain to the depths, the model's output last (the readout reads it)."""
    full = build_chain(model, hook, None)
    output = next(d for d in reversed(full.depths) if d not in full.readouts)
    picked = [d for d in (full.depths if depths is None else depths) if d not in full.readouts]
    picked = [d for d in picked if d != output] + [output]
    return build_chain(model, hook, picked)


def _readout_gradients(
    chain: Chain, a: Tensor, ctx: Mapping[str, Tensor], w: np.ndarray
) -> list[Tensor]:
    """g_n = ∂(w·f_out)/∂f_n at t = 0 for every depth n (one backward pass)."""
    with torch.enable_grad():
        x = a.detach().clone().requires_grad_(True)
        outs, _ = chain.run(x, ctx, False)
        weights = torch.as_tensor(np.array(w), dtype=outs[-1].dtype, device=outs[-1].device)
        r = (outs[-1].reshape(a.shape[0], -1) * weights).sum()
        grads = torch.autograd.grad(r, outs, allow_unused=True, materialize_grads=True)
    return [g.detach() for g in grads]


def _ratio(num: Tensor, den: Tensor) -> np.ndarray:
    num, den = num.double().cpu().numpy(), den.double().cpu().numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)
