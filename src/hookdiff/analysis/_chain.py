"""The downstream chain of a hook point, as the analysis sees it: depths, one-pass runner, op graph.

Every part of the analysis needs the same three things about the layers after the intervention
point: the ordered list of depths (hook names, plus ``"directions"`` on the maze agent), a function
that runs the segment from the hook to the deepest depth ONCE and returns every depth's activation
(differentiable, so one ``torch.func.jvp`` of it gives J·v at every depth), and, where the segment
is piecewise linear, the op graph (kind, inputs, parameters) that the exact breakpoint walk
propagates a line through. This private module builds that description for the three kinds of
model hookdiff knows: a model declaring ``ops`` / ``segment_ops`` (the IMPALA agent), a
HookedTransformer (its residual stream) and an ``nn.Sequential`` (its children).
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hookdiff.errors import ShapeMismatchError, UnknownHookError
from hookdiff.hooks import hook_chain, resolve_hook

#: Pseudo-depth of the maze agent: the 5 direction probabilities computed from the policy logits.
DIRECTIONS = "directions"

#: Layer kinds whose activation pattern (relu: sign of the input; maxpool: argmax) is tracked.
PATTERN_KINDS = ("relu", "maxpool")

_AGENT_POLICY_HEAD = "fc_policy_out"
_AGENT_VALUE_HEAD = "fc_value_out"


@dataclass(frozen=True)
class Step:
    """One op of a piecewise-linear walk.

    Attributes:
        name: The op's output name (a hook name of the model).
        kind: ``conv``, ``linear``, ``maxpool``, ``relu``, ``add``, ``flatten`` or ``other``.
        inputs: Names of the op's inputs (the hook, an earlier step, or a context name).
        module: The module carrying the op's parameters (conv, linear, maxpool), else ``None``.
        apply: Runs the op on its input tensors (with bias, exactly as the model does).
    """

    name: str
    kind: str
    inputs: tuple[str, ...]
    module: nn.Module | None
    apply: Callable[[Sequence[Tensor]], Tensor]


@dataclass
class Chain:
    """What the analysis needs about the segment after ``hook``.

    Attributes:
        model: The model.
        hook: The intervention point.
        depths: Depth labels in forward order (hook names; ``"directions"`` last on the agent).
        behaviour: The depths that are behaviour (the model output, the direction probabilities).
        layers: ``(name, kind)`` of the relu / maxpool ops inside the segment (pattern flips).
        steps: The op graph for the exact walk, or ``None`` when the model is not an op graph.
        depends: Per depth, the names of the relu / maxpool layers it depends on.
        context_names: Activations produced before ``hook`` that the segment reads.
        not_piecewise: Why the segment is not piecewise linear (``None`` if it is).
        run: ``run(x, context, patterns)`` -> (per-depth outputs, per-layer patterns).
    """

    model: nn.Module
    hook: str
    depths: tuple[str, ...]
    behaviour: tuple[str, ...]
    layers: tuple[tuple[str, str], ...]
    steps: tuple[Step, ...] | None
    depends: dict[str, frozenset[str]]
    context_names: tuple[str, ...]
    not_piecewise: str | None
    run: Callable[[Tensor, Mapping[str, Tensor], bool], tuple[list[Tensor], dict[str, Tensor]]]
    extra: dict[str, object] = field(default_factory=dict)


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


# --------------------------------------------------------------------------------------------
# Building the chain
# --------------------------------------------------------------------------------------------


def build_chain(model: nn.Module, hook: str, depths: Sequence[str | int] | None) -> Chain:
    """The :class:`Chain` after ``hook`` for ``depths`` (``None``: every depth to the output)."""
    from transformer_lens import HookedTransformer

    if hasattr(model, "segment_ops") and hasattr(model, "ops") and hasattr(model, "hook_names"):
        return _graph_chain(model, hook, depths)
    if isinstance(model, HookedTransformer):
        return _transformer_chain(model, hook, depths)
    if isinstance(model, nn.Sequential):
        return _sequential_chain(model, hook, depths)
    hook_chain(model)  # raises NoHookChainError with the explanation
    raise UnknownHookError(f"cannot analyse {type(model).__name__}")  # pragma: no cover


def _pick_depths(
    hook: str, after: Sequence[str], default: Sequence[str], depths: Sequence[str | int] | None
) -> tuple[str, ...]:
    """Validate the requested depths (names or n = 1, 2, ... hook points after ``hook``)."""
    if depths is None:
        return tuple(default)
    if isinstance(depths, str | int):
        depths = [depths]
    picked: list[str] = []
    for d in depths:
        if isinstance(d, int) and not isinstance(d, bool):
            if not 1 <= d <= len(after):
                raise ValueError(
                    f"depth n={d} is out of range after {hook!r}: expected 1..{len(after)} "
                    f"(the chain ends at {after[-1]!r})"
                )
            d = after[d - 1]
        if d not in after:
            close = difflib.get_close_matches(str(d), after, n=5, cutoff=0.5)
            raise UnknownHookError(
                f"depth {d!r} is not a point after {hook!r}. Closest: {close or list(after)[:5]}. "
                f"Depths are hook names after the intervention point (or n = 1, 2, ...)."
            )
        if d not in picked:
            picked.append(d)
    if not picked:
        raise ValueError("depths is empty; name at least one depth, or pass None for all")
    return tuple(sorted(picked, key=list(after).index))


def _graph_chain(model: nn.Module, hook: str, depths: Sequence[str | int] | None) -> Chain:
    """The IMPALA agent (any model with ``ops``, ``hook_names``, ``segment_ops``)."""
    names = list(model.hook_names)
    if hook not in names:
        close = difflib.get_close_matches(hook, names, n=5, cutoff=0.5)
        raise UnknownHookError(
            f"{type(model).__name__} has no hook point {hook!r}. Closest names: {close}. "
            f"The analysis starts at a point of model.hook_names."
        )
    after = names[names.index(hook) + 1 :]
    if not after:
        raise ValueError(f"{hook!r} is the last hook point: there is nothing downstream")
    has_policy = _AGENT_POLICY_HEAD in after
    available = list(after) + ([DIRECTIONS] if has_policy else [])
    default = [n for n in after if n != _AGENT_VALUE_HEAD] + ([DIRECTIONS] if has_policy else [])
    picked = _pick_depths(hook, available, default, depths)
    real = [d for d in picked if d != DIRECTIONS]
    if DIRECTIONS in picked and _AGENT_POLICY_HEAD not in real:
        real.append(_AGENT_POLICY_HEAD)
    ops_by_name = {op.name: op for op in model.ops}
    used: set[str] = set()
    needed: set[str] = set()
    depends: dict[str, frozenset[str]] = {}
    for d in real:
        ops, ctx = model.segment_ops(hook, d)
        used.update(op.name for op in ops)
        needed.update(ctx)
        depends[d] = frozenset(op.name for op in ops if op.kind in PATTERN_KINDS)
    if DIRECTIONS in picked:
        depends[DIRECTIONS] = depends[_AGENT_POLICY_HEAD]
    order = {n: i for i, n in enumerate(names)}
    steps = []
    for name in sorted(used, key=order.__getitem__):
        op = ops_by_name[name]
        steps.append(Step(op.name, op.kind, tuple(op.inputs), op.module, _graph_apply(model, op)))
    behaviour = tuple(d for d in picked if d in (_AGENT_POLICY_HEAD, DIRECTIONS))
    run = _step_runner(tuple(steps), hook, picked, directions=DIRECTIONS in picked)
    return Chain(
        model=model,
        hook=hook,
        depths=picked,
        behaviour=behaviour,
        layers=tuple((s.name, s.kind) for s in steps if s.kind in PATTERN_KINDS),
        steps=tuple(steps),
        depends=depends,
        context_names=tuple(sorted(needed, key=order.__getitem__)),
        not_piecewise=None,
        run=run,
    )


def _graph_apply(model: nn.Module, op: object) -> Callable[[Sequence[Tensor]], Tensor]:
    kind = op.kind
    if kind == "relu":
        return lambda args: F.relu(args[0])
    if kind == "add":
        return lambda args: args[0] + args[1]
    if kind == "flatten":
        # the model's own flatten (its layout is the model's business): a one-op segment
        return lambda args: model.run_segment(args[0], op.inputs[0], op.name)
    return lambda args: op.module(args[0])


def _sequential_chain(model: nn.Sequential, hook: str, depths: Sequence[str | int] | None) -> Chain:
    children = list(model.named_children())
    names = [n for n, _ in children]
    if hook not in names:
        close = difflib.get_close_matches(hook, names, n=5, cutoff=0.5)
        raise UnknownHookError(
            f"nn.Sequential has no child {hook!r} (hook points are its children). Closest: {close}"
        )
    i = names.index(hook)
    after = names[i + 1 :]
    if not after:
        raise ValueError(f"{hook!r} is the last child: there is nothing downstream")
    picked = _pick_depths(hook, after, after, depths)
    last = names.index(picked[-1])
    steps = []
    bad: str | None = None
    prev = hook
    for name, child in children[i + 1 : last + 1]:
        kind = _module_kind(child)
        if kind == "other" and bad is None:
            bad = f"child {name!r} ({type(child).__name__})"
        steps.append(
            Step(name, kind, (prev,), child if kind != "relu" else None, _module_apply(child))
        )
        prev = name
    depends = {
        d: frozenset(s.name for s in steps[: names.index(d) - i] if s.kind in PATTERN_KINDS)
        for d in picked
    }
    run = _step_runner(tuple(steps), hook, picked, directions=False)
    return Chain(
        model=model,
        hook=hook,
        depths=picked,
        behaviour=(names[-1],) if names[-1] in picked else (),
        layers=tuple((s.name, s.kind) for s in steps if s.kind in PATTERN_KINDS),
        steps=tuple(steps),
        depends=depends,
        context_names=(),
        not_piecewise=(
            None
            if bad is None
            else f"{bad} is not one of Conv2d, Linear, ReLU, MaxPool2d, Flatten, Identity"
        ),
        run=run,
    )


def _module_kind(m: nn.Module) -> str:
    if isinstance(m, nn.Conv2d):
        return "conv"
    if isinstance(m, nn.Linear):
        return "linear"
    if isinstance(m, nn.ReLU):
        return "relu"
    if isinstance(m, nn.MaxPool2d) and m.dilation in (1, (1, 1)) and not m.ceil_mode:
        return "maxpool"
    if isinstance(m, nn.Flatten | nn.Identity):
        return "flatten"
    return "other"


def _module_apply(m: nn.Module) -> Callable[[Sequence[Tensor]], Tensor]:
    return lambda args: m(args[0])


def _step_runner(
    steps: tuple[Step, ...], hook: str, depths: Sequence[str], *, directions: bool
) -> Callable[[Tensor, Mapping[str, Tensor], bool], tuple[list[Tensor], dict[str, Tensor]]]:
    """Walk the steps once; keep every depth's output and (optionally) relu/maxpool patterns."""
    last_use: dict[str, int] = {}
    for k, s in enumerate(steps):
        for n in s.inputs:
            last_use[n] = k
    real = [d for d in depths if d != DIRECTIONS]

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
            y = s.apply(args)
            env[s.name] = y
            if s.name in real:
                outs[s.name] = y
            for n in s.inputs:
                if last_use.get(n) == k and n != hook:
                    env.pop(n, None)
        result = [outs[d] for d in real]
        if directions:
            from hookdiff.agent.directions import directions as to_directions

            result.append(to_directions(outs[_AGENT_POLICY_HEAD]))
        return result, pats

    return run


