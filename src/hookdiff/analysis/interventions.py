"""Causal interventions along the line a + t·v: the response with part of the network made linear.

:func:`line_response` returns the activation at one depth for every t, with the network as it is
(``variant="exact"``) or intervened on:

- ``variant="linearize"`` at a hook point ``cut``: x_c(t) is replaced by x_c(0) + t·J_c·v (one
  forward-mode JVP from the steering hook to ``cut``), then the rest runs exactly;
- ``variant="symmetrize"`` at ``cut``: x_c(t) is replaced by x_c(0) + ½[x_c(t) − x_c(−t)], which
  removes exactly the even part of the response at ``cut`` and keeps its odd part;
- ``freeze``: named nonlinear ops keep their t = 0 state while the rest runs exactly. On an op
  graph (the maze agent, an ``nn.Sequential``) a relu multiplies by its t = 0 mask and a maxpool
  gathers at its t = 0 argmax; on a HookedTransformer the named attention patterns, LayerNorm scales
  and MLP gates (act(x) = x·g(x) with g(x₀) kept) hold their t = 0 values.

On a piecewise-linear op graph, freezing every relu and maxpool up to ``cut`` equals linearising
at ``cut`` (the t = 0 pattern is the Jacobian). On a transformer, freezing its state makes a block
affine in t but not its tangent map (the softmax, scale and gate derivatives are dropped), as in
attribution-patching style linearisations. Where the add/subtract asymmetry of behaviour collapses
under these interventions is where the nonlinearity that causes it sits. Cuts are allowed only where one tensor carries the whole state
(:func:`valid_cuts`); :func:`freezable` lists what ``freeze`` accepts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr
from jaxtyping import Float
from torch import Tensor, nn

from hookdiff.analysis._chain import Chain, build_chain, line_batch, maxpool_gather, prepare
from hookdiff.contract import PATTERN_KINDS, HoldsState, Op, OpGraphModel
from hookdiff.errors import InterventionError, ShapeMismatchError, unknown_name_message
from hookdiff.hooks import attach, capture
from hookdiff.ops import apply_op, tile_rows
from hookdiff.segments import as_segmented, canonical
from hookdiff.sweeps import row_dims

__all__ = ["VARIANTS", "cut_scan", "freezable", "line_response", "valid_cuts"]

#: What :func:`line_response` does at ``cut``.
VARIANTS = ("exact", "linearize", "symmetrize")

#: Rows (coefficients × samples) per batched forward, by default.
DEFAULT_MAX_ROWS = 2048


@dataclass(frozen=True)
class _Plan:
    """A validated request: the chain to ``depth``, where to cut, what to freeze."""

    chain: Chain
    depth: str
    source: str  # the hook point computed for ``depth`` (its readout's source, or itself)
    cut: str | None
    variant: str
    freeze: tuple[str, ...]


def line_response(
    model: nn.Module,
    activations: Float[Tensor, "batch ..."],
    hook: str,
    vector: Float[Tensor, ...],
    ts: Sequence[float] | Tensor | np.ndarray,
    *,
    depth: str,
    cut: str | None = None,
    variant: str = "exact",
    freeze: Sequence[str] = (),
    context: Mapping[str, Tensor] | None = None,
    max_rows: int | None = None,
) -> xr.DataArray:
    """The activation at ``depth`` along a + t·v for every t, exact or intervened on.

    Args:
        model: The maze agent, an ``nn.Sequential``, a HookedTransformer, or any model
            implementing :class:`hookdiff.contract.OpGraphModel`.
        activations: B activations a at ``hook``.
        hook: The steering point.
        vector: v (the activation's shape without the batch dimension, or one per sample).
        ts: The coefficients t.
        depth: Where to read the response: a hook point after ``hook`` or a declared readout
            (e.g. ``"directions"`` on the agent).
        cut: The hook point of ``variant`` (one of :func:`valid_cuts`); needed unless exact.
        variant: ``"exact"``, ``"linearize"`` or ``"symmetrize"``.
        freeze: Nonlinear ops held at their t = 0 state (names from :func:`freezable`).
        context: Activations before ``hook`` that the segment reads (inside a residual branch).
        max_rows: At most this many rows per forward (default 2048).

    Returns:
        A DataArray ``(t, sample, ...)`` in the activations' dtype, attrs naming the intervention.

    Example:
        >>> net = nn.Sequential(nn.Identity(), nn.ReLU(), nn.Linear(2, 1))
        >>> r = line_response(net, torch.ones(1, 2), "0", torch.ones(2), [-2.0, 2.0],
        ...                   depth="1", freeze=["1"])
        >>> r.values[:, 0].tolist()   # the relu keeps its t = 0 mask (on): the line goes through
        [[-1.0, -1.0], [3.0, 3.0]]
    """
    plan = _plan(model, hook, depth, cut, variant, freeze)
    a, v, ctx = prepare(plan.chain, activations, vector, context)
    t = torch.as_tensor(np.asarray(ts, dtype=np.float64)).reshape(-1).to(a.device, a.dtype)
    if t.numel() == 0:
        raise ShapeMismatchError("ts is empty; give at least one coefficient t")
    per_chunk = max(1, (max_rows or DEFAULT_MAX_ROWS) // max(a.shape[0], 1))
    with torch.no_grad():
        frozen = _frozen_state(plan, a, ctx)
    parts = [
        _respond(plan, a, v, ctx, t[i : i + per_chunk], frozen) for i in range(0, len(t), per_chunk)
    ]
    return _label(torch.cat(parts), plan, t, hook)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def valid_cuts(model: nn.Module, hook: str, depth: str) -> list[str]:
    """Hook points after ``hook`` (through ``depth``) where one tensor carries the whole state.

    Example:
        >>> net = nn.Sequential(nn.Identity(), nn.ReLU(), nn.Linear(2, 1))
        >>> valid_cuts(net, "0", "2")
        ['1', '2']
    """
    chain, source = _chain_to(model, hook, depth)
    segmented = as_segmented(model)
    if not isinstance(segmented, OpGraphModel):
        names = list(segmented.hook_names)
        return names[names.index(chain.hook) + 1 : names.index(source) + 1]
    return [
        op.name
        for op in chain.steps
        if op.name == source or not segmented.segment_ops(op.name, source)[1]
    ]


def freezable(model: nn.Module, hook: str, depth: str) -> list[str]:
    """The nonlinear ops between ``hook`` and ``depth`` that ``freeze`` can hold at t = 0.

    Example:
        >>> net = nn.Sequential(nn.Identity(), nn.ReLU(), nn.Linear(2, 1))
        >>> freezable(net, "0", "2")
        ['1']
    """
    chain, source = _chain_to(model, hook, depth)
    segmented = as_segmented(model)
    if isinstance(segmented, HoldsState):
        return list(segmented.freezable(chain.hook, source))
    if chain.steps is None:
        return []
    return [op.name for op in chain.steps if op.kind in PATTERN_KINDS]


def _chain_to(model: nn.Module, hook: str, depth: str) -> tuple[Chain, str]:
    """The chain to ``depth`` and the hook point it reads (a readout's source; an alias
    resolved to the chain's name)."""
    chain = build_chain(model, hook, [depth])
    readout = chain.readouts.get(depth)
    return chain, canonical(as_segmented(model), depth) if readout is None else readout.source


def _plan(
    model: nn.Module,
    hook: str,
    depth: str,
    cut: str | None,
    variant: str,
    freeze: Sequence[str],
) -> _Plan:
    if variant not in VARIANTS:
        raise InterventionError(unknown_name_message("variant", variant, VARIANTS))
    chain, source = _chain_to(model, hook, depth)
    if (cut is None) != (variant == "exact"):
        raise InterventionError(
            f"variant={variant!r} {'needs a cut' if cut is None else 'takes no cut'}: "
            f"'linearize' and 'symmetrize' act at a hook point cut=..., 'exact' at none"
        )
    cut = None if cut is None else canonical(as_segmented(model), cut)
    if cut is not None and cut not in (cuts := valid_cuts(model, hook, depth)):
        raise InterventionError(
            unknown_name_message(f"cut between {hook!r} and {depth!r}", cut, cuts)
            + ". Cuts are hook points after the steering hook where one tensor carries the whole "
            "state (not inside a residual branch, not upstream of the hook)."
        )
    freeze = tuple(dict.fromkeys([freeze] if isinstance(freeze, str) else freeze))
    allowed = freezable(model, hook, depth)
    for name in freeze:
        if name not in allowed:
            raise InterventionError(
                unknown_name_message(
                    f"nonlinear op to freeze between {hook!r} and {depth!r}", name, allowed
                )
            )
    return _Plan(chain, depth, source, cut, variant, freeze)


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


def _frozen_state(plan: _Plan, a: Tensor, ctx: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The t = 0 state of every frozen op (relu mask, maxpool argmax, held hook value)."""
    if not plan.freeze:
        return {}
    segmented = as_segmented(plan.chain.model)
    if isinstance(segmented, HoldsState):
        names = segmented.state_names(plan.freeze)
        with capture(plan.chain.model, names) as acts:
            segmented.run_segment(a, plan.chain.hook, plan.source, context=ctx)
        return {n: acts[n] for n in names}
    _, patterns = plan.chain.run(a, ctx, True)
    return {name: patterns[name] for name in plan.freeze}


def _respond(
    plan: _Plan,
    a: Tensor,
    v: Tensor,
    ctx: Mapping[str, Tensor],
    t: Tensor,
    frozen: Mapping[str, Tensor],
) -> Tensor:
    """``(k, B, ...)`` responses at ``plan.depth`` for the ``k`` coefficients ``t``."""
    k, b = len(t), a.shape[0]
    if plan.variant == "exact":
        out = _forward(
            plan, line_batch(a, v, t), plan.chain.hook, plan.source, _tiled(ctx, k), frozen, k
        )
    else:
        at_cut = _cut_value(plan, a, v, ctx, t, frozen)
        out = _forward(plan, at_cut, plan.cut, plan.source, {}, frozen, k)
    readout = plan.chain.readouts.get(plan.depth)
    if readout is not None:
        out = readout.fn(out)
    return out.detach().reshape((k, b) + tuple(out.shape[1:]))


def _tiled(ctx: Mapping[str, Tensor], k: int) -> dict[str, Tensor]:
    return {n: tile_rows(x, k) for n, x in ctx.items()}


def _cut_value(
    plan: _Plan,
    a: Tensor,
    v: Tensor,
    ctx: Mapping[str, Tensor],
    t: Tensor,
    frozen: Mapping[str, Tensor],
) -> Tensor:
    """x_c(t) as the variant replaces it: linearised, or symmetrised, at the cut."""
    k, hook, cut = len(t), plan.chain.hook, plan.cut
    if cut == hook:
        return line_batch(a, v, t)
    if plan.variant == "linearize":
        with torch.enable_grad():
            x0, jv = torch.func.jvp(
                lambda x: _forward(plan, x, hook, cut, ctx, frozen, 1),
                (a,),
                (v.contiguous(),),
            )
        scale = t.repeat_interleave(a.shape[0]).reshape((-1,) + (1,) * (x0.ndim - 1))
        return tile_rows(x0.detach(), k) + scale * tile_rows(jv.detach(), k)
    both = torch.cat([t, -t, t.new_zeros(1)])
    x = _forward(plan, line_batch(a, v, both), hook, cut, _tiled(ctx, 2 * k + 1), frozen, 2 * k + 1)
    rows = k * a.shape[0]
    plus, minus, zero = x[:rows], x[rows : 2 * rows], x[2 * rows :]
    return tile_rows(zero, k) + 0.5 * (plus - minus)


def _forward(
    plan: _Plan,
    x: Tensor,
    start: str,
    stop: str,
    ctx: Mapping[str, Tensor],
    frozen: Mapping[str, Tensor],
    k: int,
) -> Tensor:
    """The activation at ``stop`` from ``x`` at ``start``, the frozen ops held at t = 0."""
    if start == stop:
        return x
    segmented = as_segmented(plan.chain.model)
    if isinstance(segmented, OpGraphModel):
        ops, _ = segmented.segment_ops(start, stop)
        return _run_ops(ops, {start: x, **ctx}, frozen, k)[stop]
    if not frozen:
        return segmented.run_segment(x, start, stop, context=ctx)
    hooks = segmented.holding_hooks(plan.freeze, frozen, k)
    with attach(plan.chain.model, hooks):
        return segmented.run_segment(x, start, stop, context=ctx)


def _run_ops(
    ops: Sequence[Op], env: dict[str, Tensor], frozen: Mapping[str, Tensor], k: int
) -> dict[str, Tensor]:
    """Run ``ops`` in order; a frozen relu multiplies by its t = 0 mask, a maxpool gathers."""
    for op in ops:
        args = [env[n] for n in op.inputs]
        state = frozen.get(op.name)
        if state is None:
            env[op.name] = apply_op(op, args)
        elif op.kind == "relu":
            env[op.name] = args[0] * tile_rows(state, k).to(args[0].dtype)
        else:
            env[op.name] = maxpool_gather(args[0], tile_rows(state, k))
    return env


def _response_dims(plan: _Plan, rest: tuple[int, ...]) -> tuple[tuple[str, ...], dict]:
    """Names (and labels) of the response's axes after ``(t, sample)``."""
    readout = plan.chain.readouts.get(plan.depth)
    if readout is None:
        return row_dims(plan.chain.model, plan.source, rest), {}
    dims = tuple(f"{plan.depth}_{i}" for i in range(len(rest) - 1)) + (readout.dim,)
    labels = {} if readout.labels is None else {readout.dim: list(readout.labels)}
    return dims, labels


def _label(values: Tensor, plan: _Plan, t: Tensor, hook: str) -> xr.DataArray:
    """``(t, sample, ...)`` with the intervention in the attrs."""
    dims, coords = _response_dims(plan, tuple(values.shape[2:]))
    coords.update(t=t.double().cpu().numpy(), sample=np.arange(values.shape[1]))
    return xr.DataArray(
        values.cpu().numpy(),
        dims=("t", "sample") + dims,
        coords=coords,
        name="response",
        attrs={
            "long_name": f"activation at {plan.depth} along a + t·v",
            "hook": hook,
            "depth": plan.depth,
            "variant": plan.variant,
            "cut": plan.cut or "",
            "freeze": ", ".join(plan.freeze),
        },
    )


# --------------------------------------------------------------------------------------------
# Every cut at once
# --------------------------------------------------------------------------------------------


def cut_scan(
    model: nn.Module,
    activations: Float[Tensor, "batch ..."],
    hook: str,
    vector: Float[Tensor, ...],
    ts: Sequence[float] | Tensor | np.ndarray,
    *,
    depth: str,
    cuts: Sequence[str] | None = None,
    variants: Sequence[str] = ("linearize", "symmetrize"),
    context: Mapping[str, Tensor] | None = None,
    max_rows: int | None = None,
) -> xr.DataArray:
    """The response at ``depth`` with the network linearised / symmetrised at each cut in turn.

    Shares the work a loop over :func:`line_response` would repeat: one exact pass over the line
    (t, −t and 0) captures every cut's activation, one JVP gives every cut's J_c·v, and only the
    rest of the network after each cut runs once per cut and variant. Cuts joined by affine ops
    only (a conv, a linear layer, a flatten) give the same response, so on an op graph the rest
    runs once for each such group, from its last cut.

    Args:
        model, activations, hook, vector, ts, depth, context, max_rows: as in
            :func:`line_response`.
        cuts: Where to cut (default every one of :func:`valid_cuts`).
        variants: Some of ``"linearize"`` and ``"symmetrize"``.

    Returns:
        A DataArray ``(variant, cut, t, sample, ...)``; variant ``"exact"`` (the same for every
        cut) comes first, for comparison.

    Example:
        >>> net = nn.Sequential(nn.Identity(), nn.ReLU(), nn.Linear(2, 1))
        >>> scan = cut_scan(net, torch.ones(1, 2), "0", torch.ones(2), [-2.0, 2.0], depth="2")
        >>> scan.dims, list(scan["cut"].values)
        (('variant', 'cut', 't', 'sample', 'features'), ['1', '2'])
    """
    cuts = list(valid_cuts(model, hook, depth) if cuts is None else cuts)
    plans = [_plan(model, hook, depth, c, variant, ()) for c in cuts for variant in variants]
    if not plans:
        raise InterventionError("cut_scan needs at least one cut and one variant")
    chain = build_chain(model, hook, list(dict.fromkeys([*cuts, plans[0].source])))
    a, v, ctx = prepare(chain, activations, vector, context)
    t = torch.as_tensor(np.asarray(ts, dtype=np.float64)).reshape(-1).to(a.device, a.dtype)
    grid = torch.unique(torch.cat([t, -t, t.new_zeros(1)]))
    per = max(1, (max_rows or DEFAULT_MAX_ROWS) // len(grid))
    same = _affine_groups(model, cuts)
    parts = [
        _scan_samples(
            chain, plans, same, a[i : i + per], v[i : i + per], _rows(ctx, i, per), t, grid
        )
        for i in range(0, a.shape[0], per)
    ]
    values = torch.cat(parts, dim=3)  # (variant, cut, t, sample, ...)
    dims, coords = _response_dims(plans[0], tuple(values.shape[4:]))
    coords.update(
        variant=["exact", *variants],
        cut=cuts,
        t=t.double().cpu().numpy(),
        sample=np.arange(a.shape[0]),
    )
    return xr.DataArray(
        values.cpu().numpy(),
        dims=("variant", "cut", "t", "sample") + dims,
        coords=coords,
        name="response",
        attrs={"long_name": f"activation at {depth} along a + t·v", "hook": hook, "depth": depth},
    )


def _rows(ctx: Mapping[str, Tensor], i: int, n: int) -> dict[str, Tensor]:
    return {name: x[i : i + n] for name, x in ctx.items()}


#: Op kinds that are affine maps of their one input: a cut before them equals a cut after them.
_AFFINE_KINDS = ("conv", "linear", "flatten")


def _affine_groups(model: nn.Module, cuts: Sequence[str]) -> dict[str, str]:
    """Per cut, the last of the cuts it reaches through affine ops only (itself if none).

    Linearising or symmetrising commutes with an affine map A (A(x₀ + t·J·v) = A(x₀) + t·A·J·v,
    and A's offset cancels in x(t) − x(−t)), so such cuts give the same response.
    """
    segmented = as_segmented(model)
    if not isinstance(segmented, OpGraphModel):
        return {c: c for c in cuts}
    order = list(segmented.hook_names)
    ordered = sorted(cuts, key=order.index)
    last: dict[str, str] = {}
    for i, cut in enumerate(ordered):
        reach = cut
        for later in ordered[i + 1 :]:
            ops, needed = segmented.segment_ops(reach, later)
            if needed or any(op.kind not in _AFFINE_KINDS for op in ops):
                break
            reach = later
        last[cut] = reach
    return last


def _scan_samples(
    chain: Chain,
    plans: list[_Plan],
    same: Mapping[str, str],
    a: Tensor,
    v: Tensor,
    ctx: Mapping[str, Tensor],
    t: Tensor,
    grid: Tensor,
) -> Tensor:
    """``(1 + variants, cuts, k, b, ...)`` for one chunk of samples."""
    k, b, g = len(t), a.shape[0], len(grid)
    pick = lambda ts: torch.searchsorted(grid, ts)  # noqa: E731 - row blocks of the grid
    with torch.no_grad():
        outs, _ = chain.run(line_batch(a, v, grid), _tiled(ctx, g), False)
    at = {d: x.reshape((g, b) + tuple(x.shape[1:])) for d, x in zip(chain.depths, outs)}
    if any(p.variant == "linearize" for p in plans):
        base, slopes = _jvp_by_depth(chain, a, v, ctx)
    readout = plans[0].chain.readouts.get(plans[0].depth)
    exact = at[plans[0].source][pick(t)]
    results = {"exact": readout.fn(exact.flatten(0, 1)) if readout else exact.flatten(0, 1)}
    for plan in plans:
        cut = same[plan.cut]
        if (plan.variant, cut) not in results:
            if plan.variant == "linearize":
                scale = t.reshape((k, 1) + (1,) * (base[cut].ndim - 1))
                cut_value = torch.addcmul(base[cut][None], scale, slopes[cut][None])
            else:
                x = at[cut]
                cut_value = (x[pick(t)] - x[pick(-t)]).mul_(0.5).add_(x[pick(t.new_zeros(1))])
            with torch.no_grad():
                out = _forward(plan, cut_value.flatten(0, 1), cut, plan.source, {}, {}, k)
            results[(plan.variant, cut)] = readout.fn(out) if readout else out
        results[(plan.variant, plan.cut)] = results[(plan.variant, cut)]
    return _stack_scan(results, plans, k, b)


def _jvp_by_depth(
    chain: Chain, a: Tensor, v: Tensor, ctx: Mapping[str, Tensor]
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    from hookdiff.analysis.linear import jvp_all_depths

    values, tangents = jvp_all_depths(chain, a, v, ctx)
    return dict(zip(chain.depths, values)), dict(zip(chain.depths, tangents))


def _stack_scan(results: dict, plans: list[_Plan], k: int, b: int) -> Tensor:
    variants = list(dict.fromkeys(p.variant for p in plans))
    cuts = list(dict.fromkeys(p.cut for p in plans))
    exact = results["exact"]
    rows = [[exact] * len(cuts)] + [[results[(var, c)] for c in cuts] for var in variants]
    stacked = torch.stack([torch.stack(r) for r in rows])  # (variant, cut, k·b, ...)
    return stacked.reshape(stacked.shape[:2] + (k, b) + tuple(stacked.shape[3:])).detach()
