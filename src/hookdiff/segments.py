"""The one place models meet the contract: a model as a chain of hook points that runs in segments.

:func:`as_segmented` checks :class:`~hookdiff.contract.SegmentedModel` once and returns the model
itself when it implements it (the maze agent, a user's model), or an adapter for the two kinds of
model hookdiff knows without help: a HookedTransformer or a TransformerLens 3
``TransformerBridge`` (their residual stream) and an ``nn.Sequential`` (its children, as an op
graph). :func:`locate` finds a hook on the chain (a transformer's ``blocks.k.hook_resid_pre`` is
the same point as ``blocks.{k-1}.hook_resid_post``; a bridge's own names ``blocks.k.hook_in`` /
``blocks.k.hook_out`` are its legacy residual names).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn
from transformer_lens import HookedTransformer

from hookdiff.contract import INPUT, DeclaresReadouts, Op, Readout, SegmentedModel
from hookdiff.errors import NoHookChainError, UnknownHookError, unknown_name_message
from hookdiff.ops import tile_rows

__all__ = ["as_segmented", "canonical", "is_bridge", "locate", "output_of"]


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
    if is_bridge(model):
        return _BridgeSegments(model)
    if isinstance(model, nn.Sequential):
        return _SequentialGraph(model)
    raise NoHookChainError(
        f"{type(model).__name__} declares no ordered chain of hook points, so hookdiff cannot run "
        f"a segment of it. Implement hookdiff.contract.SegmentedModel: a `hook_names` list (hook "
        f"points in forward order) and a `run_segment(x, start, stop, context=None)` method (add "
        f"`ops` and `segment_ops` for the exact line walk), or use a HookedTransformer or a "
        f"TransformerBridge (residual stream) or an nn.Sequential (its children)."
    )


def is_bridge(model: object) -> bool:
    """Whether ``model`` is a TransformerLens 3 ``TransformerBridge`` (checked without importing
    the bridge: a model of that class means its module is loaded already)."""
    bridge = sys.modules.get("transformer_lens.model_bridge.bridge")
    return bridge is not None and isinstance(model, bridge.TransformerBridge)


def canonical(segmented: SegmentedModel, name: str) -> str:
    """The chain's name for ``name`` (a transformer's alias resolved; any other name as given).

    Example:
        >>> canonical(as_segmented(nn.Sequential(nn.ReLU())), "0")
        '0'
    """
    if isinstance(segmented, _TransformerSegments):
        return segmented.aliases.get(name, name)
    return name


def locate(segmented: SegmentedModel, hook: str) -> str:
    """The name of ``hook`` on the chain of ``segmented`` (resolving aliases), or a clear error."""
    hook = canonical(segmented, hook)
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
    adapted = isinstance(segmented, _TransformerSegments | _SequentialGraph)  # bridges included
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
        if stop == self.output_hook:
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


class _BridgeSegments(_TransformerSegments):
    """A ``TransformerBridge`` along its residual stream, named as a HookedTransformer's.

    The chain is ``blocks.0.hook_resid_pre``, each block's ``hook_resid_post`` and the unembed's
    output ``unembed.hook_out``; every name the bridge lists for the same point is an alias (its
    own ``blocks.k.hook_in`` / ``hook_out``, ``hook_unembed``, and ``logits`` as on a
    HookedTransformer). A segment calls the bridge's blocks, then ``ln_final`` and ``unembed``,
    so every hook inside them fires (the bridge's own forward cannot start mid-model). The
    state it holds (attention patterns, LayerNorm scales, plain MLP gates) is named as on a
    HookedTransformer, which the bridge lists as aliases of its own hooks.
    """

    output_hook = "unembed.hook_out"

    def __init__(self, model: nn.Module):
        self.model = model
        n = model.cfg.n_layers
        self.hook_names = (
            ("blocks.0.hook_resid_pre",)
            + tuple(f"blocks.{i}.hook_resid_post" for i in range(n))
            + (self.output_hook,)
        )
        aliases = {
            f"blocks.{k}.hook_resid_pre": f"blocks.{k - 1}.hook_resid_post" for k in range(1, n)
        }
        aliases |= {f"blocks.{k}.hook_in": f"blocks.{k - 1}.hook_resid_post" for k in range(1, n)}
        aliases |= {f"blocks.{k}.hook_out": f"blocks.{k}.hook_resid_post" for k in range(n)}
        aliases |= {"blocks.0.hook_in": "blocks.0.hook_resid_pre"}
        aliases |= {"hook_unembed": self.output_hook, "logits": self.output_hook}
        self.aliases = aliases

    def run_segment(
        self, x: Tensor, start: str, stop: str, context: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        i, j = self.hook_names.index(start), self.hook_names.index(stop)
        n = self.model.cfg.n_layers
        for block in self.model.blocks[i : min(j, n)]:
            x = block(x)
            x = x[0] if isinstance(x, tuple) else x
        if stop == self.output_hook:
            x = self.model.unembed(self.model.ln_final(x))
        return x

    def holding_hooks(
        self, freeze: Sequence[str], state: Mapping[str, Tensor], k: int
    ) -> list[tuple[str, Callable[..., Tensor | None]]]:
        """As on a HookedTransformer, but an attention pattern is held through the values: a
        bridge may compute attention inside the wrapped model's own module, where its
        ``hook_pattern`` only observes (a native bridge does), so the heads' output ``z`` =
        pattern₀ · V is recomputed from ``attn.v.hook_out`` and written at ``attn.o.hook_in``,
        both on the computed path of every bridge attention."""
        patterns = [n for n in freeze if n.endswith("attn.hook_pattern")]
        hooks = super().holding_hooks([n for n in freeze if n not in patterns], state, k)
        for name in patterns:
            hooks += _held_pattern(name, tile_rows(state[name], k))
        return hooks


def _held_pattern(
    pattern_name: str, pattern: Tensor
) -> list[tuple[str, Callable[..., Tensor | None]]]:
    """Hooks making one attention layer's heads read V through the held ``pattern`` (batch,
    heads, query, key): z = pattern · V per head (grouped key/value heads repeated), in the
    layout of ``attn.o.hook_in`` (batch, query, heads·d_head)."""
    prefix = pattern_name.removesuffix("hook_pattern")
    current: dict[str, Tensor] = {}

    def keep_v(act: Tensor, hook: object) -> None:
        current["v"] = act

    def held_z(act: Tensor, hook: object) -> Tensor:
        v = current["v"]
        batch, seq, heads = v.shape[0], v.shape[1], pattern.shape[1]
        d_head = act.shape[-1] // heads
        kv = v.view(batch, seq, -1, d_head).transpose(1, 2)
        kv = kv.repeat_interleave(heads // kv.shape[1], dim=1)
        z = pattern.to(v.dtype) @ kv
        return z.transpose(1, 2).reshape(act.shape)

    return [(prefix + "v.hook_out", keep_v), (prefix + "o.hook_in", held_z)]


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
