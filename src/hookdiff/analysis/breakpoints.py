"""Exact breakpoints along a + t·v as labelled data: the line walk's results per depth, in xarray.

:func:`line_breakpoints` runs the exact line walk (:mod:`hookdiff.analysis.walk`: the algorithm,
SyReNN's line restriction; :mod:`hookdiff.analysis._pieces` and
:mod:`hookdiff.analysis._crossings`: its pieces and crossings) and labels its result with
:func:`breakpoint_dataset`: per depth f_n, the breakpoints it depends on, its number of pieces,
the first breakpoint on each side of t = 0 and the breakpoint density. :func:`breakpoints_at`
reads one sample's breakpoints at one depth back.

On the CPU the walk tunes glibc's heap, process-wide, while it runs (about 1.4× faster; see
:mod:`hookdiff.analysis.heap`): set the environment variable ``HOOKDIFF_NO_HEAP_TUNING=1`` to turn
that off. Importing this module changes nothing.

The walk's names stay importable from here (:func:`walk_line`, :class:`WalkResult`,
:data:`DEFAULT_MAX_ELEMENTS`, :data:`ANCHOR_EVERY`, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr
from jaxtyping import Float
from torch import Tensor, nn

from hookdiff.analysis._attrs import describe
from hookdiff.analysis._chain import Chain, build_chain, prepare
from hookdiff.analysis._crossings import (  # noqa: F401 - the walk's parts, importable from here
    _flips,
    _maxpool_crossings,
    _relu_crossings,
    _split,
)
from hookdiff.analysis._pieces import (  # noqa: F401
    ANCHOR_EVERY,
    _anchors,
    _blocks,
    _LazyChunk,
    _Pieces,
    _values,
    _values_at,
)
from hookdiff.analysis.walk import (  # noqa: F401
    DEFAULT_MAX_ELEMENTS,
    WalkResult,
    _check_piecewise,
    walk_line,
)
from hookdiff.errors import ShapeMismatchError

__all__ = ["DEFAULT_MAX_ELEMENTS", "breakpoints_at", "line_breakpoints", "walk_line"]


def line_breakpoints(
    model: nn.Module,
    activations: Float[Tensor, "batch ..."],
    hook: str,
    vector: Float[Tensor, "*shape"],
    t_range: tuple[float, float],
    *,
    depths: Sequence[str | int] | None = None,
    context: Mapping[str, Tensor] | None = None,
    max_pieces: int | None = None,
    density_bins: int = 48,
) -> xr.Dataset:
    """Exact breakpoints of every depth f_n along a + t·v for t in ``t_range``.

    Args:
        model: The maze agent or an ``nn.Sequential`` of Conv2d/Linear/ReLU/MaxPool2d/Flatten.
        activations: B activations a at ``hook``.
        hook: The intervention point.
        vector: v (the activation's shape without the batch dimension).
        t_range: ``(t_min, t_max)``.
        depths: Depth names (or n = 1, 2, ...); default every point to the output, plus
            ``"directions"`` on the agent (whose kinks are those of the policy logits).
        context: Activations before ``hook`` that the segment reads (inside a residual branch).
        max_pieces: Pieces walked together (memory budget); default from
            :data:`DEFAULT_MAX_ELEMENTS`.
        density_bins: Number of equal-width t bins of ``breakpoint_density``.

    Returns:
        A Dataset with ``breakpoint_t`` / ``breakpoint_sample`` / ``breakpoint_layer`` (dim
        ``breakpoint``, long format, sorted by sample then t), ``n_pieces``, ``first_break_pos``,
        ``first_break_neg`` (dims ``sample, depth``) and ``breakpoint_density``
        (``sample, t_bin, depth``); see :mod:`hookdiff.analysis.nonlinearity`.

    Raises:
        NotPiecewiseLinearError: the segment has an op that is not piecewise linear.

    Example:
        >>> net = nn.Sequential(nn.Identity(), nn.ReLU())
        >>> ds = line_breakpoints(net, torch.tensor([[1.0, -2.0]]), "0",
        ...                       torch.tensor([1.0, 1.0]), (-3.0, 3.0))
        >>> ds["breakpoint_t"].values.tolist(), int(ds["n_pieces"].item())
        ([-1.0, 2.0], 3)
    """
    chain = build_chain(model, hook, depths)
    _check_piecewise(chain)
    a, v, ctx = prepare(chain, activations, vector, context)
    t_min, t_max = (float(x) for x in t_range)
    result = walk_line(chain, a, v, ctx, t_min, t_max, max_pieces=max_pieces)
    return describe(breakpoint_dataset(chain, result, a.shape[0], t_min, t_max, density_bins))


def breakpoint_dataset(
    chain: Chain,
    r: WalkResult,
    b: int,
    t_min: float,
    t_max: float,
    density_bins: int,
    walked: int | None = None,
) -> xr.Dataset:
    """Label a :class:`WalkResult`: per-depth counts, first breaks, density (see module doc).

    ``walked``: only samples ``0 .. walked-1`` were walked; the per-sample figures of the rest
    are NaN (unknown, not "no breakpoint").
    """
    if density_bins < 1:
        raise ShapeMismatchError(f"density_bins must be >= 1; got {density_bins}")
    depths = list(chain.depths)
    n_d = len(depths)
    layer_names = np.asarray(r.layers, dtype=str)
    n_pieces = np.ones((b, n_d))
    first_pos = np.full((b, n_d), np.nan)
    first_neg = np.full((b, n_d), np.nan)
    edges = np.linspace(t_min, t_max, density_bins + 1)
    density = np.zeros((b, density_bins, n_d))
    width = np.diff(edges)
    bins = np.clip(np.searchsorted(edges, r.t, side="right") - 1, 0, density_bins - 1)
    for di, depth in enumerate(depths):
        ids = [i for i, n in enumerate(r.layers) if n in chain.depends[depth]]
        m = np.isin(r.layer, ids)
        smp, t = r.sample[m], r.t[m]
        n_pieces[:, di] += np.bincount(smp, minlength=b)
        np.add.at(density[:, :, di], (smp, bins[m]), 1.0)
        pos, neg = t > 0, t < 0
        np.fmin.at(first_pos[:, di], smp[pos], t[pos])
        np.fmin.at(first_neg[:, di], smp[neg], -t[neg])
    density /= width[None, :, None]
    walked = b if walked is None else walked
    for arr in (n_pieces, first_pos, first_neg, density):
        arr[walked:] = np.nan
    depends = np.array([[n in chain.depends[d] for n in r.layers] for d in depths], dtype=bool)
    depends = depends.reshape(n_d, len(r.layers))
    return xr.Dataset(
        {
            "breakpoint_t": (("breakpoint",), r.t),
            "breakpoint_sample": (("breakpoint",), r.sample.astype(np.int64)),
            "breakpoint_kink": (("breakpoint",), r.kink.astype(bool)),
            "breakpoint_layer": (
                ("breakpoint",),
                layer_names[r.layer] if len(r.t) else np.zeros(0, dtype=str),
            ),
            "n_pieces": (("sample", "depth"), n_pieces),
            "first_break_pos": (("sample", "depth"), first_pos),
            "first_break_neg": (("sample", "depth"), first_neg),
            "breakpoint_density": (("sample", "t_bin", "depth"), density),
            "depends_on": (("depth", "dep_layer"), depends),
        },
        coords={
            "sample": np.arange(b),
            "depth": depths,
            "dep_layer": layer_names,
            "t_bin": (edges[:-1] + edges[1:]) / 2,
            "t_bin_lo": ("t_bin", edges[:-1]),
            "t_bin_hi": ("t_bin", edges[1:]),
        },
        attrs={
            "hook": chain.hook,
            "t_min": t_min,
            "t_max": t_max,
            "kink_depth": r.kink_depth,
            "breakpoint_samples": walked,
        },
    )


def breakpoints_at(ds: xr.Dataset, sample: int, depth: str) -> np.ndarray:
    """The sorted breakpoints of f_depth for one sample, from a breakpoint / nonlinearity Dataset.

    A depth's breakpoints are those found at the relu / maxpool layers it depends on (the
    Dataset's boolean ``depends_on``, dims ``depth, dep_layer``).

    Example:
        >>> net = nn.Sequential(nn.Identity(), nn.ReLU())
        >>> ds = line_breakpoints(net, torch.tensor([[1.0, -2.0]]), "0",
        ...                       torch.tensor([1.0, 1.0]), (-3.0, 3.0))
        >>> breakpoints_at(ds, 0, "1").tolist()
        [-1.0, 2.0]
    """
    uses = ds["depends_on"].sel(depth=depth).values.astype(bool)
    names = ds["dep_layer"].values[uses]
    keep = (ds["breakpoint_sample"].values == sample) & np.isin(
        ds["breakpoint_layer"].values, names
    )
    return np.sort(ds["breakpoint_t"].values[keep])
