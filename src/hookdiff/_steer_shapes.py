"""How :func:`hookdiff.steer`'s vector, mask and coefficients fit an activation's shape.

One job: from the activation a hook sees, the tensor to add, as ``scale · direction`` (one
coefficient per row, coefficient-major; the vector per row or per sample; the position mask), or a
:class:`~hookdiff.errors.ShapeMismatchError` that names the shapes and the fix (including the
KV-cached generation case, where a position-indexed vector cannot line up).
"""

from __future__ import annotations

import torch
from torch import Tensor

from hookdiff.errors import ShapeMismatchError
from hookdiff.ops import tile_rows


def _scaled(
    activation: Tensor, vec: Tensor, c: Tensor, mask: Tensor | None, where: str
) -> tuple[Tensor, Tensor]:
    """``(scale, direction)`` with ``scale · direction`` the tensor to add to ``activation``.

    ``scale`` holds one coefficient per row (shaped to broadcast over the row), ``direction`` the
    (masked) vector; kept apart so the add is one fused ``addcmul`` in the activation's layout.
    """
    vec = _fitted_vector(
        activation, vec.to(device=activation.device, dtype=activation.dtype), where
    )
    if mask is not None:
        vec = vec * _fitted_mask(activation, torch.as_tensor(mask), where)
    return _row_coeffs(activation, c, where), vec


def _fitted_vector(activation: Tensor, vec: Tensor, where: str) -> Tensor:
    """The vector as added: per-row shape, or ``(rows, ...)`` for one vector per sample."""
    row_shape = tuple(activation.shape[1:])
    rows = activation.shape[0]
    if vec.ndim != activation.ndim:  # one direction for every row
        if not _broadcasts_to(tuple(vec.shape), row_shape):
            raise ShapeMismatchError(
                f"steering vector of shape {tuple(vec.shape)} does not broadcast to the activation "
                f"at {where}, whose per-row shape is {row_shape} (full shape "
                f"{tuple(activation.shape)}); expected the activation's shape without the batch "
                f"dimension, or (B, *shape) for one vector per sample"
                + _fewer_positions_hint("vector", tuple(vec.shape), row_shape)
            )
        return vec
    if tuple(vec.shape[1:]) != row_shape or rows % vec.shape[0]:  # (B, ...): one per sample
        raise ShapeMismatchError(
            f"per-sample steering vectors of shape {tuple(vec.shape)} do not fit the activation at "
            f"{where} of shape {tuple(activation.shape)}: expected (B, *{row_shape}) with the "
            f"activation's rows a multiple K·B of B, laid out coefficient-major (row i is sample "
            f"i % B; hookdiff.tile_coeffs builds such a batch)"
            + _fewer_positions_hint("vector", tuple(vec.shape[1:]), row_shape)
        )
    return tile_rows(vec, rows // vec.shape[0])  # row i: v[i % B]


def _fitted_mask(activation: Tensor, mask: Tensor, where: str) -> Tensor:
    """The mask as a 0/1 factor broadcasting against the activation (per position or per row)."""
    row_shape = tuple(activation.shape[1:])
    rows = activation.shape[0]
    m = mask.to(device=activation.device, dtype=activation.dtype)
    if tuple(m.shape) == row_shape[: m.ndim]:  # one mask for every row: (pos,) ...
        return m.reshape(m.shape + (1,) * (len(row_shape) - m.ndim))
    per_row = m.ndim >= 2 and tuple(m.shape[1:]) == row_shape[: m.ndim - 1]
    if per_row and rows % m.shape[0] == 0:  # one mask per sample: (B, pos) ...
        m = tile_rows(m, rows // m.shape[0])  # row i: mask[i % B]
        return m.reshape(m.shape + (1,) * (len(row_shape) - m.ndim + 1))
    hint = _fewer_positions_hint("mask", tuple(m.shape), row_shape)
    if not hint and m.ndim >= 2:
        hint = _fewer_positions_hint("mask", tuple(m.shape[1:]), row_shape)
    raise ShapeMismatchError(
        f"position mask of shape {tuple(m.shape)} fits neither the leading per-row dimensions "
        f"{row_shape[: m.ndim]} of the activation at {where} (one mask for every row) nor "
        f"(B, *{row_shape[: max(m.ndim - 1, 1)]}) with B dividing its {rows} rows (one mask per "
        f"sample); full shape {tuple(activation.shape)}" + hint
    )


def _fewer_positions_hint(what: str, given: tuple[int, ...], row_shape: tuple[int, ...]) -> str:
    """Why a position-indexed vector or mask longer than the activation fails, and the fixes."""
    if not given or not row_shape or given[0] <= row_shape[0]:
        return ""
    if len(given) > 1 and not _broadcasts_to(given[1:], row_shape[1 : len(given)]):
        return ""
    return (
        f". The {what} covers {given[0]} positions but this forward has {row_shape[0]}: in "
        f"KV-cached generation (model.generate(..., use_past_kv_cache=True)) each forward after "
        f"the first sees only the new tokens, so a position-indexed {what} cannot line up. Fix: "
        f"a vector without a position axis (shape {row_shape[1:]}) and no mask steers every "
        f"position of every forward; to steer only the prompt, run the prompt's forward inside "
        f"steer() and continue from its KV cache outside the block"
    )


def _row_coeffs(activation: Tensor, c: Tensor, where: str) -> Tensor:
    """The coefficient of every row, shaped to broadcast over the row (coefficient-major)."""
    c = c.to(device=activation.device, dtype=activation.dtype)
    if c.ndim == 0:
        return c
    rows, k = activation.shape[0], c.shape[0]
    if rows % k:
        raise ShapeMismatchError(
            f"{k} coefficients need a coefficient-major batch of K·B rows at {where} (all B "
            f"inputs at coeffs[0], then all at coeffs[1], ...; row i gets coeffs[i // B]); the "
            f"activation has {rows} rows, not a multiple of K={k}. Build the batch with "
            f"hookdiff.tile_coeffs(inputs, coeffs)"
        )
    per_row = c.repeat_interleave(rows // k)  # row i gets coeffs[i // B]
    return per_row.reshape((rows,) + (1,) * (activation.ndim - 1))


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Whether ``shape`` broadcasts to exactly ``target`` (never enlarging the activation)."""
    try:
        return torch.broadcast_shapes(shape, target) == target
    except RuntimeError:
        return False
