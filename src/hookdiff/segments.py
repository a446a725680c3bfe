"""The one place models meet the contract: a model as a chain of hook points that runs in segments.

:func:`as_segmented` checks :class:`~hookdiff.contract.SegmentedModel` once and returns the model
itself when it implements it (the maze agent, a user's model), or an adapter for the two kinds of
model hookdiff knows without help: a HookedTransformer (its residual stream) and an
``nn.Sequential`` (its children, as an op graph). :func:`locate` finds a hook on the chain (a
transformer's ``blocks.k.hook_resid_pre`` is the same point as ``blocks.{k-1}.hook_resid_post``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn
from transformer_lens import HookedTransformer

from hookdiff.contract import INPUT, DeclaresReadouts, Op, Readout, SegmentedModel
from hookdiff.errors import NoHookChainError, UnknownHookError, unknown_name_message
from hookdiff.ops import tile_rows

__all__ = ["as_segmented", "locate", "output_of"]


def as_segmented(model: nn.Module) -> SegmentedModel:
    """``model`` as a :class:`~hookdiff.contract.SegmentedModel` (itself, or an adapter).

    Raises:
        NoHookChainError: the model declares no chain and is neither a HookedTransformer nor an
            ``nn.Sequential``.
    """
    if isinstance(model, SegmentedModel):
        return model
    if isinstance(model, HookedTransformer):
        return _TransformerSegments(model)
    if isinstance(model, nn.Sequential):
        return _SequentialGraph(model)
    raise NoHookChainError(
        f"{type(model).__name__} declares no ordered chain of hook points, so hookdiff cannot run "
        f"a segment of it. Implement hookdiff.contract.SegmentedModel: a `hook_names` list (hook "
        f"points in forward order) and a `run_segment(x, start, stop, context=None)` method (add "
        f"`ops` and `segment_ops` for the exact line walk), or use a HookedTransformer (residual "
        f"stream) or an nn.Sequential (its children)."
    )


def locate(segmented: SegmentedModel, hook: str) -> str:
    """The name of ``hook`` on the chain of ``segmented`` (resolving aliases), or a clear error."""
    if isinstance(segmented, _TransformerSegments):
        hook = segmented.aliases.get(hook, hook)
    names = list(segmented.hook_names)
    if hook not in names:
        raise UnknownHookError(
            unknown_name_message(
                f"point on the hook chain of {_model_name(segmented)}", hook, names
            )
            + ". Segments start and stop only at points of the model's hook chain."
        )
    return hook


def output_of(segmented: SegmentedModel) -> tuple[str, tuple[str, ...] | None, tuple[Readout, ...]]:
    """``(output hook, its axis names, readouts)``: declared by the model, else its last point."""
    if isinstance(segmented, DeclaresReadouts):
        return segmented.output_hook, segmented.output_dims, tuple(segmented.readouts)
    return segmented.hook_names[-1], None, ()


def _model_name(segmented: SegmentedModel) -> str:
    adapted = isinstance(segmented, _TransformerSegments | _SequentialGraph)
    return type(segmented.model if adapted else segmented).__name__


class _TransformerSegments:
    """A HookedTransformer along its residual stream: resid_pre 0, resid_post of each block, logits."""

    output_hook = "logits"
    output_dims = ("pos", "vocab")
    readouts: tuple[Readout, ...] = ()

    def __init__(self, model: HookedTransformer):
        self.model = model
        n_layers = model.cfg.n_layers
        self.hook_names = (
            ("blocks.0.hook_resid_pre",)
            + tuple(f"blocks.{i}.hook_resid_post" for i in range(n_layers))
            + ("logits",)
        )
        self.aliases = {
            f"blocks.{k}.hook_resid_pre": f"blocks.{k - 1}.hook_resid_post"
            for k in range(1, n_layers)
        }

    def run_segment(
        self, x: Tensor, start: str, stop: str, context: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        i, j = self.hook_names.index(start), self.hook_names.index(stop)
        # chain index i >= 1 is resid_post of block i - 1, i.e. the input of block i
        if stop == "logits":
            return self.model(x, start_at_layer=i, return_type="logits")
        return self.model(x, start_at_layer=i, stop_at_layer=j)

    def freezable(self, start: str, stop: str) -> tuple[str, ...]:
        """Attention patterns, LayerNorm scales and plain MLP gates of the blocks in the segment."""
        i, j = self.hook_names.index(start), self.hook_names.index(stop)
        blocks = range(i, min(j, self.model.cfg.n_layers))
        names = [
            f"blocks.{b}.{part}"
            for b in blocks
            for part in ("ln1.hook_scale", "attn.hook_pattern", "ln2.hook_scale", "mlp.hook_post")
        ]
        if stop == "logits":
            names.append("ln_final.hook_scale")
        return tuple(n for n in names if n in self.model.hook_dict and self._holdable(n))

    def _holdable(self, name: str) -> bool:
        """An MLP gate is held only where act(x) = x·g(x) (no gated or LayerNorm'd MLP)."""
        if not name.endswith("mlp.hook_post"):
            return True
        prefix = name.removesuffix("hook_post")
        return not any(prefix + h in self.model.hook_dict for h in ("hook_pre_linear", "hook_mid"))

    def state_names(self, freeze: Sequence[str]) -> tuple[str, ...]:
        names: list[str] = []
        for n in freeze:
            gate = n.endswith("mlp.hook_post")
            names += [n.removesuffix("hook_post") + "hook_pre", n] if gate else [n]
        return tuple(names)

    def holding_hooks(
        self, freeze: Sequence[str], state: Mapping[str, Tensor], k: int
    ) -> list[tuple[str, Callable[..., Tensor | None]]]:
        hooks: list[tuple[str, Callable[..., Tensor | None]]] = []
        for n in freeze:
            if n.endswith("mlp.hook_post"):
                hooks += _held_gate(n, state, k)
            else:
                held = tile_rows(state[n], k)
                hooks.append((n, lambda act, hook, held=held: held.to(act.dtype)))
        return hooks


class _SequentialGraph:
    """An ``nn.Sequential`` as an op graph: each child is one op named by its child name."""

    readouts: tuple[Readout, ...] = ()

    def __init__(self, model: nn.Sequential):
        self.model = model
        ops, prev = [], INPUT
        for name, child in model.named_children():
            ops.append(Op(name, _module_kind(child), (prev,), child))
            prev = name
        self.ops: tuple[Op, ...] = tuple(ops)
        self.hook_names = tuple(op.name for op in ops)

    def segment_ops(self, start: str, stop: str) -> tuple[tuple[Op, ...], tuple[str, ...]]:
        i = -1 if start == INPUT else self.hook_names.index(start)
        return self.ops[i + 1 : self.hook_names.index(stop) + 1], ()

    def run_segment(
        self, x: Tensor, start: str, stop: str, context: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        for op in self.segment_ops(start, stop)[0]:
            x = op.module(x)
        return x


def _held_gate(
    post_name: str, state: Mapping[str, Tensor], k: int
) -> list[tuple[str, Callable[..., Tensor | None]]]:
    """Hooks making an MLP's activation x·g(x₀): g(x₀) = act(x₀)/x₀ (½ where x₀ = 0 exactly)."""
    pre_name = post_name.removesuffix("hook_post") + "hook_pre"
    pre0, post0 = state[pre_name], state[post_name]
    safe = torch.where(pre0 == 0, torch.ones_like(pre0), pre0)
    gate = tile_rows(torch.where(pre0 == 0, torch.full_like(pre0, 0.5), post0 / safe), k)
    current: dict[str, Tensor] = {}

    def keep_pre(act: Tensor, hook: object) -> None:
        current["pre"] = act

    def gated(act: Tensor, hook: object) -> Tensor:
        return current["pre"] * gate.to(act.dtype)

    return [(pre_name, keep_pre), (post_name, gated)]


def _module_kind(m: nn.Module) -> str:
    """The op kind of a Sequential child (``"other"``: the line walk cannot follow it).

    A BatchNorm is ``"linear"``: in eval mode it is an affine map per channel, with its running
    statistics; the line walk rejects one in training mode, whose rows depend on the batch.
    """
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return "linear"
    kinds: Sequence[tuple[type | tuple[type, ...], str]] = (
        (nn.Conv2d, "conv"),
        (nn.Linear, "linear"),
        (nn.ReLU, "relu"),
        ((nn.Flatten, nn.Identity), "flatten"),
    )
    if isinstance(m, nn.MaxPool2d):
        plain = m.dilation in (1, (1, 1)) and not m.ceil_mode
        return "maxpool" if plain else "other"
    return next((kind for cls, kind in kinds if isinstance(m, cls)), "other")
