"""The add/subtract asymmetry, split exactly over the kinks that make it.

Along a + t·v a piecewise-linear segment is linear between breakpoints t_b, where one relu or
maxpool unit changes state and the output's slope jumps. For a readout linear in the output,
r = w·f(a + t·v), with slope jump Δ_b = w·(slope after − slope before) at t_b, the even part is

    E(t) = r(t) + r(−t) − 2·r(0) = Σ_{|t_b| < |t|} Δ_b·(|t| − |t_b|)

(when 0 is not itself a breakpoint), so the asymmetry splits exactly by layer, channel and position
of the unit that turned: :func:`kink_attribution` returns every Δ_b with its unit, and
:func:`even_from_kinks` sums them into E(t), in total or per layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import xarray as xr
from jaxtyping import Float
from torch import Tensor, nn

from hookdiff.analysis._chain import Chain, build_chain, prepare
from hookdiff.analysis.breakpoints import _check_piecewise, walk_line
from hookdiff.errors import ShapeMismatchError
from hookdiff.segments import as_segmented, output_of

__all__ = ["even_from_kinks", "kink_attribution"]


def kink_attribution(
    model: nn.Module,
    activations: Float[Tensor, "batch ..."],
    hook: str,
    vector: Float[Tensor, ...],
    t_max: float,
    *,
    weights: Float[Tensor, "... out"],
    depth: str | None = None,
    context: Mapping[str, Tensor] | None = None,
    max_pieces: int | None = None,
) -> xr.Dataset:
    """Every breakpoint of r = w·f_depth(a + t·v) in (−t_max, t_max), with its slope jump Δ_b.

    Args:
        model: A piecewise-linear segmented model (the maze agent, an ``nn.Sequential``).
        activations: B activations a at ``hook``.
        hook: The steering point.
        vector: v (one for all samples, or one per sample).
        t_max: The walk covers (−t_max, t_max).
        weights: w, the readout's weights on the flattened output at ``depth``: ``(out,)`` for
            every sample or ``(B, out)``, e.g. the gradient of a log-odds at t = 0.
        depth: A hook point after ``hook`` (default the model's output, e.g. the policy logits).
        context: Activations before ``hook`` that the segment reads.
        max_pieces: The walk's memory budget (see :func:`hookdiff.analysis.line_breakpoints`).

    Returns:
        A Dataset over ``breakpoint``: ``t``, ``sample``, ``layer``, ``unit`` (flat within the
        layer), ``channel`` / ``row`` / ``col`` (−1 where the layer has no such axis), ``delta``
        (Δ_b) and ``kink``; attrs hook, depth, t_max.

    Example:
        >>> net = nn.Sequential(nn.Identity(), nn.ReLU())
        >>> ds = kink_attribution(net, torch.tensor([[1.0, -2.0]]), "0", torch.ones(2), 3.0,
        ...                       weights=torch.ones(2))
        >>> ds["t"].values.tolist(), ds["delta"].values.tolist()   # each unit turns on
        ([-1.0, 2.0], [1.0, 1.0])
    """
    segmented = as_segmented(model)
    depth = depth or output_of(segmented)[0]
    chain = build_chain(model, hook, [depth])
    _check_piecewise(chain)
    a, v, ctx = prepare(chain, activations, vector, context)
    walk = walk_line(
        chain, a, v, ctx, -float(t_max), float(t_max), max_pieces=max_pieces, slope_jumps=True
    )
    w = _weights(weights, a.shape[0], walk.jump.shape[1])
    delta = np.einsum("bo,bo->b", walk.jump, w[walk.sample]) if len(walk.t) else np.zeros(0)
    shapes = _layer_shapes(chain, a, ctx)
    where = _unravel(walk.unit, [shapes[walk.layers[i]] for i in walk.layer])
    return xr.Dataset(
        {
            "t": ("breakpoint", walk.t),
            "sample": ("breakpoint", walk.sample.astype(np.int64)),
            "layer": ("breakpoint", np.asarray([walk.layers[i] for i in walk.layer], dtype=str)),
            "unit": ("breakpoint", walk.unit.astype(np.int64)),
            "channel": ("breakpoint", where[0]),
            "row": ("breakpoint", where[1]),
            "col": ("breakpoint", where[2]),
            "delta": ("breakpoint", delta),
            "kink": ("breakpoint", walk.kink.astype(bool)),
        },
        attrs={"hook": chain.hook, "depth": depth, "t_max": float(t_max), "samples": a.shape[0]},
    )


def even_from_kinks(
    attribution: xr.Dataset, ts: Sequence[float] | np.ndarray, by: str | None = None
) -> xr.DataArray:
    """E(t) = Σ_{|t_b| < t} Δ_b·(t − |t_b|) per sample for every t > 0, in total or per ``by``.

    Args:
        attribution: The output of :func:`kink_attribution`.
        ts: Positive coefficients (at most the walk's ``t_max``).
        by: ``None`` for the total, or a breakpoint variable to group by (``"layer"``,
            ``"channel"``, ...).

    Returns:
        ``(sample, t_pos)`` or ``(sample, t_pos, <by>)``.

    Example:
        >>> net = nn.Sequential(nn.Identity(), nn.ReLU())
        >>> kinks = kink_attribution(net, torch.tensor([[1.0, -2.0]]), "0", torch.ones(2), 3.0,
        ...                          weights=torch.ones(2))
        >>> even_from_kinks(kinks, [0.5, 2.5]).values.tolist()  # r(t) + r(-t) - 2 r(0)
        [[0.0, 2.0]]
    """
    t = np.asarray(ts, dtype=np.float64)
    if (t <= 0).any() or (t > attribution.attrs["t_max"]).any():
        raise ShapeMismatchError(
            f"ts must lie in (0, t_max = {attribution.attrs['t_max']}]; got {t.tolist()}"
        )
    dist = np.abs(attribution["t"].values)
    share = np.clip(t[None, :] - dist[:, None], 0.0, None) * attribution["delta"].values[:, None]
    sample = attribution["sample"].values
    n = attribution.attrs["samples"]
    coords: dict[str, object] = {"sample": np.arange(n), "t_pos": t}
    if by is None:
        total = np.zeros((n, len(t)))
        np.add.at(total, sample, share)
        dims: tuple[str, ...] = ("sample", "t_pos")
    else:
        labels, group = np.unique(attribution[by].values, return_inverse=True)
        total = np.zeros((n, len(t), len(labels)))
        np.add.at(total, (sample, slice(None), group), share)
        dims, coords[by] = ("sample", "t_pos", by), labels
    return xr.DataArray(total, dims=dims, coords=coords, name="even").assign_attrs(
        long_name="even part E(t) = r(t) + r(-t) - 2 r(0), summed from the kinks"
    )


def _weights(weights: Tensor, b: int, out: int) -> np.ndarray:
    w = torch.as_tensor(weights).double().cpu().numpy()
    w = np.broadcast_to(w, (b, w.shape[-1])) if w.ndim == 1 else w.reshape(w.shape[0], -1)
    if w.shape != (b, out):
        raise ShapeMismatchError(
            f"weights of shape {tuple(np.shape(weights))} do not fit the output: expected ({out},) "
            f"or ({b}, {out}) (the flattened output at the depth, per sample)"
        )
    return w


def _layer_shapes(chain: Chain, a: Tensor, ctx: Mapping[str, Tensor]) -> dict[str, tuple]:
    """Per relu / maxpool layer, the per-sample shape its units index into."""
    with torch.no_grad():
        _, patterns = chain.run(a[:1], {n: x[:1] for n, x in ctx.items()}, True)
    return {name: tuple(p.shape[1:]) for name, p in patterns.items()}


def _unravel(unit: np.ndarray, shapes: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(channel, row, col) of each flat unit; −1 where the layer's shape has no such axis."""
    out = np.full((3, len(unit)), -1, dtype=np.int64)
    for i, (u, shape) in enumerate(zip(unit, shapes)):
        idx = np.unravel_index(int(u), shape)
        out[: len(idx), i] = idx
    return out[0], out[1], out[2]
