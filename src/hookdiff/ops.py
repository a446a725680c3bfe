"""Running the contract's ops: :func:`apply_op` (with the CPU's faster max pool) and batch layout.

:mod:`hookdiff.contract` declares what a model is (its :class:`~hookdiff.contract.Op` graph, its
protocols); this module runs an op exactly as the model does — on the CPU a plain ``MaxPool2d``
goes through the channels-last kernel, the same values about 2–4× faster — and lays out a batch
for K coefficients (:func:`tile_rows`, coefficient-major).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hookdiff.contract import Op

__all__ = ["apply_op", "tile_rows"]


def tile_rows(x: Tensor, k: int) -> Tensor:
    """``k`` copies of a B-row tensor stacked coefficient-major: row i is ``x[i % B]``.

    The layout of a batch for K coefficients: ``steer``, ``sweep`` and ``run_segment``'s context
    all expect it for K coefficients (row i gets
    ``coeffs[i // B]``).

    Example:
        >>> tile_rows(torch.tensor([[1], [2]]), 2).flatten().tolist()
        [1, 2, 1, 2]
    """
    return x.repeat((k,) + (1,) * (x.ndim - 1))


def apply_op(op: Op, args: Sequence[Tensor]) -> Tensor:
    """Run ``op`` on its input tensors, exactly as the model does (its module, if it has one).

    Example:
        >>> apply_op(Op("y", "relu", ("x",)), [torch.tensor([-1.0, 2.0])])
        tensor([0., 2.])
    """
    if op.module is not None:
        if op.kind == "maxpool" and _channels_last_pays(op.module, args[0]):
            return _max_pool_channels_last(op.module, args[0])
        return op.module(args[0])
    if op.kind == "relu":
        return F.relu(args[0])
    if op.kind == "add":
        return sum(args[1:], args[0])
    if op.kind == "flatten":
        # torch.flatten reads the logical (N, C, H, W) view whatever the memory format
        return torch.flatten(args[0], 1)
    raise ValueError(f"op {op.name!r} of kind {op.kind!r} has no module to run it")


def _max_pool_channels_last(module: nn.MaxPool2d, x: Tensor) -> Tensor:
    """``module(x)`` through the CPU's channels-last max-pool kernel, returned in ``x``'s NCHW
    layout: the same values (a max selects, it does not round) about 2–4× faster than the NCHW
    kernel, copies included."""
    return module(x.contiguous(memory_format=torch.channels_last)).contiguous()


def _channels_last_pays(module: nn.Module, x: Tensor) -> bool:
    """The channels-last max pool applies: a plain ``MaxPool2d`` on a 4-d NCHW CPU tensor, no
    gradient (the kernels may break ties between equal inputs differently, which routes a
    gradient elsewhere but never changes a value)."""
    return (
        type(module) is nn.MaxPool2d
        and not module.return_indices
        and x.device.type == "cpu"
        and x.ndim == 4
        and x.is_contiguous()
        and not (x.requires_grad and torch.is_grad_enabled())
    )