def _transformer_chain(model: nn.Module, hook: str, depths: Sequence[str | int] | None) -> Chain:
    chain = hook_chain(model)
    start = hook
    prefix, suffix = "blocks.", ".hook_resid_pre"
    if hook.startswith(prefix) and hook.endswith(suffix):
        layer = hook[len(prefix) : -len(suffix)]
        if layer.isdigit() and int(layer) >= 1:
            start = f"blocks.{int(layer) - 1}.hook_resid_post"
    if start not in chain:
        close = difflib.get_close_matches(hook, chain, n=5, cutoff=0.5)
        raise UnknownHookError(
            f"the analysis runs a HookedTransformer along its residual stream {chain}; {hook!r} "
            f"is not on it. Closest: {close}"
        )
    i = chain.index(start)
    after = chain[i + 1 :]
    picked = _pick_depths(hook, after, after, depths)
    start_layer = i  # chain index i >= 1 is resid_post of layer i - 1; index 0 is resid_pre 0
    last = picked[-1]

    def run(
        x: Tensor, context: Mapping[str, Tensor], patterns: bool
    ) -> tuple[list[Tensor], dict[str, Tensor]]:
        store: dict[str, Tensor] = {}
        inner = [d for d in picked if d not in ("logits",) and d != last]
        with _recording(model, inner, store):
            if last == "logits":
                out = model(x, start_at_layer=start_layer, return_type="logits")
            else:
                out = model(x, start_at_layer=start_layer, stop_at_layer=chain.index(last))
        return [out if d == last else store[d] for d in picked], {}

    act = getattr(model.cfg, "act_fn", "?")
    return Chain(
        model=model,
        hook=hook,
        depths=picked,
        behaviour=("logits",) if "logits" in picked else (),
        layers=(),
        steps=None,
        depends={d: frozenset() for d in picked},
        context_names=(),
        not_piecewise=(
            f"a HookedTransformer block holds attention (softmax), "
            f"{getattr(model.cfg, 'normalization_type', None) or 'no'} normalization and an "
            f"MLP with act_fn={act!r}"
        ),
        run=run,
    )


