"""One call for the whole nonlinearity analysis of diff(t) = f_n(a + t·v) − f_n(a).

:func:`nonlinearity` runs the batched sweep with one JVP (:mod:`hookdiff.analysis.linear`), the
pattern flips recorded in the same pass (:mod:`hookdiff.analysis.patterns`) and, where the segment
is piecewise linear, the exact line walk (:mod:`hookdiff.analysis.breakpoints`) over
[min t, max t], and returns everything as one labelled ``xarray.Dataset``.

Coordinates:
    sample: index of the input row of ``activations``.
    t: the coefficients, in the order given.
    depth: the depths f_n, hook names in forward order. On the maze agent: every hook point after
        the intervention point through ``fc_policy_out`` (``fc_value_out`` only when asked),
        then ``"directions"`` (the 5 direction probabilities). On a HookedTransformer: the
        residual stream ``blocks.k.hook_resid_post`` ... then ``logits``.
    t_pos: the positive t whose mirror −t is also in the grid (asymmetry, signed comparison).
    layer / layer_kind: the relu and maxpool ops of the segment (empty on a transformer).
    sign: ``"+t"`` / ``"-t"``. direction: left, down, up, right, none. action: 15 logits.
    breakpoint: one row per exact breakpoint (long format). t_bin (with t_bin_lo, t_bin_hi):
        equal-width bins of [min t, max t]. dep_layer: the relu / maxpool layers of the walk.

Variables (norms are Euclidean over the whole activation of one sample):
    diff_norm (sample, t, depth): ‖diff_n(t)‖, diff_n(t) = f_n(a + t·v) − f_n(a).
    linear_norm (sample, t, depth): ‖L_n(t)‖, L_n(t) = t·J_{f_n}(a)·v (one forward-mode JVP).
    residual_norm (sample, t, depth): ‖diff_n(t) − L_n(t)‖.
    residual (sample, t, depth): ‖diff − L‖ / max(‖diff‖, ‖L‖). This equals ‖diff − L‖ / ‖diff‖
        whenever the linear prediction does not overshoot diff, and is bounded by 2, so a diff
        near 0 with a nonzero prediction gives a finite, large value instead of a blow-up. NaN
        at t = 0 and wherever max(‖diff‖, ‖L‖) ≤ 64·eps(dtype)·‖f_n(a)‖ (float noise).
    base_norm (sample, depth): ‖f_n(a)‖.
    linear_radius_pos / linear_radius_neg (sample, depth): the smallest |t| of the grid on the
        positive / negative side whose residual exceeds ``threshold`` (both positive numbers);
        NaN where no t on that side does (diff stays within the threshold on the whole grid).
    asymmetry (sample, t_pos, depth): the even part ‖diff(t) + diff(−t)‖ / (‖diff(t)‖ +
        ‖diff(−t)‖), in [0, 1]: 0 for any map linear along v, 1 when adding and subtracting
        move f_n the same way. NaN where the denominator is float noise.
    flip_fraction (sample, t, layer): the fraction of units of a relu (sign of its input > 0) or
        maxpool (argmax index within each window) whose state differs between a and a + t·v.
    diff_logits (sample, t, action | pos, vocab): raw diff of the model output (the agent's policy
        logits, a transformer's logits), when that depth is analysed; base_logits: f(a).
    diff_directions (sample, t, direction), base_directions: the same for the direction
        probabilities (agent only).
    signed_logits / signed_directions (sample, t_pos, sign, ...): diff at +t and at −t side by
        side, to compare the effect of adding and of subtracting the vector on behaviour.
    breakpoint_t / breakpoint_sample / breakpoint_layer (breakpoint): every t in (min t, max t)
        where a relu / maxpool of the segment changes state, its sample and the layer, sorted by
        sample then t. A depth's breakpoints are those of the layers it depends on
        (``depends_on``); :func:`hookdiff.analysis.breakpoints_at` extracts them.
    breakpoint_kink (breakpoint): whether the slope of the deepest depth (attr ``kink_depth``)
        changes there. A pattern change can be masked downstream (a conv position no maxpool
        window selects, a unit feeding only relus that are off): it is then a breakpoint of the
        activation pattern but not a kink of f_n. The breakpoint variables count pattern changes.
    depends_on (depth, dep_layer): whether depth n is downstream of the layer.
    n_pieces (sample, depth): number of linear pieces of f_n on [min t, max t] (breakpoints + 1).
        On ``"directions"`` (smooth in the logits) the pieces of the policy logits. Like the other
        per-sample breakpoint figures, NaN for samples past ``breakpoint_samples`` (not walked).
    first_break_pos / first_break_neg (sample, depth): distance from 0 to the nearest breakpoint
        on the positive / negative side (both positive; NaN if none in the interval).
    breakpoint_density (sample, t_bin, depth): breakpoints per unit t in each bin.

Every variable and coordinate carries ``long_name`` and ``description`` attrs (and ``units`` where
they apply), so ``ds.residual.attrs`` explains itself.

Attributes: hook, vector_norm (‖v‖; the mean over samples for per-sample vectors), seed
(recorded for provenance; nothing here draws random numbers), threshold, dtype, t_min / t_max of
the walk, breakpoints (whether the walk ran), breakpoint_samples (how many samples it walked),
breakpoints_skipped (why the walk did not run, "" when it did: by default it is skipped on a
segment that is not piecewise linear, e.g. any HookedTransformer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr
from jaxtyping import Float
from torch import Tensor, nn

from hookdiff.analysis._attrs import describe
from hookdiff.analysis._chain import Chain, build_chain, prepare
from hookdiff.analysis.breakpoints import _check_piecewise, breakpoint_dataset, walk_line
from hookdiff.analysis.linear import linear_response
from hookdiff.errors import NotPiecewiseLinearError

__all__ = ["nonlinearity"]


def nonlinearity(
    model: nn.Module,
    activations: Float[Tensor, "batch ..."],
    hook: str,
    vector: Float[Tensor, "*shape"],
    ts: Sequence[float] | Tensor | np.ndarray,
    *,
    depths: Sequence[str | int] | None = None,
    context: Mapping[str, Tensor] | None = None,
    threshold: float = 0.1,
    breakpoints: bool | None = None,
    max_rows: int | None = None,
    max_pieces: int | None = None,
    breakpoint_samples: int | None = None,
    density_bins: int = 48,
    seed: int | None = None,
) -> xr.Dataset:
    """The whole nonlinearity analysis of diff(t) at every depth, as one labelled Dataset.

    Args:
        model: The maze agent, a HookedTransformer, or an ``nn.Sequential``.
        activations: B activations a at ``hook`` (e.g. ``cache[hook]`` of a ``run_with_cache``).
        hook: The intervention point.
        vector: v, the activation's shape without the batch dimension.
        ts: The coefficients t (negative and positive, dense near 0; include mirrors ±t).
        depths: Depth names (or n = 1, 2, ...); default every point after ``hook`` to the
            output (the agent's value head skipped) plus ``"directions"`` on the agent.
        context: Activations before ``hook`` that the segment reads (inside a residual branch).
        threshold: Residual above which diff counts as nonlinear (linear radius).
        breakpoints: Run the exact line walk over [min t, max t]. None (default): walk it when
            the segment is piecewise linear, else skip it and say why in the attr
            ``breakpoints_skipped``; True: walk it or raise; False: skip it.
        max_rows: Rows (coefficients × samples) per batched forward (default 2048).
        max_pieces: Pieces walked together by the line walk (default from its memory budget).
        breakpoint_samples: Walk only the first this many samples (None: all). On a trained
            agent the walk meets thousands of pieces per line and dominates the run time; a few
            samples give the breakpoint statistics while the rest of the analysis covers all.
        density_bins: Number of t bins of ``breakpoint_density``.
        seed: Recorded in the attributes (the caller's seed for the inputs / vector).

    Returns:
        The Dataset whose coordinates and variables the module docstring documents.

    Raises:
        NotPiecewiseLinearError: ``breakpoints=True`` on a segment with an op that is not
            piecewise linear (the default skips the walk there: everything else still works).
        TrainingModeError: the segment has a BatchNorm in training mode (call ``model.eval()``).

    Example:
        >>> import torch
        >>> from hookdiff.agent import ImpalaPolicy
        >>> policy = ImpalaPolicy(scale=1)
        >>> hook = "embedder.block2.res1.resadd_out"
        >>> _, cache = policy.run_with_cache(torch.rand(2, 3, 64, 64))
        >>> v = torch.randn(cache[hook].shape[1:])
        >>> ds = nonlinearity(policy, cache[hook], hook, 0.01 * v, [-0.1, 0.0, 0.1])
        >>> ds["residual"].dims, ds["n_pieces"].dims
        (('sample', 't', 'depth'), ('sample', 'depth'))
    """
    chain = build_chain(model, hook, depths)
    skipped = _walk_skipped(chain, breakpoints)  # fail before the sweep
    if breakpoint_samples is not None and breakpoint_samples < 1:
        raise ValueError(f"breakpoint_samples must be None or >= 1, got {breakpoint_samples}")
    kwargs = {"depths": depths, "context": context, "threshold": threshold, "max_rows": max_rows}
    ds = linear_response(model, activations, hook, vector, ts, **kwargs)
    t = ds["t"].values
    walked = 0
    if skipped is None and t.max() > t.min():
        line = (activations, vector, context)
        ds, walked = _with_walk(ds, chain, line, breakpoint_samples, max_pieces, density_bins)
    ds.attrs.update(hook=hook, seed=-1 if seed is None else int(seed), threshold=float(threshold))
    ds.attrs.update(t_min=float(t.min()), t_max=float(t.max()), breakpoints=int(skipped is None))
    ds.attrs.update(breakpoint_samples=walked, breakpoints_skipped=skipped or "")
    return describe(ds)


def _with_walk(
    ds: xr.Dataset,
    chain: Chain,
    line: tuple[Tensor, Tensor, Mapping[str, Tensor] | None],
    breakpoint_samples: int | None,
    max_pieces: int | None,
    density_bins: int,
) -> tuple[xr.Dataset, int]:
    """``ds`` with the exact line walk's variables over [min t, max t] of its first samples
    (``line`` = activations, vector, context), and how many samples were walked."""
    t = ds["t"].values
    t_min, t_max = float(t.min()), float(t.max())
    a, v, ctx = prepare(chain, *line)
    b = a.shape[0]
    walked = b if breakpoint_samples is None else min(b, breakpoint_samples)
    ctx = {name: c[:walked] for name, c in ctx.items()}
    walk = walk_line(chain, a[:walked], v[:walked], ctx, t_min, t_max, max_pieces=max_pieces)
    return ds.merge(
        breakpoint_dataset(chain, walk, b, t_min, t_max, density_bins, walked=walked)
    ), walked


def _walk_skipped(chain: Chain, breakpoints: bool | None) -> str | None:
    """Why the line walk is skipped (None: it runs); raises where it was asked for and cannot."""
    if breakpoints is False:
        return "breakpoints=False was passed"
    try:
        _check_piecewise(chain)
    except NotPiecewiseLinearError as e:
        if breakpoints:
            raise
        return f"the segment is not piecewise linear: {chain.not_piecewise or e}"
    return None
