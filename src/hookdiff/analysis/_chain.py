"""The downstream chain of a hook point, as the analysis sees it: depths, one-pass runner, op graph.

Every part of the analysis needs the same three things about the layers after the intervention
point: the ordered list of depths (hook names, plus the readouts the model declares, e.g. the maze
agent's ``"directions"``), a function that runs the segment from the hook to the deepest depth ONCE
and returns every depth's activation (differentiable, so one ``torch.func.jvp`` of it gives J·v at
every depth), and, where the model declares its ops, the op graph that the exact breakpoint walk
propagates a line through. The model is reached only through the contract
(:mod:`hookdiff.contract`), adapted in one place (:func:`hookdiff.segments.as_segmented`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hookdiff._device import model_device
from hookdiff.contract import (
    PATTERN_KINDS,
    PIECEWISE_KINDS,
    Op,
    OpGraphModel,
    Readout,
    SegmentedModel,
)
from hookdiff.errors import ShapeMismatchError, UnknownHookError, unknown_name_message
from hookdiff.ops import apply_op, tile_rows
from hookdiff.segments import as_segmented, canonical, locate, output_of

Runner = Callable[[Tensor, Mapping[str, Tensor], bool], tuple[list[Tensor], dict[str, Tensor]]]
"""``run(x, context, patterns)`` -> (per-depth outputs, per-layer relu / maxpool patterns)."""


@dataclass(frozen=True)
class Chain:
    """What the analysis needs about the segment after ``hook``.

    Attributes:
        model: The model.
        hook: The intervention point (its name on the model's chain).
        depths: Depth labels in forward order (hook names, then the declared readouts).
        behaviour: The depths that are behaviour (the model's output, its readouts).
        output_dims: Axis names of the model's output (None: named by rank).
        readouts: The readouts among the depths, by name.
        layers: ``(name, kind)`` of the relu / maxpool ops inside the segment (pattern flips).
        steps: The op graph for the exact walk, or ``None`` when the model declares no ops.
        depends: Per depth, the names of the relu / maxpool layers it depends on.
        context_names: Activations produced before ``hook`` that the segment reads.
        not_piecewise: Why the segment is not piecewise linear (``None`` if it is).
        run: Runs the segment once (see :data:`Runner`).
    """

    model: nn.Module
    hook: str
    depths: tuple[str, ...]
    behaviour: tuple[str, ...]
    output_dims: tuple[str, ...] | None
    readouts: dict[str, Readout]
    layers: tuple[tuple[str, str], ...]
    steps: tuple[Op, ...] | None
    depends: dict[str, frozenset[str]]
    context_names: tuple[str, ...]
    not_piecewise: str | None
    run: Runner


def relu_pattern(pre: Tensor) -> Tensor:
    """On/off state of each relu unit: its input is > 0."""
    return pre > 0


def maxpool_pattern(x: Tensor, module: nn.Module) -> Tensor:
    """Index of the argmax of each maxpool window (flat index within the input plane)."""
    _, idx = F.max_pool2d(
        x,
        kernel_size=module.kernel_size,
        stride=module.stride,
        padding=module.padding,
        dilation=module.dilation,
        ceil_mode=module.ceil_mode,
        return_indices=True,
    )
    return idx


def maxpool_gather(x: Tensor, idx: Tensor) -> Tensor:
    """The maxpool output picked by ``idx`` (from :func:`maxpool_pattern`) out of ``x``."""
    n, c = x.shape[:2]
    return x.reshape(n, c, -1).gather(2, idx.reshape(n, c, -1)).reshape(idx.shape)


# --------------------------------------------------------------------------------------------
# Building the chain
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Depths:
    """The depths picked after the hook: hook points (``real``) and readouts, in order."""

    picked: tuple[str, ...]
    real: tuple[str, ...]
    readouts: dict[str, Readout]
    output: str


def build_chain(model: nn.Module, hook: str, depths: Sequence[str | int] | None) -> Chain:
    """The :class:`Chain` after ``hook`` for ``depths`` (``None``: every depth to the output)."""
    segmented = as_segmented(model)
    start = locate(segmented, hook)
    picked = _pick(segmented, start, depths)
    if isinstance(segmented, OpGraphModel):
        return _graph_chain(model, segmented, start, picked)
    return _segments_chain(model, segmented, start, picked)


def _pick(segmented: SegmentedModel, start: str, depths: Sequence[str | int] | None) -> _Depths:
    """The requested depths after ``start``, or by default the path to the output and readouts."""
    names = list(segmented.hook_names)
    after = names[names.index(start) + 1 :]
    if not after:
        raise ValueError(f"{start!r} is the last hook point: there is nothing downstream")
    output, _, declared = output_of(segmented)
    readouts = {r.name: r for r in declared if r.source in after}
    available = after + list(readouts)
    if depths is None:
        path = _on_path(segmented, start, output) if output in after else after
        wanted: Sequence[str | int] = [n for n in after if n in path] + [
            r.name for r in readouts.values() if r.source in path
        ]
    else:
        given = [depths] if isinstance(depths, str | int) else depths
        wanted = [canonical(segmented, d) if isinstance(d, str) else d for d in given]
    picked = _validate(start, available, wanted)
    real = [d for d in picked if d not in readouts]
    real += [r.source for n, r in readouts.items() if n in picked and r.source not in real]
    real.sort(key=names.index)
    return _Depths(picked, tuple(real), {n: readouts[n] for n in picked if n in readouts}, output)


def _on_path(segmented: SegmentedModel, start: str, output: str) -> set[str]:
    """The hook points after ``start`` that the output depends on (all of them without ops)."""
    if isinstance(segmented, OpGraphModel):
        return {op.name for op in segmented.segment_ops(start, output)[0]}
    names = list(segmented.hook_names)
    return set(names[names.index(start) + 1 : names.index(output) + 1])


def _validate(hook: str, available: Sequence[str], wanted: Sequence[str | int]) -> tuple[str, ...]:
    """Depth names (or n = 1, 2, ... hook points after ``hook``), checked and in forward order."""
    picked: list[str] = []
    for d in wanted:
        if isinstance(d, int) and not isinstance(d, bool):
            if not 1 <= d <= len(available):
                raise ValueError(
                    f"depth n={d} is out of range after {hook!r}: expected 1..{len(available)} "
                    f"(the chain ends at {available[-1]!r})"
                )
            d = available[d - 1]
        if d not in available:
            raise UnknownHookError(
                unknown_name_message(f"depth after {hook!r}", d, available)
                + ". Depths are hook names after the intervention point (or n = 1, 2, ...)."
            )
        if d not in picked:
            picked.append(d)
    if not picked:
        raise ValueError("depths is empty; name at least one depth, or pass None for all")
    return tuple(sorted(picked, key=list(available).index))


def _graph_chain(model: nn.Module, graph: OpGraphModel, hook: str, depths: _Depths) -> Chain:
    """A model declaring its ops: one pass over exactly the ops the depths need."""
    order = {n: i for i, n in enumerate(graph.hook_names)}
    used: dict[str, Op] = {}
    needed: set[str] = set()
    depends: dict[str, frozenset[str]] = {}
    for d in depths.real:
        ops, ctx = graph.segment_ops(hook, d)
        used.update((op.name, op) for op in ops)
        needed.update(ctx)
        depends[d] = frozenset(op.name for op in ops if op.kind in PATTERN_KINDS)
    for name, r in depths.readouts.items():
        depends[name] = depends[r.source]
    steps = tuple(sorted(used.values(), key=lambda op: order[op.name]))
    other = next((op for op in steps if op.kind not in PIECEWISE_KINDS), None)
    return Chain(
        model=model,
        hook=hook,
        depths=depths.picked,
        behaviour=_behaviour(depths),
        output_dims=output_of(graph)[1],
        readouts=depths.readouts,
        layers=tuple((s.name, s.kind) for s in steps if s.kind in PATTERN_KINDS),
        steps=steps,
        depends={d: depends[d] for d in depths.picked},
        context_names=tuple(sorted(needed, key=order.__getitem__)),
        not_piecewise=None if other is None else _not_piecewise(other),
        run=_graph_runner(steps, hook, depths),
    )


def _not_piecewise(op: Op) -> str:
    module = "" if op.module is None else f" ({type(op.module).__name__})"
    return (
        f"op {op.name!r}{module} is not one of Conv2d, Linear, ReLU, MaxPool2d, Flatten, Identity "
        f"or a residual add"
    )


def _behaviour(depths: _Depths) -> tuple[str, ...]:
    return tuple(d for d in depths.picked if d == depths.output or d in depths.readouts)


def _graph_runner(steps: tuple[Op, ...], hook: str, depths: _Depths) -> Runner:
    """Walk the ops once; keep every depth's output and (optionally) relu/maxpool patterns."""
    last_use: dict[str, int] = {}
    for k, s in enumerate(steps):
        for n in s.inputs:
            last_use[n] = k

    def run(
        x: Tensor, context: Mapping[str, Tensor], patterns: bool
    ) -> tuple[list[Tensor], dict[str, Tensor]]:
        env: dict[str, Tensor] = {hook: x, **context}
        outs: dict[str, Tensor] = {}
        pats: dict[str, Tensor] = {}
        for k, s in enumerate(steps):
            args = [env[n] for n in s.inputs]
            if patterns and s.kind == "relu":
                pats[s.name] = relu_pattern(args[0])
            elif patterns and s.kind == "maxpool":
                pats[s.name] = maxpool_pattern(args[0], s.module)
            env[s.name] = apply_op(s, args)
            if s.name in depths.real:
                outs[s.name] = env[s.name]
            for n in s.inputs:
                if last_use.get(n) == k and n != hook:
                    env.pop(n, None)
        return _with_readouts(outs, depths), pats

    return run


def _with_readouts(outs: dict[str, Tensor], depths: _Depths) -> list[Tensor]:
    """Per picked depth: the hook activation, or the readout computed from its source."""
    return [
        depths.readouts[d].fn(outs[depths.readouts[d].source]) if d in depths.readouts else outs[d]
        for d in depths.picked
    ]


def _segments_chain(
    model: nn.Module, segmented: SegmentedModel, hook: str, depths: _Depths
) -> Chain:
    """A model without an op graph: consecutive segments between the depths, no patterns."""
    real = depths.real

    def run(
        x: Tensor, context: Mapping[str, Tensor], patterns: bool
    ) -> tuple[list[Tensor], dict[str, Tensor]]:
        outs: dict[str, Tensor] = {}
        prev, seen = hook, {**context, hook: x}
        for d in real:
            outs[d] = seen[d] = segmented.run_segment(seen[prev], prev, d, context=seen)
            prev = d
        return _with_readouts(outs, depths), {}

    return Chain(
        model=model,
        hook=hook,
        depths=depths.picked,
        behaviour=_behaviour(depths),
        output_dims=output_of(segmented)[1],
        readouts=depths.readouts,
        layers=(),
        steps=None,
        depends={d: frozenset() for d in depths.picked},
        context_names=(),
        not_piecewise=(
            f"{type(model).__name__} declares no op graph (hookdiff.contract.OpGraphModel), so "
            f"the line walk cannot see its layers (a HookedTransformer's attention softmax, "
            f"normalization and MLP activation are not piecewise linear anyway)"
        ),
        run=run,
    )


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def prepare(
    chain: Chain,
    activations: Tensor,
    vector: Tensor,
    context: Mapping[str, Tensor] | None,
) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """Check shapes; return the activations, per-sample vectors ``(B, ...)`` and the context.

    ``vector`` is either one direction for every sample (the activation's shape without the batch
    dimension) or one per sample (the activations' shape), e.g. each maze's own cheese vector.
    Everything is moved to the model's device (when it has parameters): the analysis runs there.
    """
    a = torch.as_tensor(activations)
    if next(chain.model.parameters(), None) is not None:
        a = a.to(model_device(chain.model))
    if not a.is_floating_point():
        raise ShapeMismatchError(
            f"activations at {chain.hook!r} must be floating point; got dtype {a.dtype}"
        )
    v = torch.as_tensor(vector).to(device=a.device, dtype=a.dtype)
    if v.ndim < a.ndim and _broadcasts(tuple(v.shape), tuple(a.shape[1:])):
        v = v.expand(a.shape[1:])  # e.g. a (d_model,) vector for every position, as steer takes
    if tuple(v.shape) not in (tuple(a.shape[1:]), tuple(a.shape)):
        raise ShapeMismatchError(
            f"vector of shape {tuple(v.shape)} does not match the activations at {chain.hook!r}, "
            f"whose per-row shape is {tuple(a.shape[1:])} (full shape {tuple(a.shape)}); "
            f"expected the activation's shape without the batch dimension (or a shape that "
            f"broadcasts to it), or the full shape for one vector per sample"
        )
    v = v.expand_as(a)  # one vector per sample from here on (a shared v is a broadcast view)
    ctx: dict[str, Tensor] = {}
    for name in chain.context_names:
        t = None if context is None else _get(context, name)
        if t is None:
            raise UnknownHookError(
                f"the segment after {chain.hook!r} reads {name!r}, produced before it (a residual "
                f"block's input). Pass context=cache with the cache of a run_with_cache on the "
                f"same inputs (it must hold {name!r})."
            )
        t = torch.as_tensor(t).to(device=a.device, dtype=a.dtype)
        if t.shape[0] != a.shape[0]:
            raise ShapeMismatchError(
                f"context[{name!r}] has {t.shape[0]} rows but the activations have {a.shape[0]}; "
                f"expected one row per sample"
            )
        ctx[name] = t
    return a, v, ctx


def _broadcasts(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    try:
        return torch.broadcast_shapes(shape, target) == target
    except RuntimeError:
        return False


def _get(context: Mapping[str, Tensor], name: str) -> Tensor | None:
    try:
        return context[name]
    except KeyError:
        return None


def line_batch(a: Tensor, v: Tensor, t: Tensor) -> Tensor:
    """The points a + t·v for every t, coefficient-major: row i is ``a[i % B] + t[i // B]·v[i % B]``.

    ``v`` has ``a``'s shape (one direction per sample).
    """
    k, b = len(t), a.shape[0]
    return tile_rows(a, k) + t.repeat_interleave(b).reshape(
        (-1,) + (1,) * (a.ndim - 1)
    ) * tile_rows(v, k)