@contextlib.contextmanager
def _recording(model: nn.Module, names: Sequence[str], store: dict[str, Tensor]) -> Iterator[None]:
    """Keep the (non-detached) activations at ``names``; the hooks go in ``finally``."""
    handles = []
    try:
        for name in names:
            site = resolve_hook(model, name)

            def record(module: nn.Module, inputs: object, output: Tensor, name: str = name) -> None:
                store[name] = output

            handles.append(site.register_forward_hook(record))
        yield
    finally:
        for h in handles:
            h.remove()


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
    """
    a = torch.as_tensor(activations)
    if not a.is_floating_point():
        raise ShapeMismatchError(
            f"activations at {chain.hook!r} must be floating point; got dtype {a.dtype}"
        )
    v = torch.as_tensor(vector).to(device=a.device, dtype=a.dtype)
    if tuple(v.shape) not in (tuple(a.shape[1:]), tuple(a.shape)):
        raise ShapeMismatchError(
            f"vector of shape {tuple(v.shape)} does not match the activations at {chain.hook!r}, "
            f"whose per-row shape is {tuple(a.shape[1:])} (full shape {tuple(a.shape)}); "
            f"expected the activation's shape without the batch dimension, or the full shape "
            f"for one vector per sample"
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


def _get(context: Mapping[str, Tensor], name: str) -> Tensor | None:
    try:
        return context[name]
    except KeyError:
        return None


def tile(x: Tensor, k: int) -> Tensor:
    """``k`` copies of a B-row tensor, coefficient-major (row i is ``x[i % B]``)."""
    return x.repeat((k,) + (1,) * (x.ndim - 1))
