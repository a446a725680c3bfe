"""The model contract: what the hook engine and the analysis need from a model, declared as types.

A model that implements :class:`SegmentedModel` (its hook points in forward order and a way to run
from one to another) gets :func:`hookdiff.downstream`; one that also implements
:class:`OpGraphModel` (its ops, each a hook point) gets the one-pass analysis and, where every op
is piecewise linear, the exact line walk; one that implements :class:`DeclaresReadouts` names its
behavioural output and the readouts computed from it (the maze agent: the 15 action logits and the
5 direction probabilities). The maze agent implements all three; HookedTransformer and
``nn.Sequential`` are adapted to them in :mod:`hookdiff.segments`, and so can any user's model.
Code checks these protocols once, at the boundary (:func:`hookdiff.segments.as_segmented`).

This module declares types and names only. Running an op (:func:`~hookdiff.ops.apply_op`, with
the CPU's channels-last max pool) and the coefficient-major batch layout
(:func:`~hookdiff.ops.tile_rows`) live in :mod:`hookdiff.ops`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from torch import Tensor, nn

if TYPE_CHECKING:
    pass

__all__ = [
    "INPUT",
    "OP_KINDS",
    "PIECEWISE_KINDS",
    "PATTERN_KINDS",
    "DeclaresReadouts",
    "HoldsState",
    "Op",
    "OpGraphModel",
    "Readout",
    "SegmentedModel",
]

#: Name standing for the model's input (the input of the first op).
INPUT = "input"

#: The kinds of op an op graph holds; ``"other"`` is any op the line walk cannot follow.
OP_KINDS = ("conv", "maxpool", "relu", "add", "flatten", "linear", "other")

#: Op kinds that keep a segment piecewise linear (the exact line walk follows these).
PIECEWISE_KINDS = ("conv", "maxpool", "relu", "add", "flatten", "linear")

#: Op kinds whose activation pattern changes along a line (relu: sign of the input; maxpool: argmax).
PATTERN_KINDS = ("relu", "maxpool")


@dataclass(frozen=True)
class Op:
    """One op of a model's graph; its output is the hook point of the same name.

    Attributes:
        name: The hook name of the op's output, e.g. ``"embedder.block2.res1.conv1_out"``.
        kind: One of :data:`OP_KINDS`.
        inputs: Hook names of the op's inputs (:data:`INPUT` for the model input). An ``"add"``
            sums its inputs.
        module: The module carrying the op's parameters (``nn.Conv2d``, ``nn.MaxPool2d``,
            ``nn.Linear``, an eval-mode BatchNorm as ``"linear"``, or any module for
            ``"other"``); ``None`` for relu, add and flatten.

    Example:
        >>> fc = nn.Linear(2, 2)
        >>> ops = (Op("fc", "linear", (INPUT,), fc), Op("relu", "relu", ("fc",)))
        >>> [op.name for op in ops]
        ['fc', 'relu']
    """

    name: str
    kind: str
    inputs: tuple[str, ...]
    module: nn.Module | None = None


@dataclass(frozen=True)
class Readout:
    """A named function of one hook point's activation that the model declares as behaviour.

    Attributes:
        name: The readout's name, used as a depth by the analysis (e.g. ``"directions"``).
        source: The hook point whose activation it reads (e.g. ``"fc_policy_out"``).
        fn: Maps a batch of activations at ``source`` to a batch of readout values.
        dim: The name of the readout's last axis (e.g. ``"direction"``).
        labels: Labels along that axis (e.g. ``("left", "down", "up", "right", "none")``).

    Example:
        >>> probs = Readout("probs", "head", lambda z: z.softmax(-1), "option", ("a", "b"))
        >>> probs.fn(torch.zeros(1, 2))
        tensor([[0.5000, 0.5000]])
    """

    name: str
    source: str
    fn: Callable[[Tensor], Tensor]
    dim: str
    labels: tuple[str, ...] | None = None


@runtime_checkable
class SegmentedModel(Protocol):
    """A model that can run from any of its hook points to a later one (what ``downstream`` needs).

    Example:
        >>> class Twice(nn.Module):
        ...     hook_names = ("a", "b")
        ...     def run_segment(self, x, start, stop, context=None):
        ...         return 2 * x
        >>> isinstance(Twice(), SegmentedModel), isinstance(nn.Linear(1, 1), SegmentedModel)
        (True, False)
    """

    hook_names: Sequence[str]
    """The hook points in forward order."""

    def run_segment(
        self, x: Tensor, start: str, stop: str, context: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        """The activation at ``stop`` from the activation ``x`` at ``start``.

        ``context`` holds activations produced before ``start`` that the segment still reads (a
        residual block's input), B rows each for an ``x`` of K·B rows.
        """
        ...


@runtime_checkable
class OpGraphModel(SegmentedModel, Protocol):
    """A segmented model that lists its ops (one per hook point): what the analysis walks.

    Example:
        >>> from hookdiff.agent import ImpalaPolicy
        >>> isinstance(ImpalaPolicy(), OpGraphModel)
        True
    """

    ops: Sequence[Op]
    """The ops in forward order; ``[op.name for op in ops]`` equals ``hook_names``."""

    def segment_ops(self, start: str, stop: str) -> tuple[tuple[Op, ...], tuple[str, ...]]:
        """The ops that ``stop`` needs after ``start``, and the earlier activations they read."""
        ...


@runtime_checkable
class DeclaresReadouts(Protocol):
    """A model that names its behavioural output and the readouts computed from it.

    Example:
        >>> from hookdiff.agent import ImpalaPolicy
        >>> policy = ImpalaPolicy()
        >>> policy.output_hook, [r.name for r in policy.readouts]
        ('fc_policy_out', ['directions'])
    """

    output_hook: str
    """The hook point the analysis follows as the model's output (e.g. the policy logits)."""

    output_dims: tuple[str, ...] | None
    """Names of the output's axes after the batch (e.g. ``("action",)``; None: named by rank)."""

    readouts: Sequence[Readout]
    """Functions of hook activations reported as behaviour, e.g. direction probabilities."""


@runtime_checkable
class HoldsState(Protocol):
    """A segmented model whose nonlinear state hooks can hold at its t = 0 value.

    A HookedTransformer's attention patterns, LayerNorm scales and MLP gates are such state: held,
    the block is affine in its input. (Op graphs need no such declaration: their relus and
    maxpools are frozen from the ops.)
    """

    def freezable(self, start: str, stop: str) -> tuple[str, ...]:
        """The hook names of the state that can be held between ``start`` and ``stop``."""
        ...

    def state_names(self, freeze: Sequence[str]) -> tuple[str, ...]:
        """The hook points to capture at t = 0 to hold ``freeze``."""
        ...

    def holding_hooks(
        self, freeze: Sequence[str], state: Mapping[str, Tensor], k: int
    ) -> list[tuple[str, Callable[..., Tensor | None]]]:
        """``(hook name, fn)`` pairs holding ``freeze`` at ``state`` over K tiled coefficients."""
        ...
