"""diff(t) at every depth, its linear prediction by one forward-mode JVP, the residual, the asymmetry.

For activations a at a hook, a vector v and coefficients t, this module computes
diff_n(t) = f_n(a + t·v) − f_n(a) for every depth n (all t in coefficient-major batched forwards,
every depth captured in the same single pass of the segment), the linear prediction
L_n(t) = t·J_{f_n}(a)·v from ONE ``torch.func.jvp`` per batch (of the function returning every
depth's activation at once), the relative residual ‖diff − L‖ / max(‖diff‖, ‖L‖), the linear radius
(the smallest |t| on each side where that residual exceeds a threshold), the add/subtract asymmetry
(the even part of diff along t), and the raw diff of the behaviour depths (logits, direction
probabilities) so +t and −t can be compared sign by sign. See :mod:`hookdiff.analysis.nonlinearity`
for the meaning of every variable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import xarray as xr
from jaxtyping import Float
from torch import Tensor, nn

from hookdiff.analysis._attrs import describe
from hookdiff.analysis._chain import Chain, build_chain, line_batch, prepare
from hookdiff.analysis.patterns import flip_fractions
from hookdiff.errors import ShapeMismatchError
from hookdiff.ops import tile_rows

__all__ = ["jvp_all_depths", "linear_radius", "linear_response"]

#: Default rows per batched forward (K·B rows of the coefficient-major batch).
DEFAULT_MAX_ROWS = 2048

#: A norm below NOISE·eps(dtype)·‖f_n(a)‖ is float noise: ratios built on it are reported as NaN.
NOISE = 64.0


def jvp_all_depths(
    chain: Chain, a: Tensor, v: Tensor, context: Mapping[str, Tensor]
) -> tuple[list[Tensor], list[Tensor]]:
    """f_n(a) and J_{f_n}(a)·v for every depth of ``chain`` from one ``torch.func.jvp``.

    Args:
        chain: The downstream chain (from ``build_chain``).
        a: B activations at the hook.
        v: The direction (the activation's shape without the batch dimension).
        context: Activations before the hook that the segment reads (B rows each).

    Returns:
        ``(values, tangents)``: one tensor per depth each, in ``chain.depths`` order.

    Example:
        >>> from hookdiff.analysis._chain import build_chain
        >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
        >>> values, tangents = jvp_all_depths(build_chain(net, "0", None), torch.ones(4, 3),
        ...                                   torch.ones(3), {})
        >>> [t.shape for t in tangents]
        [torch.Size([4, 3]), torch.Size([4, 1])]
    """

    def f(x: Tensor) -> tuple[Tensor, ...]:
        return tuple(chain.run(x, context, False)[0])

    values, tangents = torch.func.jvp(f, (a,), (v.expand_as(a).contiguous(),))
    return [x.detach() for x in values], [x.detach() for x in tangents]


def linear_radius(
    residual: np.ndarray, ts: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Smallest t > 0 and smallest |t| (t < 0) where ``residual`` exceeds ``threshold``.

    Args:
        residual: Array with the t axis first, ``(t, ...)``.
        ts: The t of each row of ``residual``.
        threshold: The residual above which diff counts as nonlinear.

    Returns:
        ``(radius_pos, radius_neg)`` shaped ``residual.shape[1:]``, both positive magnitudes; NaN
        where no t on that side of the grid exceeds the threshold (NaN residuals are ignored).

    Example:
        >>> r = np.array([0.5, 0.0, 0.05, 0.2])[:, None]
        >>> linear_radius(r, np.array([-1.0, 0.0, 1.0, 2.0]), 0.1)
        (array([2.]), array([1.]))
    """
    ts = np.asarray(ts, dtype=np.float64)
    out = []
    for side in (ts > 0, ts < 0):
        idx = np.nonzero(side)[0]
        idx = idx[np.argsort(np.abs(ts[idx]), kind="stable")]
        radius = np.full(residual.shape[1:], np.nan)
        if len(idx):
            over = residual[idx] > threshold  # NaN compares False
            first = over.argmax(axis=0)
            hit = over.any(axis=0)
            radius = np.where(hit, np.abs(ts[idx])[first], np.nan)
        out.append(radius)
    return out[0], out[1]


def _host(x: Tensor) -> np.ndarray:
    """``x`` as a float64 numpy array (copied from the model's device: once per result)."""
    return x.detach().double().cpu().numpy()


def _pairs(ts: np.ndarray) -> list[tuple[int, int]]:
    """(index of t > 0, index of −t) for every positive t whose mirror is in the grid."""
    scale = max(float(np.abs(ts).max()), 1.0) if len(ts) else 1.0
    pairs = []
    for i, t in enumerate(ts):
        if t > 0:
            j = np.nonzero(np.abs(ts + t) <= 1e-9 * scale)[0]
            if len(j):
                pairs.append((i, int(j[0])))
    return pairs


def _groups(ts: np.ndarray, pairs: list[tuple[int, int]], per_chunk: int) -> list[list[int]]:
    """Chunks of t indices that keep each (t, −t) pair together, at most ``per_chunk`` each."""
    units: list[list[int]] = [[i, j] for i, j in pairs]
    paired = {i for p in pairs for i in p}
    units += [[i] for i in range(len(ts)) if i not in paired]
    chunks: list[list[int]] = [[]]
    for u in units:
        if chunks[-1] and len(chunks[-1]) + len(u) > per_chunk:
            chunks.append([])
        chunks[-1].extend(u)
    return [c for c in chunks if c]


def _behaviour_dims(chain: Chain, depth: str, shape: tuple[int, ...]) -> tuple[str, ...]:
    """Axis names of a behaviour depth: the readout's, the model's declared ones, or by rank."""
    if depth in chain.readouts:
        return tuple(f"{depth}_{i}" for i in range(len(shape) - 1)) + (chain.readouts[depth].dim,)
    if chain.output_dims is not None and len(chain.output_dims) == len(shape):
        return chain.output_dims
    if len(shape) == 1:
        return ("logit",)
    if len(shape) == 2:
        return ("pos", "vocab")
    return tuple(f"logit_{i}" for i in range(len(shape)))


def _behaviour_name(chain: Chain, depth: str) -> str:
    """Variable-name stem of a behaviour depth: the readout's name, or ``logits`` for the output."""
    return depth if depth in chain.readouts else "logits"


def linear_response(
    model: nn.Module,
    activations: Float[Tensor, "batch ..."],
    hook: str,
    vector: Float[Tensor, "*shape"],
    ts: Sequence[float] | Tensor | np.ndarray,
    *,
    depths: Sequence[str | int] | None = None,
    context: Mapping[str, Tensor] | None = None,
    threshold: float = 0.1,
    max_rows: int | None = None,
    flips: bool = True,
) -> xr.Dataset:
    """diff(t), its JVP prediction, residual, linear radius, asymmetry and pattern flips.

    Parts 1–5 of the analysis (everything but the exact breakpoints); works on any model
    hookdiff can segment (the maze agent, a HookedTransformer, an ``nn.Sequential``).

    Args:
        model: The model.
        activations: B activations a at ``hook`` (e.g. a ``run_with_cache`` entry).
        hook: The intervention point.
        vector: v, the activation's shape without the batch dimension.
        ts: The coefficients t (negative and positive; include mirrors ±t for the asymmetry).
        depths: Depth names (or n = 1, 2, ...); default every point after ``hook`` to the
            output (the agent's value head skipped), plus ``"directions"`` on the agent.
        context: Activations before ``hook`` that the segment reads (inside a residual branch).
        threshold: Residual above which diff counts as nonlinear (for the linear radius).
        max_rows: At most this many rows (coefficients × samples) per forward (default 2048).
        flips: Also record relu / maxpool pattern flips (same pass).

    Returns:
        An ``xarray.Dataset`` (variables documented in :mod:`hookdiff.analysis.nonlinearity`,
        each with ``long_name`` / ``description`` attrs).

    Example:
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> a = net[0](torch.randn(5, 3))
        >>> ds = linear_response(net, a, "0", torch.randn(4), [-1.0, -0.1, 0.1, 1.0])
        >>> ds["residual"].dims
        ('sample', 't', 'depth')
    """
    chain = build_chain(model, hook, depths)
    a, v, ctx = prepare(chain, activations, vector, context)
    t_np = _coefficients(ts)
    b, pairs = a.shape[0], _pairs(t_np)
    _, jv = jvp_all_depths(chain, a, v, ctx)
    with torch.no_grad():
        base_run, base_pats = chain.run(a, ctx, flips)  # same no-grad arithmetic as the sweep
    base = [x.detach() for x in base_run]
    eps = torch.finfo(a.dtype).eps
    scale = torch.stack([x.reshape(b, -1).norm(dim=1) for x in base], dim=-1)  # (B, D)
    floor = _host(NOISE * eps * scale.clamp_min(torch.finfo(a.dtype).tiny))
    line = _Line(chain, a, v, ctx, jv, base, base_pats)
    norms = _sweep_norms(line, t_np, pairs, max_rows or DEFAULT_MAX_ROWS, flips)
    residual, asym = _ratios(norms, t_np, pairs, floor)
    radius = linear_radius(residual, t_np, threshold)
    data, coords = _variables(chain, norms, residual, asym, radius, _host(scale), t_np, pairs)
    if not flips:
        del data["flip_fraction"]
    _add_behaviour(data, coords, chain, norms.behaviour, base, pairs)
    ds = xr.Dataset(
        data,
        coords=coords,
        attrs={
            "hook": hook,
            "vector_norm": float(v.double().flatten(1).norm(dim=1).mean()),
            "threshold": float(threshold),
            "dtype": str(a.dtype).replace("torch.", ""),
            "noise_factor": NOISE,
        },
    )
    return describe(ds)


def _coefficients(ts: Sequence[float] | Tensor | np.ndarray) -> np.ndarray:
    """The coefficients t as a flat float64 array; at least one."""
    t_np = np.asarray(torch.as_tensor(np.asarray(ts, dtype=np.float64)).reshape(-1))
    if t_np.size == 0:
        raise ShapeMismatchError("ts is empty; give at least one coefficient t")
    return t_np


@dataclass(frozen=True)
class _Line:
    """What the sweep along a + t·v needs: the chain, a, v, the context, J·v per depth and the
    t = 0 outputs and patterns."""

    chain: Chain
    a: Tensor
    v: Tensor
    ctx: Mapping[str, Tensor]
    jv: list[Tensor]
    base: list[Tensor]
    base_pats: Mapping[str, Tensor]


@dataclass(frozen=True)
class _Norms:
    """The sweep's results on the host: norms of diff, L and diff − L ``(t, sample, depth)``,
    of the even part ``(pair, sample, depth)``, flip fractions ``(t, sample, layer)`` and diff
    at each behaviour depth ``(t, sample, ...)``."""

    diff: np.ndarray
    lin: np.ndarray
    res: np.ndarray
    even: np.ndarray
    flip: np.ndarray
    behaviour: dict[str, np.ndarray]


def _sweep_norms(
    line: _Line, t_np: np.ndarray, pairs: list[tuple[int, int]], rows: int, flips: bool
) -> _Norms:
    """Run the line in groups of coefficients (at most ``rows`` rows a forward); accumulate on
    the model's device and copy to the host once, after the sweep."""
    chain, a, v, base = line.chain, line.a, line.v, line.base
    t_all = torch.as_tensor(t_np, dtype=a.dtype, device=a.device)
    b, n_t, n_d = a.shape[0], len(t_np), len(chain.depths)
    layers = [name for name, _ in chain.layers]
    pair_of = {i: p for p, (i, _) in enumerate(pairs)}
    zeros = partial(torch.zeros, dtype=torch.float64, device=a.device)
    diff_norm, lin_norm, res_norm = zeros((n_t, b, n_d)), zeros((n_t, b, n_d)), zeros((n_t, b, n_d))
    even_norm = zeros((len(pairs), b, n_d))
    flip = zeros((n_t, b, len(layers)))
    beh_idx = {d: chain.depths.index(d) for d in chain.behaviour}
    behaviour = {d: zeros((n_t, b) + tuple(base[beh_idx[d]].shape[1:])) for d in chain.behaviour}
    with torch.no_grad():
        for group in _groups(t_np, pairs, max(1, rows // max(b, 1))):
            k = len(group)
            c = t_all[group]
            x = line_batch(a, v, c)
            outs, pats = chain.run(x, {n: tile_rows(t, k) for n, t in line.ctx.items()}, flips)
            where = {ti: pos for pos, ti in enumerate(group)}
            for di, out in enumerate(outs):
                diff = out.reshape(k, b, -1) - base[di].reshape(1, b, -1)
                lin = c.reshape(k, 1, 1) * line.jv[di].reshape(1, b, -1)
                diff_norm[group, :, di] = diff.norm(dim=-1).double()
                lin_norm[group, :, di] = lin.norm(dim=-1).double()
                res_norm[group, :, di] = (diff - lin).norm(dim=-1).double()
                for ti in group:
                    if ti in pair_of:
                        p = pair_of[ti]
                        j = pairs[p][1]
                        even = diff[where[ti]] + diff[where[j]]
                        even_norm[p, :, di] = even.norm(dim=-1).double()
                depth = chain.depths[di]
                if depth in behaviour:
                    behaviour[depth][group] = diff.reshape((k, b) + tuple(out.shape[1:])).double()
            if flips and layers:
                flip[group] = flip_fractions(pats, line.base_pats, layers, k, b).double()
    return _Norms(
        _host(diff_norm),
        _host(lin_norm),
        _host(res_norm),
        _host(even_norm),
        _host(flip),
        {d: _host(arr) for d, arr in behaviour.items()},
    )


def _ratios(
    norms: _Norms, t_np: np.ndarray, pairs: list[tuple[int, int]], floor: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The residual ``|diff − L| / max(|diff|, |L|)`` and the asymmetry ``|E| / (|diff(t)| +
    |diff(−t)|)``, NaN where the denominator is below the noise ``floor`` (and at t = 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = np.maximum(norms.diff, norms.lin)
        residual = np.where(denom > floor[None], norms.res / denom, np.nan)
        residual[t_np == 0] = np.nan
        pos = [i for i, _ in pairs]
        neg = [j for _, j in pairs]
        den_even = norms.diff[pos] + norms.diff[neg]
        asym = np.where(den_even > floor[None], norms.even / den_even, np.nan)
    return residual, asym


def _variables(
    chain: Chain,
    norms: _Norms,
    residual: np.ndarray,
    asym: np.ndarray,
    radius: tuple[np.ndarray, np.ndarray],
    scale: np.ndarray,
    t_np: np.ndarray,
    pairs: list[tuple[int, int]],
) -> tuple[dict[str, tuple], dict[str, object]]:
    """The Dataset's norm, residual, radius, asymmetry and flip variables, and its coordinates."""
    r_pos, r_neg = radius
    b = norms.diff.shape[1]
    data = {
        "diff_norm": (("sample", "t", "depth"), norms.diff.transpose(1, 0, 2)),
        "linear_norm": (("sample", "t", "depth"), norms.lin.transpose(1, 0, 2)),
        "residual_norm": (("sample", "t", "depth"), norms.res.transpose(1, 0, 2)),
        "residual": (("sample", "t", "depth"), residual.transpose(1, 0, 2)),
        "linear_radius_pos": (("sample", "depth"), r_pos),
        "linear_radius_neg": (("sample", "depth"), r_neg),
        "asymmetry": (("sample", "t_pos", "depth"), asym.transpose(1, 0, 2)),
        "base_norm": (("sample", "depth"), scale),
        "flip_fraction": (("sample", "t", "layer"), norms.flip.transpose(1, 0, 2)),
    }
    coords: dict[str, object] = {
        "sample": np.arange(b),
        "t": t_np,
        "depth": list(chain.depths),
        "t_pos": t_np[[i for i, _ in pairs]] if pairs else np.zeros(0),
        "layer": np.asarray([name for name, _ in chain.layers], dtype=str),
        "layer_kind": ("layer", np.asarray([k_ for _, k_ in chain.layers], dtype=str)),
    }
    return data, coords


def _add_behaviour(
    data: dict[str, tuple],
    coords: dict[str, object],
    chain: Chain,
    behaviour: dict[str, np.ndarray],
    base: list[Tensor],
    pairs: list[tuple[int, int]],
) -> None:
    """Add diff, the base and the signed pairs at every behaviour depth (and its readout's
    labels, and the ``sign`` coordinate) to ``data`` and ``coords``."""
    b = base[0].shape[0]
    pos = [i for i, _ in pairs]
    neg = [j for _, j in pairs]
    for d, arr in behaviour.items():
        name = _behaviour_name(chain, d)
        dims = _behaviour_dims(chain, d, arr.shape[2:])
        data[f"diff_{name}"] = (("sample", "t") + dims, arr.transpose(1, 0, *range(2, arr.ndim)))
        data[f"base_{name}"] = (("sample",) + dims, _host(base[chain.depths.index(d)]))
        signed = (
            np.stack([arr[pos], arr[neg]], axis=2) if pairs else np.zeros((0, b, 2) + arr.shape[2:])
        )
        data[f"signed_{name}"] = (
            ("sample", "t_pos", "sign") + dims,
            signed.transpose(1, 0, *range(2, signed.ndim)),
        )
        readout = chain.readouts.get(d)
        if readout is not None and readout.labels is not None:
            coords[readout.dim] = list(readout.labels)
    if any(name.startswith("signed_") for name in data):
        coords["sign"] = ["+t", "-t"]
